"""Acked means committed, across many crashes: `porch serve` is killed with SIGKILL again
and again while visitors (over the live socket and over HTTP) and the owner keep
writing. After each restart every client reconnects with its token, resumes from the
last seq it saw and sends again, with the same client_id, what was not acknowledged.

In the end every acknowledged message is stored exactly once, under the seq it was
acknowledged with, nothing else is stored, and each visitor has seen exactly the
messages of its thread, each once: resuming with `since` leaves no gap.

This replaces tests/test_crash.py (one kill after 2,000 acknowledged socket sends), whose
assertions it makes after every one of its kills, on both engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from relay.tokens import Tokens
from tests.pg import BOTH_ENGINES
from tests.reliability.backends import Backend, seed_for_process, serve_process
from tests.support import ALPHA_ORIGIN, SECRET, PorchProcess, bearer, free_port

pytestmark = BOTH_ENGINES  # the store under the relay: SQLite, then PostgreSQL

ROUNDS = 12  # kills
SOCKET_VISITORS = 4  # send over the live socket, several sends in flight
HTTP_VISITORS = 4  # send with POST /v1/thread/messages, read with GET /v1/thread
IN_FLIGHT = 3  # socket sends one visitor has unacknowledged at a time
ACKS_PER_ROUND = 40  # acknowledgements (all clients together) before the kill
CATCH_UP_EVERY = 3  # an HTTP visitor reads its thread after every third send
ROUND_TIMEOUT = 20.0  # seconds; a round takes a fraction of one
# What a client sees when the relay dies under it.
CONNECTION_LOST = (ConnectionClosed, OSError, httpx.TransportError)


@dataclass
class Writer:
    """What one client sent (client_id -> body, in order) and what the relay
    acknowledged (client_id -> seq)."""

    name: str
    sent: dict[str, str] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)
    resent: int = 0

    def compose(self) -> str:
        client_id = f"{self.name}-{len(self.sent)}"
        self.sent[client_id] = f"{self.name} message {len(self.sent)}"
        return client_id

    def unacked(self) -> list[str]:
        return [client_id for client_id in self.sent if client_id not in self.acked]

    def ack(self, client_id: str, seq: int) -> None:
        assert client_id in self.sent, f"{self.name}: ack for {client_id}, never sent"
        if client_id in self.acked:  # a resend of an acknowledged message: the same seq
            assert self.acked[client_id] == seq, f"{client_id} acked as {seq}, then differently"
        self.acked[client_id] = seq


@dataclass
class Visitor(Writer):
    token: str = ""
    thread: str = ""
    over_socket: bool = True
    # Seqs of its thread as they reached it in order: socket replays, live frames and
    # acks (a socket's ack carries its message, in the place of its copy in the stream),
    # or GET /v1/thread pages. The resume cursor is the highest; HTTP's 201s do not move
    # it (one may overtake a message of the owner still on its way).
    delivered: Counter[int] = field(default_factory=Counter)

    @property
    def since(self) -> int:
        return max(self.delivered, default=0)

    def saw(self, message: dict[str, Any]) -> None:
        assert message["thread"] == self.thread, f"{self.name} got another thread's message"
        self.delivered[message["seq"]] += 1

    def acked_over_socket(self, frame: dict[str, Any]) -> None:
        self.ack(frame["client_id"], frame["seq"])
        # Seen already: a resend of a message stored before the kill, which the replay
        # brought; its ack answers the resend and is no second delivery.
        if frame["seq"] not in self.delivered:
            self.saw(frame["message"])


@dataclass
class Round:
    """One life of the relay: clients count acknowledgements towards the kill."""

    url: str
    acks: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)

    def acked(self) -> None:
        self.acks += 1
        if self.acks >= ACKS_PER_ROUND:
            self.enough.set()

    @property
    def live_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/live"


# -- socket visitors ---------------------------------------------------------------------


async def socket_hello(visitor: Visitor, round_: Round) -> ClientConnection:
    """Connect, say hello from the last seq seen, take the replay until "ready"."""
    ws = await connect(round_.live_url, origin=ALPHA_ORIGIN, compression=None)  # type: ignore[arg-type]
    since = visitor.since
    await ws.send(json.dumps({"type": "hello", "token": visitor.token, "since": since}))
    replayed = []
    while (frame := json.loads(await ws.recv()))["type"] != "ready":
        if frame["type"] == "message":
            replayed.append(frame["message"]["seq"])
            visitor.saw(frame["message"])
    assert replayed == sorted(replayed) and all(seq > since for seq in replayed), (
        f"{visitor.name}: replay after {since} was {replayed}"
    )
    return ws


async def socket_visitor(visitor: Visitor, round_: Round) -> None:
    """Resend what was not acknowledged, then keep IN_FLIGHT sends going until the
    relay dies."""
    ws = await socket_hello(visitor, round_)
    waiting = visitor.unacked()
    visitor.resent += len(waiting)
    in_flight: set[str] = set()
    while True:
        while len(in_flight) < IN_FLIGHT:
            client_id = waiting.pop(0) if waiting else visitor.compose()
            body = visitor.sent[client_id]
            await ws.send(json.dumps({"type": "send", "body": body, "client_id": client_id}))
            in_flight.add(client_id)
        frame = json.loads(await ws.recv())
        if frame["type"] == "ack":
            visitor.acked_over_socket(frame)
            in_flight.discard(frame["client_id"])
            round_.acked()
        elif frame["type"] == "message":
            visitor.saw(frame["message"])
        elif frame["type"] == "error":
            raise AssertionError(f"{visitor.name}: {frame}")


async def socket_settle(visitor: Visitor, round_: Round) -> None:
    """The last reconnect: resend until everything is acknowledged and seen."""
    ws = await socket_hello(visitor, round_)
    try:
        waiting = visitor.unacked()
        visitor.resent += len(waiting)
        for client_id in waiting:
            body = visitor.sent[client_id]
            await ws.send(json.dumps({"type": "send", "body": body, "client_id": client_id}))
        while visitor.unacked() or not set(visitor.acked.values()) <= set(visitor.delivered):
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), ROUND_TIMEOUT))
            except TimeoutError:
                missing = sorted(set(visitor.acked.values()) - set(visitor.delivered))
                raise AssertionError(
                    f"{visitor.name}: no ack for {visitor.unacked()} or no message {missing}"
                ) from None
            if frame["type"] == "ack":
                visitor.acked_over_socket(frame)
            elif frame["type"] == "message":
                visitor.saw(frame["message"])
    finally:
        await ws.close()


# -- HTTP visitors -------------------------------------------------------------------------


def http_client(round_: Round, token: str) -> httpx.AsyncClient:
    headers = {"origin": ALPHA_ORIGIN, **bearer(token)}
    return httpx.AsyncClient(base_url=round_.url, headers=headers, timeout=ROUND_TIMEOUT)


async def catch_up(visitor: Visitor, client: httpx.AsyncClient) -> None:
    """GET /v1/thread?since=<last seq seen>, page after page."""
    while True:
        since = visitor.since
        response = await client.get("/v1/thread", params={"since": since})
        assert response.status_code == 200, response.text
        page = response.json()
        seqs = [message["seq"] for message in page["messages"]]
        assert seqs == sorted(seqs) and all(seq > since for seq in seqs), (
            f"{visitor.name}: history after {since} was {seqs}"
        )
        for message in page["messages"]:
            visitor.saw(message)
        if not page["more"]:
            return


async def http_send(visitor: Visitor, client: httpx.AsyncClient, client_id: str) -> None:
    body = visitor.sent[client_id]
    response = await client.post("/v1/thread/messages", json={"body": body, "client_id": client_id})
    assert response.status_code in (200, 201), response.text  # 200: stored before
    visitor.ack(client_id, response.json()["seq"])


async def http_visitor(visitor: Visitor, round_: Round) -> None:
    async with http_client(round_, visitor.token) as client:
        await catch_up(visitor, client)
        waiting = visitor.unacked()
        visitor.resent += len(waiting)
        sends = 0
        while True:
            await http_send(visitor, client, waiting.pop(0) if waiting else visitor.compose())
            round_.acked()
            sends += 1
            if sends % CATCH_UP_EVERY == 0:
                await catch_up(visitor, client)


async def http_settle(visitor: Visitor, round_: Round) -> None:
    async with http_client(round_, visitor.token) as client:
        waiting = visitor.unacked()
        visitor.resent += len(waiting)
        for client_id in waiting:
            await http_send(visitor, client, client_id)
        await catch_up(visitor, client)


# -- the owner -------------------------------------------------------------------------------


@dataclass
class Owner(Writer):
    """Replies into every thread in turn (POST /v1/owner/threads/{id}/messages)."""

    token: str = ""
    threads: dict[str, str] = field(default_factory=dict)  # client_id -> thread

    def compose_for(self, thread: str) -> str:
        client_id = self.compose()
        self.threads[client_id] = thread
        return client_id

    async def send(self, client: httpx.AsyncClient, client_id: str) -> None:
        response = await client.post(
            f"/v1/owner/threads/{self.threads[client_id]}/messages",
            json={"body": self.sent[client_id], "client_id": client_id},
        )
        assert response.status_code in (200, 201), response.text
        self.ack(client_id, response.json()["seq"])

    async def run(self, round_: Round, threads: list[str], settle: bool = False) -> None:
        async with httpx.AsyncClient(
            base_url=round_.url, headers=bearer(self.token), timeout=ROUND_TIMEOUT
        ) as client:
            waiting = self.unacked()
            self.resent += len(waiting)
            for client_id in waiting:
                await self.send(client, client_id)
                round_.acked()
            turn = 0
            while not settle:
                await self.send(client, self.compose_for(threads[turn % len(threads)]))
                round_.acked()
                turn += 1


# -- the test ----------------------------------------------------------------------------------


async def until_dead(work: Awaitable[None]) -> None:
    """Run a client until the relay dies under it."""
    with contextlib.suppress(CONNECTION_LOST):
        await work


async def start_visitors(url: str) -> list[Visitor]:
    visitors = []
    async with httpx.AsyncClient(base_url=url, headers={"origin": ALPHA_ORIGIN}) as client:
        for v in range(SOCKET_VISITORS + HTTP_VISITORS):
            visitor = Visitor(f"v{v}", over_socket=v < SOCKET_VISITORS)
            client_id = visitor.compose()
            response = await client.post(
                "/v1/sites/alpha/threads",
                json={"body": visitor.sent[client_id], "client_id": client_id},
            )
            assert response.status_code == 201, response.text
            started = response.json()
            visitor.token, visitor.thread = started["token"], started["thread"]["id"]
            visitor.ack(client_id, started["message"]["seq"])
            visitors.append(visitor)
    return visitors


async def kill_under_load(
    process: PorchProcess, visitors: list[Visitor], owner: Owner, kills: list[int]
) -> None:
    """Run every client against `process`, kill -9 it after ACKS_PER_ROUND acks."""
    round_ = Round(process.url)
    threads = [visitor.thread for visitor in visitors]
    clients = [
        asyncio.create_task(
            until_dead(
                socket_visitor(visitor, round_)
                if visitor.over_socket
                else http_visitor(visitor, round_)
            )
        )
        for visitor in visitors
    ]
    clients.append(asyncio.create_task(until_dead(owner.run(round_, threads))))
    enough = asyncio.create_task(round_.enough.wait())
    done, _ = await asyncio.wait(
        [enough, *clients], timeout=ROUND_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
    )
    await process.kill()
    enough.cancel()
    await asyncio.gather(*clients)  # a client that failed an assertion raises it here
    assert enough in done, f"only {round_.acks} acks within {ROUND_TIMEOUT} s"
    kills.append(round_.acks)


async def test_kill_9_in_a_loop_loses_and_doubles_nothing(backend: Backend) -> None:
    seed_for_process(backend)
    port = free_port()  # the same port every time: clients come back to the same address
    process = await serve_process(backend, port)
    kills: list[int] = []
    try:
        visitors = await start_visitors(process.url)
        owner = Owner("owner", token=Tokens((SECRET,)).owner_token("alpha"))
        for _ in range(ROUNDS):
            await kill_under_load(process, visitors, owner, kills)
            process = await serve_process(backend, port)
        round_ = Round(process.url)
        await owner.run(round_, [], settle=True)
        await asyncio.gather(
            *(
                socket_settle(visitor, round_)
                if visitor.over_socket
                else http_settle(visitor, round_)
                for visitor in visitors
            )
        )
    finally:
        await process.stop()

    assert len(kills) == ROUNDS and min(kills) >= ACKS_PER_ROUND
    writers: list[Writer] = [*visitors, owner]
    # Something was in flight at some kill (else the resends were never exercised).
    assert sum(writer.resent for writer in writers) > 0
    stored = backend.messages()
    by_client_id: dict[str, list[int]] = {}
    for message in stored:
        assert message.client_id is not None
        by_client_id.setdefault(message.client_id, []).append(message.seq)
    for writer in writers:
        assert not writer.unacked(), f"{writer.name} never got an ack for {writer.unacked()}"
        for client_id, seq in writer.acked.items():
            assert by_client_id.get(client_id) == [seq], (
                f"{client_id} acked as {seq}, stored as {by_client_id.get(client_id)}"
            )
    assert len(stored) == sum(len(writer.acked) for writer in writers), "unacked rows stored"
    for client_id, thread in owner.threads.items():
        assert next(m.thread for m in stored if m.client_id == client_id) == thread
    for visitor in visitors:
        in_thread = {message.seq for message in stored if message.thread == visitor.thread}
        missed = sorted(in_thread - set(visitor.delivered))
        assert not missed, f"{visitor.name} never saw {missed}"
        assert set(visitor.delivered) == in_thread
        twice = sorted(seq for seq, times in visitor.delivered.items() if times > 1)
        assert not twice, f"{visitor.name} was given {twice} more than once"
