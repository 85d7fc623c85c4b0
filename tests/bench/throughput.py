"""Throughput: messages per second through the relay versus a bare websockets echo server,
on both of the widget's send paths (issue 20).

Socket path: SOCKETS visitor sockets each send PER_SOCKET messages, keeping up to WINDOW
unacknowledged; a message counts once its ack is back AND the owner's socket has it.
The frames those sockets receive are counted too: one per message, the ack (the relay
sends the sender no copy of its own message).
HTTP path (the widget without a ready socket): the same visitors each POST
HTTP_PER_VISITOR messages to /v1/thread/messages over WINDOW keep-alive connections,
one request at a time on each; a message counts once its 201 is back AND the owner's
socket has it.
Echo: the same sockets, frames and window; a frame counts once its echo is back.

Client and servers are separate processes sharing the machine's two cores, so the
client's own cost weighs on both numbers. Both servers stay up and their rounds
alternate, so a burst of noise from the rest of the machine hits both sides alike;
the result is the median round of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import re
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection

from relay.config import Config
from tests.bench import clients, servers
from tests.bench.harness import NOISY_OTHERS, Machine, Row, at_least_ratio, at_most, log

FRAMES_PER_MINUTE = Config.ws_frames_per_minute  # a live socket's frames a minute, by default

SOCKETS = 50
PER_SOCKET = 200
WINDOW = 8
# Messages per socket in each round: a short warm-up round, not counted, then the
# measured rounds.
ROUNDS = (10, PER_SOCKET, PER_SOCKET, PER_SOCKET)
# The relay closes a socket sending more than FRAMES_PER_MINUTE (relay/live.py), its
# default: a socket must stay under it.
assert PER_SOCKET < FRAMES_PER_MINUTE
# POSTs per visitor in each HTTP round: half the socket rounds' messages, as a request
# costs both sides more than a frame and the benchmark has a minute in all; rates and
# CPU per message compare all the same.
HTTP_PER_VISITOR = PER_SOCKET // 2
CREATED = 201
CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)")

Reply = Callable[[dict[str, Any]], bool]


def send_frames(name: str, socket: int, count: int) -> list[str]:
    tag = name.replace(" ", "-")  # client ids allow no spaces
    return [
        clients.dumps(
            {"type": "send", "body": f"message {i} of {socket}", "client_id": f"{tag}-{socket}-{i}"}
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class Sent:
    """What one sender saw: the highest seq its replies carried (0 for echoes), and
    how many frames it received (its replies and anything else; 0 over HTTP)."""

    last_seq: int
    frames: int


async def pipeline(ws: ClientConnection, frames: Sequence[str], is_reply: Reply) -> Sent:
    """Send `frames` with at most WINDOW awaiting their reply, until every reply is in."""
    credits = asyncio.Semaphore(WINDOW)
    last_seq = received = 0

    async def send() -> None:
        for frame in frames:
            await credits.acquire()
            await ws.send(frame)

    async def receive() -> None:
        nonlocal last_seq, received
        replies = 0
        while replies < len(frames):
            frame = json.loads(await ws.recv())
            received += 1
            if frame.get("type") == "error":
                raise RuntimeError(f"the relay refused a frame: {frame}")
            if is_reply(frame):
                replies += 1
                last_seq = max(last_seq, frame.get("seq", 0))
                credits.release()

    async with asyncio.TaskGroup() as group:
        group.create_task(send())
        group.create_task(receive())
    return Sent(last_seq, received)


class KeepAlive:
    """One keep-alive HTTP/1.1 connection to the relay, one request at a time: the
    least client work a POST can cost (httpx took 3 to 7 ms of client CPU per request
    here, more than the relay, and the two share the machine)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> KeepAlive:
        return cls(*await asyncio.open_connection(servers.HOST, port))

    async def post(self, path: str, token: str, body: bytes) -> int:
        """The status; the answer's body is read (Content-Length) and dropped."""
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nhost: {servers.HOST}\r\nauthorization: Bearer {token}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = CONTENT_LENGTH.search(head)
        await self.reader.readexactly(int(length.group(1)) if length else 0)
        return int(head.split(b" ", 2)[1])

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def post_all(connections: Sequence[KeepAlive], token: str, bodies: Sequence[bytes]) -> Sent:
    """POST `bodies` to /v1/thread/messages over `connections`, each until its 201."""

    async def post(connection: KeepAlive, share: Sequence[bytes]) -> None:
        for body in share:
            status = await connection.post("/v1/thread/messages", token, body)
            if status != CREATED:
                raise RuntimeError(f"the relay answered a POST with {status}")

    width = len(connections)
    async with asyncio.TaskGroup() as group:
        for n, connection in enumerate(connections):
            group.create_task(post(connection, bodies[n::width]))
    return Sent(0, 0)


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
    frames: float  # frames each sender received per message it sent


