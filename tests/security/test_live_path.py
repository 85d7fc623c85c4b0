"""Attacks on the lean live path (issue 20): sockets routed by relay.web.sockets around
Starlette's router, frames parsed and encoded on a fast path, and the sender's ack
standing in place of its copy. What must hold: only the two socket paths bypass the
router, a frame refused by the HTTP parser is refused here too, a client_id is stored
once whichever way and however often it goes, a closed socket leaves nothing behind,
and an ack's seq can be taken as the cursor (the README's promise).

SQLite only: the ack's ordering is engine-independent code (relay/web/live.py), and
PostgreSQL's store is being reworked in the same checkout.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.support import (
    ALPHA_ORIGIN,
    RunningRelay,
    bearer,
    open_live,
    start_thread,
)
from tests.test_live import CLOSE_BAD_FRAME, CLOSE_RATE_LIMITED, closed_with

CLOSE_NOT_UTF8 = 1007  # RFC 6455 7.4.1: a text frame that is not UTF-8
HANDSHAKE_REFUSED = 403  # what uvicorn answers a WebSocket no route takes
# A big frame: 3,990 four-byte characters, just under the body limit (4,000 characters)
# and the request limit (64 KiB): a few fill the buffers of a reader that stopped reading.
BIG_BODY = "\N{GRINNING FACE}" * 3990
# A client's receive buffer small enough that a handful of big frames fill it.
SMALL_RCVBUF = 4096
POLL = 0.02  # seconds between two looks at the relay's state, up to a deadline


# -- helpers ---------------------------------------------------------------------------


async def until(relay: RunningRelay, holds: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `holds()`, evaluated on the relay's loop, is true; TimeoutError if not."""

    async def look() -> bool:
        return holds()

    async with asyncio.timeout(timeout):
        while not await relay.call(look()):
            await asyncio.sleep(POLL)


async def socket_session(relay: RunningRelay, thread: str) -> Any:
    """The relay's Session of the one visitor socket watching `thread`."""

    async def find() -> list[Any]:
        return [watcher.__self__ for watcher in relay.services.bus._by_thread.get(thread, ())]

    [session] = await relay.call(find())
    return session


async def slow_reader(relay: RunningRelay, token: str, since: int) -> ClientConnection:
    """A visitor socket after hello and ready whose client then stops reading: a phone
    on a poor link. Its small receive buffer and queue let the relay's writes back up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    sock.connect(("127.0.0.1", relay.config.port))
    sock.setblocking(False)
    ws = await connect(
        relay.ws_url,
        sock=sock,
        origin=ALPHA_ORIGIN,  # type: ignore[arg-type]
        compression=None,
        max_queue=1,
    )
    await ws.send(json.dumps({"type": "hello", "token": token, "since": since}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"
    return ws


def frame_seq(frame: dict[str, Any]) -> int:
    return int(frame["seq"] if frame["type"] == "ack" else frame["message"]["seq"])


def stored_seqs(relay: RunningRelay, after: int) -> list[int]:
    with relay.db() as db:
        return [r[0] for r in db.execute("SELECT seq FROM messages WHERE seq > ?", (after,))]


def stored_bodies(relay: RunningRelay, client_id: str) -> list[str]:
    with relay.db() as db:
        rows = db.execute("SELECT body FROM messages WHERE client_id = ?", (client_id,))
        return [r[0] for r in rows]


# -- the acknowledgement's place in the stream ------------------------------------------


@pytest.mark.parametrize("client_id", ["mine", None], ids=["client-id", "no-client-id"])
async def test_an_acks_seq_is_a_safe_cursor_for_a_slow_reader(
    make_relay: Callable[..., RunningRelay], client_id: str | None
) -> None:
    relay = make_relay(visitor_messages_per_minute=1000, ip_messages_per_minute=1000)
    async with relay.client() as client:
        started = await start_thread(client, "start")
        thread, since = started["thread"]["id"], started["message"]["seq"]
        ws = await slow_reader(relay, started["token"], since)
        try:
            session = await socket_session(relay, thread)
            owner = {**bearer(relay.owner_token()), "content-type": "application/json"}
            # The owner writes until the relay holds frames it cannot write to this socket.
            for i in range(1000):
                body = json.dumps({"body": f"{i} {BIG_BODY}"}, ensure_ascii=False).encode()
                response = await client.post(
                    f"/v1/owner/threads/{thread}/messages", content=body, headers=owner
                )
                assert response.status_code == 201, response.text
                if len(session._outbox or ()) >= 3:
                    break
            else:
                raise TimeoutError("the relay never fell behind this reader")
            await ws.send(json.dumps({"type": "send", "body": "mine", "client_id": client_id}))
            # The ack waits for its turn: reading the stream brings everything before it.
            before_ack: list[int] = []
            while (frame := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "ack":
                before_ack.append(frame_seq(frame))
        finally:
            ws.transport.abort()  # the phone's link drops
        again = await open_live(relay, started["token"], since=frame["seq"])
        await again.ws.close()
    seen = sorted({*before_ack, frame["seq"], *(m["seq"] for m in again.replayed)})
    assert seen == stored_seqs(relay, since), "messages lost by resuming from the ack's seq"


async def test_two_tabs_sending_one_client_id_at_once_store_it_once(
    relay: RunningRelay,
) -> None:
    """Two tabs share the outbox (local storage): both may send its item at once."""
    async with relay.client() as client:
        started = await start_thread(client, "start")
        since = started["message"]["seq"]
        tabs = [await open_live(relay, started["token"], since=since) for _ in range(2)]
        await asyncio.gather(
            *(tab.send(type="send", body="once", client_id="shared") for tab in tabs)
        )
        acks = [await tab.next("ack") for tab in tabs]
        for tab in tabs:
            await tab.ws.close()
    assert stored_bodies(relay, "shared") == ["once"]
    assert acks[0]["seq"] == acks[1]["seq"] == acks[0]["message"]["seq"]
    assert {a["client_id"] for a in acks} == {"shared"}


async def test_a_send_acked_on_the_socket_and_retried_over_http_is_stored_once(
    relay: RunningRelay,
) -> None:
    """The widget's fallback: the ack was lost with its socket, the item goes over HTTP."""
    async with relay.client() as client:
        started = await start_thread(client, "start")
        live = await open_live(relay, started["token"], since=started["message"]["seq"])
        await live.send(type="send", body="hello", client_id="retried")
        ack = await live.next("ack")
        await live.ws.close()
        client.headers.update(bearer(started["token"]))
        retried = await client.post(
            "/v1/thread/messages", json={"body": "hello", "client_id": "retried"}
        )
        assert retried.status_code in (200, 201), retried.text
        again = await open_live(relay, started["token"], since=0)
        await again.send(type="send", body="hello", client_id="retried")
        ack_again = await again.next("ack")
        await again.ws.close()
    assert retried.json()["seq"] == ack["seq"] == ack_again["seq"]
    assert stored_bodies(relay, "retried") == ["hello"]


