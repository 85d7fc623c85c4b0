"""Throughput: messages per second through the relay versus a bare websockets echo server.

Relay: SOCKETS visitor sockets each send PER_SOCKET messages, keeping up to WINDOW
unacknowledged; a message counts once its ack is back AND the owner's socket has it.
Echo: the same sockets, frames and window; a frame counts once its echo is back.

Client and servers are separate processes sharing the machine's two cores, so the
client's own cost weighs on both numbers. Both servers stay up and their rounds
alternate, so a burst of noise from the rest of the machine hits both sides alike;
the result is the median round of each.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection

from relay.config import Config
from tests.bench import clients, servers
from tests.bench.harness import NOISY_OTHERS, Machine, Row, at_least_ratio, log

FRAMES_PER_MINUTE = Config.ws_frames_per_minute  # a live socket's frames a minute, by default

SOCKETS = 50
PER_SOCKET = 200
WINDOW = 8
# Messages per socket in each round: a short warm-up round, not counted, then the
# measured rounds.
ROUNDS = (10, PER_SOCKET, PER_SOCKET, PER_SOCKET)
# The relay closes a socket sending more than FRAMES_PER_MINUTE (relay/live.py) and
# that limit has no setting: a socket must stay under it.
assert PER_SOCKET < FRAMES_PER_MINUTE

Reply = Callable[[dict[str, Any]], bool]


def send_frames(name: str, socket: int, count: int) -> list[str]:
    tag = name.replace(" ", "-")  # client ids allow no spaces
    return [
        clients.dumps(
            {"type": "send", "body": f"message {i} of {socket}", "client_id": f"{tag}-{socket}-{i}"}
        )
        for i in range(count)
    ]


async def pipeline(ws: ClientConnection, frames: Sequence[str], is_reply: Reply) -> int:
    """Send `frames` with at most WINDOW awaiting their reply, until every reply is in;
    the highest seq the replies carried (0 for echoes)."""
    credits = asyncio.Semaphore(WINDOW)
    last_seq = 0

    async def send() -> None:
        for frame in frames:
            await credits.acquire()
            await ws.send(frame)

    async def receive() -> None:
        nonlocal last_seq
        replies = 0
        while replies < len(frames):
            frame = json.loads(await ws.recv())
            if frame.get("type") == "error":
                raise RuntimeError(f"the relay refused a frame: {frame}")
            if is_reply(frame):
                replies += 1
                last_seq = max(last_seq, frame.get("seq", 0))
                credits.release()

    async with asyncio.TaskGroup() as group:
        group.create_task(send())
        group.create_task(receive())
    return last_seq


def is_ack(frame: dict[str, Any]) -> bool:
    return bool(frame["type"] == "ack")


def is_echo(frame: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Round:
    rate: float  # messages per second
    server_us: float  # server CPU per message, microseconds: barely moved by noise
    others: float  # share of the machine other processes used meanwhile
    seqs: list[int]  # each socket's last acknowledged seq


async def timed(
    name: str,
    server: servers.Server,
    sockets: Sequence[ClientConnection],
    per_socket: int,
    is_reply: Reply,
    delivered: Callable[[], Awaitable[None]] | None = None,
) -> Round:
    """One round: every socket pipelines its frames, until every reply is in and, if
    given, `delivered` has returned."""
    machine = Machine(server.pid)
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(pipeline(ws, send_frames(name, n, per_socket), is_reply))
            for n, ws in enumerate(sockets)
        ]
    replied = time.perf_counter() - started
    if delivered is not None:
        await delivered()
    elapsed = time.perf_counter() - started
    count = len(sockets) * per_socket
    # CPU per message on each side says whether the server or this client is the limit.
    server_us = (server.cpu_seconds() - server_cpu) / count * 1e6
    client_us = (time.process_time() - client_cpu) / count * 1e6
    result = Round(count / elapsed, server_us, machine.others(), [t.result() for t in tasks])
    log(
        f"    {name}: {count} in {elapsed:.2f} s (replies done at {replied:.2f} s); CPU per "
        f"message: server {server_us:.0f} µs, client {client_us:.0f} µs; server busy "
        f"{server_us * count / 1e6 / elapsed:.0%} of a core; others {result.others:.0%}"
    )
    return result


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

    def expect(self, more: int) -> None:
        self.goal = self.count + more
        self.reached.clear()


class RelaySide:
    """The relay's visitors (one thread each) and the owner socket that counts arrivals."""

    def __init__(self, relay: servers.Relay, tokens: list[str], owner: ClientConnection) -> None:
        self.relay = relay
        self.tokens = tokens
        self.since = [0] * len(tokens)
        self.owner = owner
        self.tally = Tally()
        self.watcher = asyncio.create_task(clients.read_messages(owner, self.tally.add))

    @classmethod
    async def open(cls, relay: servers.Relay) -> RelaySide:
        tokens = await clients.start_threads(relay, SOCKETS)
        return cls(relay, tokens, await clients.owner(relay))

    async def delivered(self) -> None:
        # The watcher failing (owner socket closed) must end the wait, not hang it.
        reached = asyncio.create_task(self.tally.reached.wait())
        await asyncio.wait({reached, self.watcher}, return_when="FIRST_COMPLETED")
        reached.cancel()
        if not self.tally.reached.is_set():
            self.watcher.result()  # raises what went wrong
            raise RuntimeError("the owner socket closed before every message arrived")

    async def round(self, name: str, per_socket: int) -> Round:
        # Fresh sockets each round, as the relay caps frames per socket per minute;
        # resuming where the last round ended, as the widget does, so without a replay.
        visitors = await clients.visitors(self.relay, self.tokens, self.since)
        try:
            self.tally.expect(SOCKETS * per_socket)
            result = await timed(name, self.relay, visitors, per_socket, is_ack, self.delivered)
            self.since = result.seqs
            return result
        finally:
            await clients.close_all(visitors)

    async def close(self) -> None:
        self.watcher.cancel()
        await clients.close_all([self.owner])


