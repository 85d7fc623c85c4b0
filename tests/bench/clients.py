"""Client side of the benchmarks: visitors and owners speaking the relay's protocol
(relay/live.py), and the same connection settings for the echo baseline."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect

from relay.config import Config
from relay.conversations import Conversations
from relay.store import open_store
from relay.tokens import Tokens
from tests.bench.servers import SITE, Relay

T = TypeVar("T")
HANDSHAKE_TIMEOUT = 10.0  # seconds for connect + hello → ready


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


async def open_socket(url: str) -> ClientConnection:
    return await connect(
        url,
        # What the widget's browser would negotiate with the relay (which refuses
        # deflate); asking the echo server for none keeps the baseline comparable.
        compression=None,
        proxy=None,  # loopback only, whatever the environment says
        # No keepalive pings of our own: they would add frames to measurements.
        ping_interval=None,
        open_timeout=HANDSHAKE_TIMEOUT,
        close_timeout=2,
    )


async def hello(ws: ClientConnection, token: str, since: int = 0) -> int:
    """Authenticate; skip the replay; return the seq the relay is live from."""
    await ws.send(dumps({"type": "hello", "token": token, "since": since}))
    async with asyncio.timeout(HANDSHAKE_TIMEOUT):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "ready":
                return int(frame["seq"])
            if frame["type"] != "message":
                raise RuntimeError(f"expected the replay then ready, got {frame}")


async def start_threads(relay: Relay, count: int, concurrency: int = 16) -> list[str]:
    """`count` new visitors with one thread each, through the HTTP API; their tokens."""
    tokens: list[str] = [""] * count
    url = f"{relay.http_url}/v1/sites/{SITE}/threads"
    async with httpx.AsyncClient(
        trust_env=False,
        timeout=10,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    ) as client:

        async def start(i: int) -> None:
            body = {"body": f"hello from visitor {i}", "client_id": f"start-{i}"}
            response = await client.post(url, json=body)
            if response.status_code != 201:
                raise RuntimeError(f"starting thread {i}: {response.status_code} {response.text}")
            tokens[i] = response.json()["token"]

        await bounded(concurrency, [functools.partial(start, i) for i in range(count)])
    return tokens


async def seed_conversations(relay: Relay, count: int, concurrency: int = 64) -> list[str]:
    """Like start_threads, but written by this process straight into the relay's
    database: many times faster than over HTTP, for benchmarks that need thousands of
    conversations and do not measure how they were started."""
    store = open_store(Config(data_dir=relay.data_dir, database_url=relay.database_url))
    tokens = Tokens((relay.secret_key,))
    await store.open()
    try:

        async def start(i: int) -> str:
            started = await Conversations(store).start(
                SITE, body=f"hello from visitor {i}", client_id=None, name=None, page=None
            )
            return tokens.visitor_token(started.visitor, SITE, started.epoch)

        return await bounded(concurrency, [functools.partial(start, i) for i in range(count)])
    finally:
        await store.close()


async def visitors(
    relay: Relay, tokens: Sequence[str], since: Sequence[int] = (), batch: int = 100
) -> list[ClientConnection]:
    """A ready socket per token, resuming after `since[i]` (default 0), opened `batch`
    at a time (a burst of thousands of connects overflows listen backlogs and times
    out handshakes, on both sides)."""
    sockets: list[ClientConnection] = []
    since = list(since) or [0] * len(tokens)

    async def one(i: int) -> ClientConnection:
        ws = await open_socket(relay.ws_url)
        await hello(ws, tokens[i], since[i])
        return ws

    try:
        for start in range(0, len(tokens), batch):
            chunk = range(start, min(start + batch, len(tokens)))
            sockets += await asyncio.gather(*(one(i) for i in chunk))
    except BaseException:
        await close_all(sockets)
        raise
    return sockets


async def owner(relay: Relay) -> ClientConnection:
    ws = await open_socket(relay.ws_url)
    await hello(ws, relay.owner_token)
    return ws


async def close_all(sockets: Sequence[ClientConnection], batch: int = 200) -> None:
    for start in range(0, len(sockets), batch):
        await asyncio.gather(
            *(ws.close() for ws in sockets[start : start + batch]), return_exceptions=True
        )


async def bounded(limit: int, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run jobs with at most `limit` in flight; the first failure cancels the rest."""
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(run(job)) for job in jobs]
    return [task.result() for task in tasks]


async def read_messages(
    ws: ClientConnection, on_message: Callable[[dict[str, Any], float], None]
) -> None:
    """Hand every message frame to `on_message` with its arrival time, until the socket closes.

    The time is taken before parsing, as close to the arrival as this loop can see it.
    """
    async for raw in ws:
        now = time.perf_counter()
        frame = json.loads(raw)
        if frame["type"] == "message":
            on_message(frame["message"], now)
        elif frame["type"] == "error":
            raise RuntimeError(f"the relay refused a frame: {frame}")


async def drain(ws: ClientConnection) -> None:
    """Read and drop what a visitor is sent (acks, its own messages), failing on errors."""
    async for raw in ws:
        if isinstance(raw, str) and '"type":"error"' in raw:
            raise RuntimeError(f"the relay refused a frame: {raw}")