async def timed(
    name: str,
    server: servers.Server,
    senders: Sequence[Callable[[], Coroutine[Any, Any, Sent]]],
    count: int,
    delivered: Callable[[], Awaitable[None]] | None = None,
) -> Round:
    """One round: every sender sends its `count / len(senders)` messages, until every
    reply is in and, if given, `delivered` has returned."""
    machine = Machine(server.pid)
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(send()) for send in senders]
    replied = time.perf_counter() - started
    if delivered is not None:
        await delivered()
    elapsed = time.perf_counter() - started
    sent = [t.result() for t in tasks]
    # CPU per message on each side says whether the server or this client is the limit.
    server_us = (server.cpu_seconds() - server_cpu) / count * 1e6
    client_us = (time.process_time() - client_cpu) / count * 1e6
    frames = sum(s.frames for s in sent) / count
    result = Round(count / elapsed, server_us, machine.others(), [s.last_seq for s in sent], frames)
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
            count = len(visitors) * per_socket
            self.tally.expect(count)
            senders = [
                functools.partial(pipeline, ws, send_frames(name, n, per_socket), is_ack)
                for n, ws in enumerate(visitors)
            ]
            result = await timed(name, self.relay, senders, count, self.delivered)
            self.since = result.seqs
            return result
        finally:
            await clients.close_all(visitors)

    async def http_round(self, name: str, per_visitor: int) -> Round:
        """The same visitors without sockets: each POSTs `per_visitor` messages over
        WINDOW keep-alive connections, opened before the clock starts (fresh each
        round, like the sockets: the relay closes idle ones)."""
        tag = name.replace(" ", "-")
        count = len(self.tokens) * per_visitor
        connections = await asyncio.gather(
            *(KeepAlive.open(self.relay.port) for _ in range(len(self.tokens) * WINDOW))
        )
        try:
            self.tally.expect(count)
            senders = [
                functools.partial(
                    post_all,
                    connections[n * WINDOW : (n + 1) * WINDOW],
                    token,
                    [
                        clients.dumps(
                            {"body": f"post {i} of {n}", "client_id": f"{tag}-{n}-{i}"}
                        ).encode()
                        for i in range(per_visitor)
                    ],
                )
                for n, token in enumerate(self.tokens)
            ]
            return await timed(name, self.relay, senders, count, self.delivered)
        finally:
            await asyncio.gather(*(c.close() for c in connections))

    async def close(self) -> None:
        self.watcher.cancel()
        await clients.close_all([self.owner])


async def echo_round(server: servers.Server, name: str, per_socket: int) -> Round:
    url = f"ws://{servers.HOST}:{server.port}/"
    sockets = [await clients.open_socket(url) for _ in range(SOCKETS)]
    senders = [
        functools.partial(pipeline, ws, send_frames(name, n, per_socket), is_echo)
        for n, ws in enumerate(sockets)
    ]
    try:
        return await timed(name, server, senders, SOCKETS * per_socket)
    finally:
        await clients.close_all(sockets)


async def run() -> list[Row]:
    log(
        f"throughput: {SOCKETS} sockets x {PER_SOCKET} messages, window {WINDOW}, and "
        f"{SOCKETS} visitors x {HTTP_PER_VISITOR} POSTs, {WINDOW} in flight each; "
        f"median of {len(ROUNDS) - 1} rounds after a warm-up round"
    )
    ours: list[Round] = []
    posted: list[Round] = []
    base: list[Round] = []
    async with servers.relay() as relay, servers.echo_server() as echo:
        side = await RelaySide.open(relay)
        try:
            for n, per_socket in enumerate(ROUNDS):
                ours.append(await side.round(f"relay r{n}", per_socket))
                per_visitor = min(per_socket, HTTP_PER_VISITOR)
                posted.append(await side.http_round(f"http r{n}", per_visitor))
                base.append(await echo_round(echo, f"echo r{n}", per_socket))
        finally:
            await side.close()
    # The warm-up round is not counted.
    ours, posted, base = ours[1:], posted[1:], base[1:]

    def median(rounds: list[Round], field: Callable[[Round], float]) -> float:
        return statistics.median(field(r) for r in rounds)

    def noted(rounds: list[Round]) -> str:
        others = median(rounds + base, lambda r: r.others)
        return f"noisy: others {others:.0%}" if others > NOISY_OTHERS else ""

    echo_rate = median(base, lambda r: r.rate)
    echo_us = median(base, lambda r: r.server_us)
    return [
        Row(
            "throughput, socket path (msg/s)",
            median(ours, lambda r: r.rate),
            "msg/s",
            echo_rate,
            at_least_ratio(0.6, "echo"),
            noted(ours),
        ),
        # What the rate costs in server CPU: nearly immune to noise, and it says why.
        Row("  server CPU per message (µs)", median(ours, lambda r: r.server_us), "µs", echo_us),
        # The sender's ack and nothing else (no copy of its own message); echo: its echo.
        Row(
            "  frames to the sender per message",
            median(ours, lambda r: r.frames),
            "frames",
            median(base, lambda r: r.frames),
            at_most(1, "frame"),
        ),
        Row(
            "throughput, HTTP path (msg/s)",
            median(posted, lambda r: r.rate),
            "msg/s",
            echo_rate,
            note=noted(posted),
        ),
        Row(
            "  server CPU per message, HTTP (µs)",
            median(posted, lambda r: r.server_us),
            "µs",
            echo_us,
        ),
    ]