async def test_an_owner_reusing_a_client_id_in_two_threads_gets_each_its_own_ack(
    relay: RunningRelay,
) -> None:
    async with relay.client() as first, relay.client() as second:
        threads = [
            (await start_thread(visitor, body))["thread"]["id"]
            for visitor, body in ((first, "one"), (second, "two"))
        ]
    owner = await open_live(relay, relay.owner_token(), origin=None)
    for thread in threads:
        await owner.send(type="send", thread=thread, body=f"to {thread}", client_id="same")
    acks = [await owner.next("ack") for _ in threads]
    await owner.ws.close()
    assert [a["thread"] for a in acks] == threads
    assert [a["message"]["body"] for a in acks] == [f"to {t}" for t in threads]
    assert sorted(stored_bodies(relay, "same")) == sorted(f"to {t}" for t in threads)


async def test_a_send_without_client_id_is_stored_once_and_answered_once(
    relay: RunningRelay,
) -> None:
    """No client_id: nothing to de-duplicate by. The socket gets its ack, and at most
    one copy (README), never two of either."""
    async with relay.client() as client:
        started = await start_thread(client, "start")
        live = await open_live(relay, started["token"], since=started["message"]["seq"])
        await live.send(type="send", body="anonymous")
        await live.send(type="ping")
        frames = []
        while (frame := await live.next())["type"] != "pong":
            frames.append(frame)
        await live.ws.close()
    acks = [f for f in frames if f["type"] == "ack"]
    copies = [f for f in frames if f["type"] == "message"]
    assert len(acks) == 1 and acks[0]["client_id"] is None
    assert len(copies) <= 1 and all(frame_seq(c) == acks[0]["seq"] for c in copies)
    with relay.db() as db:
        assert (
            db.execute("SELECT COUNT(*) FROM messages WHERE body = 'anonymous'").fetchone()[0] == 1
        )


# -- the socket middleware ----------------------------------------------------------------