async def echo_round(server: servers.Server, name: str, per_socket: int) -> Round:
    url = f"ws://{servers.HOST}:{server.port}/"
    sockets = [await clients.open_socket(url) for _ in range(SOCKETS)]
    try:
        return await timed(name, server, sockets, per_socket, is_echo)
    finally:
        await clients.close_all(sockets)


async def run() -> list[Row]:
    log(
        f"throughput: {SOCKETS} sockets x {PER_SOCKET} messages, window {WINDOW}; "
        f"median of {len(ROUNDS) - 1} rounds after a warm-up round"
    )
    ours: list[Round] = []
    base: list[Round] = []
    async with servers.relay() as relay, servers.echo_server() as echo:
        side = await RelaySide.open(relay)
        try:
            for n, per_socket in enumerate(ROUNDS):
                ours.append(await side.round(f"relay r{n}", per_socket))
                base.append(await echo_round(echo, f"echo r{n}", per_socket))
        finally:
            await side.close()
    ours, base = ours[1:], base[1:]  # the warm-up round is not counted

    def median(rounds: list[Round], field: Callable[[Round], float]) -> float:
        return statistics.median(field(r) for r in rounds)

    others = median(ours + base, lambda r: r.others)
    note = f"noisy: others {others:.0%}" if others > NOISY_OTHERS else ""
    return [
        Row(
            "throughput (msg/s)",
            median(ours, lambda r: r.rate),
            "msg/s",
            median(base, lambda r: r.rate),
            at_least_ratio(0.6, "echo"),
            note,
        ),
        # What the rate costs in server CPU: nearly immune to noise, and it says why.
        Row(
            "  server CPU per message (µs)",
            median(ours, lambda r: r.server_us),
            "µs",
            median(base, lambda r: r.server_us),
        ),
    ]
