"""The uploads baseline: a bare Starlette app under uvicorn that writes each request's
body to a new file on disk as it arrives, and nothing else: no multipart parsing, no
checks, no digest, no fsync. The floor under any server that streams uploads.

Run by servers.upload_server() as `python -m tests.bench.upload_server --port P
--directory D`. uvicorn runs with the defaults `porch serve` keeps for HTTP
(relay/cli/common.py): the same HTTP implementation and event loop, so the comparison
is about what happens to the bytes, not about the server under them.
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

READY = "upload server ready"
CREATED = 201


async def upload(request: Request) -> Response:
    directory: Path = request.app.state.directory
    path = directory / secrets.token_hex(16)
    size = 0
    # Written from the event loop chunk by chunk, as the relay writes its scratch file
    # (relay/attachments/uploads.py).
    with path.open("wb") as file:
        async for chunk in request.stream():
            file.write(chunk)
            size += len(chunk)
    return JSONResponse({"name": path.name, "size": size}, status_code=CREATED)


class ReadyServer(uvicorn.Server):
    """Prints READY once the port is really bound (as `porch serve` prints its banner)."""

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(READY, flush=True)


def main(port: int, directory: Path) -> None:
    app = Starlette(routes=[Route("/upload", upload, methods=["POST"])])
    app.state.directory = directory
    ReadyServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")).run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--directory", type=Path, required=True)
    arguments = parser.parse_args()
    main(arguments.port, arguments.directory)