async def test_only_websockets_on_the_two_exact_paths_skip_the_router(
    relay: RunningRelay,
) -> None:
    """HTTP to a socket path is the router's 404; a WebSocket to any other spelling of
    the paths (or any other path) is refused at the handshake, as before."""
    async with relay.client() as client:
        for path in ("/v1/live", "/inbox/live"):
            assert (await client.get(path)).status_code == 404
            assert (await client.post(path, json={"type": "hello"})).status_code in (404, 405)
    base = relay.url.replace("http://", "ws://")
    for path in ("/v1/live/", "/v1/livex", "/V1/live", "/v1//live", "/inbox/live/", "/v1/thread"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(base + path, origin=ALPHA_ORIGIN):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == HANDSHAKE_REFUSED, path


async def test_the_frame_rate_limit_still_closes_a_direct_socket(
    make_relay: Callable[..., RunningRelay],
) -> None:
    relay = make_relay(ws_frames_per_minute=5)
    async with relay.client() as client:
        started = await start_thread(client)
    live = await open_live(relay, started["token"])
    for _ in range(6):
        await live.send(type="ping")
    pongs = [await live.next() for _ in range(5)]
    assert pongs == [{"type": "pong"}] * 5
    code, reason = await closed_with(live)
    assert code == CLOSE_RATE_LIMITED and "frames in a minute" in reason


async def test_closed_sockets_leave_no_watchers_behind(relay: RunningRelay) -> None:
    """Watching objects replaced generator context managers: each socket's must go."""

    async def watchers() -> int:
        return int(relay.services.bus.watcher_count())

    async with relay.client() as client:
        started = await start_thread(client, "start")
        before = await relay.call(watchers())
        lives = [await open_live(relay, started["token"]) for _ in range(10)]
        lives.append(await open_live(relay, relay.owner_token(), origin=None))
        assert await relay.call(watchers()) == before + len(lives)
        for n, live in enumerate(lives):
            await live.send(
                type="send", body=f"m{n}", client_id=f"m{n}", thread=started["thread"]["id"]
            )
            await live.next("ack")
        for live in lives[::2]:
            await live.ws.close()
        for live in lives[1::2]:
            live.ws.transport.abort()  # gone without a close frame
    await until(relay, lambda: relay.services.bus.watcher_count() == before)


# -- frame parsing and encoding -------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        b'{"type": "send", "body": "a\\ud800b", "client_id": "s1"}',
        b'{"type": "send", "body": "ok", "client_id": "s1", "\\udfff": 1}',
        b'{"type": "send", "body": "a\\udc00\\ud800", "client_id": "s1"}',
    ],
    ids=["escaped-in-body", "escaped-in-key", "reversed-pair"],
)
async def test_a_frame_escaping_a_lone_surrogate_is_refused_and_stores_nothing(
    relay: RunningRelay, frame: bytes
) -> None:
    async with relay.client() as client:
        started = await start_thread(client)
    live = await open_live(relay, started["token"])
    await live.ws.send(frame, text=True)
    code, reason = await closed_with(live)
    assert code == CLOSE_BAD_FRAME and "surrogate" in reason
    assert relay.counts()["messages"] == 1


async def test_a_text_frame_that_is_not_utf8_never_reaches_the_parser(
    relay: RunningRelay,
) -> None:
    """CESU-8 (a surrogate written as UTF-8 bytes): the one way to put a lone surrogate
    in a frame without a \\u escape, which the fast path no longer checks for."""
    async with relay.client() as client:
        started = await start_thread(client)
    live = await open_live(relay, started["token"])
    await live.ws.send(b'{"type": "send", "body": "a\xed\xa0\x80", "client_id": "s1"}', text=True)
    code, _ = await closed_with(live)
    assert code == CLOSE_NOT_UTF8
    assert relay.counts()["messages"] == 1


TEXTS = {
    "escaped-backslash": "a\\ud800 is text, not a surrogate",
    "accents": "Crème brûlée, s'il vous plaît",
    "emoji-pair": "\N{GRINNING FACE}\N{WOMAN}\u200d\N{PERSONAL COMPUTER}",
    "line-separators": "one\u2028two\u2029three",
    "script": '</script><script>alert("x")</script>',
    "quotes-and-slashes": '"\\/\\\\"',
}


@pytest.mark.parametrize("text", list(TEXTS.values()), ids=list(TEXTS))
async def test_the_socket_and_http_store_and_answer_the_same_text(
    relay: RunningRelay, text: str
) -> None:
    """orjson writes the frames, a shared decoder reads them: parity with the HTTP path
    (json both ways), byte for byte, and the escaped spellings of a frame read alike."""
    async with relay.client() as client:
        started = await start_thread(client)
        client.headers.update(bearer(started["token"]))
        live = await open_live(relay, started["token"], since=started["message"]["seq"])
        await live.ws.send(json.dumps({"type": "send", "body": text, "client_id": "raw"}))
        raw = await live.next("ack")
        await live.ws.send(
            json.dumps({"type": "send", "body": text, "client_id": "ascii"}, ensure_ascii=True)
        )
        escaped = await live.next("ack")
        await live.ws.close()
        over_http = await client.post("/v1/thread/messages", json={"body": text, "client_id": "h"})
        assert over_http.status_code == 201, over_http.text
    assert raw["message"]["body"] == escaped["message"]["body"] == over_http.json()["body"]
    assert stored_bodies(relay, "raw") == stored_bodies(relay, "ascii") == stored_bodies(relay, "h")
    assert stored_bodies(relay, "raw") == [over_http.json()["body"]]


async def test_an_inbox_page_socket_is_still_refused_to_other_origins_before_hello(
    relay: RunningRelay,
) -> None:
    """/inbox/live goes around the router now: its origin check still comes first."""
    url = relay.url.replace("http://", "ws://") + "/inbox/live"
    async with connect(url, origin=ALPHA_ORIGIN) as ws:  # type: ignore[arg-type]
        code, reason = await closed_with(ws)  # no hello needed to be turned away
    assert code == 4403 and "inbox itself" in reason
