"""The baseline: a bare `websockets` server echoing every frame, nothing else.

Run by servers.echo_server() as `python -m tests.bench.echo_server --port P`. It has
the relay's WebSocket settings (no per-message deflate, same frame limit) so the
comparison is about what the relay does per frame, not about negotiated options.
"""

from __future__ import annotations

import argparse
import asyncio

from websockets.asyncio.server import ServerConnection, serve

from relay.config import Config

READY = "echo server ready"


async def echo(ws: ServerConnection) -> None:
    async for frame in ws:
        await ws.send(frame)


async def main(port: int) -> None:
    async with serve(
        echo,
        "127.0.0.1",
        port,
        compression=None,
        max_size=Config().ws_max_frame_bytes,
        # uvicorn's default listen backlog; asyncio's own (100) would drop connects
        # when the memory benchmark opens a batch of sockets at once.
        backlog=2048,
    ) as server:
        print(READY, flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
