"""Throughput: messages per second through the relay versus a bare websockets echo server.

Relay: SOCKETS visitor sockets each send PER_SOCKET messages, keeping up to WINDOW
unacknowledged; a message counts once its ack is back AND the owner's socket has it.
Echo: the same sockets, frames and window; a frame counts once its echo is back.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection

from relay.live import FRAMES_PER_MINUTE
from tests.bench import clients, servers
from tests.bench.harness import Row, at_least_ratio, log

SOCKETS = 50
PER_SOCKET = 200
WARMUP_PER_SOCKET = 10
WINDOW = 8
# The relay closes a socket sending more than FRAMES_PER_MINUTE (relay/live.py) and
# that limit has no setting: each socket must stay under it for the whole run.
assert WARMUP_PER_SOCKET + PER_SOCKET < FRAMES_PER_MINUTE


def send_frames(tag: str, socket: int, count: int) -> list[str]:
    return [
        clients.dumps(
            {"type": "send", "body": f"message {i} of {socket}", "client_id": f"{tag}-{socket}-{i}"}
        )
        for i in range(count)
    ]


async def pipeline(
    ws: ClientConnection, frames: Sequence[str], is_reply: Callable[[dict[str, Any]], bool]
) -> None:
    """Send `frames` with at most WINDOW awaiting their reply, until every reply is in."""
    credits = asyncio.Semaphore(WINDOW)

    async def send() -> None:
        for frame in frames:
            await credits.acquire()
            await ws.send(frame)

    async def receive() -> None:
        replies = 0
        while replies < len(frames):
            frame = json.loads(await ws.recv())
            if frame.get("type") == "error":
                raise RuntimeError(f"the relay refused a frame: {frame}")
            if is_reply(frame):
                replies += 1
                credits.release()

    async with asyncio.TaskGroup() as group:
        group.create_task(send())
        group.create_task(receive())


class Tally:
    """Counts message frames on the owner's socket; `reached` once `goal` are in."""

    def __init__(self) -> None:
        self.count = 0
        self.goal = math.inf
        self.reached = asyncio.Event()

    def add(self, message: dict[str, Any], arrived: float) -> None:
        self.count += 1
        if self.count >= self.goal:
            self.reached.set()

    def expect(self, more: int) -> asyncio.Event:
        self.goal = self.count + more
        self.reached.clear()
        return self.reached


def is_ack(frame: dict[str, Any]) -> bool:
    return frame["type"] == "ack"


def is_echo(frame: dict[str, Any]) -> bool:
    return True


async def relay_rate() -> float:
    async with servers.relay() as relay:
        tokens = await clients.start_threads(relay, SOCKETS)
        visitors = await clients.visitors(relay, tokens)
        owner = await clients.owner(relay)
        tally = Tally()
        watcher = asyncio.create_task(clients.read_messages(owner, tally.add))
        try:

            async def phase(tag: str, per_socket: int) -> float:
                delivered = tally.expect(SOCKETS * per_socket)
                started = time.perf_counter()
                async with asyncio.TaskGroup() as group:
                    for n, ws in enumerate(visitors):
                        group.create_task(pipeline(ws, send_frames(tag, n, per_socket), is_ack))
                acked = time.perf_counter()
                # The watcher failing (socket closed) must end the wait, not hang it.
                done = asyncio.create_task(delivered.wait())
                await asyncio.wait({done, watcher}, return_when="FIRST_COMPLETED")
                if not delivered.is_set():
                    done.cancel()
                    watcher.result()  # raises what went wrong
                    raise RuntimeError("the owner socket closed before every message arrived")
                elapsed = time.perf_counter() - started
                log(
                    f"  relay {tag}: {SOCKETS * per_socket} messages in {elapsed:.2f} s "
                    f"(last ack at {acked - started:.2f} s)"
                )
                return SOCKETS * per_socket / elapsed

            await phase("warm", WARMUP_PER_SOCKET)
            return await phase("run", PER_SOCKET)
        finally:
            watcher.cancel()
            await clients.close_all([*visitors, owner])


async def echo_rate() -> float:
    async with servers.echo_server() as server:
        url = f"ws://{servers.HOST}:{server.port}/"
        sockets = [await clients.open_socket(url) for _ in range(SOCKETS)]
        try:

            async def phase(tag: str, per_socket: int) -> float:
                started = time.perf_counter()
                async with asyncio.TaskGroup() as group:
                    for n, ws in enumerate(sockets):
                        group.create_task(pipeline(ws, send_frames(tag, n, per_socket), is_echo))
                elapsed = time.perf_counter() - started
                log(f"  echo {tag}: {SOCKETS * per_socket} frames in {elapsed:.2f} s")
                return SOCKETS * per_socket / elapsed

            await phase("warm", WARMUP_PER_SOCKET)
            return await phase("run", PER_SOCKET)
        finally:
            await clients.close_all(sockets)


async def run() -> list[Row]:
    log(f"throughput: {SOCKETS} sockets x {PER_SOCKET} messages, window {WINDOW}")
    ours = await relay_rate()
    baseline = await echo_rate()
    return [Row("throughput (msg/s)", ours, "msg/s", baseline, at_least_ratio(0.6, "echo"))]
