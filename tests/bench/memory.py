"""Memory per idle WebSocket: the server's RSS growth for SOCKETS authenticated, idle
sockets, divided by SOCKETS.

Relay: SOCKETS visitors (threads made first over HTTP), each socket through
hello → ready. Baseline: the echo server with SOCKETS clients that each had one
frame echoed. One socket is opened and closed before the first reading so one-time
costs (lazy imports, first queries, caches) are not charged to the sockets.
RSS is VmRSS from /proc/PID/status, in KiB.
"""

from __future__ import annotations

import asyncio
import time

from websockets.asyncio.client import ClientConnection

from tests.bench import clients, servers
from tests.bench.harness import Row, at_most, log

SOCKETS = 2000
BATCH = 100  # sockets opened at once


def check_fd_limit(server: servers.Server, sockets: int = SOCKETS) -> None:
    limit = server.fd_limit()
    if limit < sockets + 100:
        raise RuntimeError(f"the server may open {limit} files; {sockets + 100} are needed")


async def relay_growth() -> float:
    async with servers.relay() as relay:
        check_fd_limit(relay)
        started = time.perf_counter()
        tokens = await clients.start_threads(relay, SOCKETS + 1)
        took = time.perf_counter() - started
        log(f"  relay: {len(tokens)} threads started over HTTP in {took:.1f} s")
        await clients.close_all(await clients.visitors(relay, tokens[:1]))
        before = relay.rss_kib()
        started = time.perf_counter()
        sockets = await clients.visitors(relay, tokens[1:], batch=BATCH)
        log(f"  relay: {len(sockets)} sockets ready in {time.perf_counter() - started:.1f} s")
        try:
            after = relay.rss_kib()
        finally:
            await clients.close_all(sockets)
        log(f"  relay: RSS {before:,} KiB → {after:,} KiB with {len(sockets)} sockets")
        return (after - before) / SOCKETS


async def echoed(url: str) -> ClientConnection:
    ws = await clients.open_socket(url)
    await ws.send(clients.dumps({"type": "hello", "token": "x" * 100, "since": 0}))
    async with asyncio.timeout(clients.HANDSHAKE_TIMEOUT):
        await ws.recv()
    return ws


async def echo_growth(count: int = SOCKETS) -> float:
    """The echo server's RSS growth per socket for `count` sockets, in KiB."""
    async with servers.echo_server() as server:
        check_fd_limit(server, count)
        url = f"ws://{servers.HOST}:{server.port}/"
        await (await echoed(url)).close()
        before = server.rss_kib()
        sockets: list[ClientConnection] = []
        try:
            for start in range(0, count, BATCH):
                batch = min(BATCH, count - start)
                sockets += await asyncio.gather(*(echoed(url) for _ in range(batch)))
            after = server.rss_kib()
        finally:
            await clients.close_all(sockets)
        log(f"  echo: RSS {before:,} KiB → {after:,} KiB with {len(sockets)} sockets")
        return (after - before) / count


async def run() -> list[Row]:
    log(f"memory: {SOCKETS} idle sockets, opened {BATCH} at a time")
    ours = await relay_growth()
    baseline = await echo_growth()
    return [Row("RSS per idle socket (KiB)", ours, "KiB", baseline, at_most(16, "KiB"))]
