"""The live socket over real WebSockets: replay, streaming, acks, refusals, resume."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.pg import BOTH_ENGINES
from tests.support import BETA_ORIGIN, Live, RunningRelay, bearer, open_live, start_thread

pytestmark = BOTH_ENGINES

CLOSE_BAD_FRAME = 4400
CLOSE_BAD_TOKEN = 4401
CLOSE_BAD_ORIGIN = 4403
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_BIG = 1009  # RFC 6455: message too big


async def closed_with(live_or_ws: Live | object, timeout: float = 5.0) -> tuple[int, str]:
    ws = live_or_ws.ws if isinstance(live_or_ws, Live) else live_or_ws
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)  # type: ignore[attr-defined]
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_visitor_replay_ready_then_live(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "first")
        live = await open_live(relay, started["token"])
        assert [m["body"] for m in live.replayed] == ["first"]
        assert live.ready == {"type": "ready", "seq": started["message"]["seq"], "online": False}
        thread = started["thread"]["id"]
        await client.post(
            f"/v1/owner/threads/{thread}/messages",
            headers=bearer(relay.owner_token()),
            json={"body": "reply"},
        )
        frame = await live.next("message")
    assert frame["message"]["body"] == "reply" and frame["message"]["author"] == "owner"
    await live.ws.close()


FROM_THE_FUTURE = 10**15  # a cursor no message has reached: a client's storage went wrong


async def test_a_cursor_beyond_the_newest_seq_gets_the_real_one_and_misses_nothing(
    relay: RunningRelay,
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "first")
        visitor = await open_live(relay, started["token"], since=FROM_THE_FUTURE)
        owner = await open_live(relay, relay.owner_token(), since=FROM_THE_FUTURE, origin=None)
        newest = started["message"]["seq"]
        # Not an echo of the bad cursor: the real newest seq, and the visitor's thread again.
        assert visitor.ready["seq"] == newest and owner.ready["seq"] == newest
        assert [m["body"] for m in visitor.replayed] == ["first"]
        thread = started["thread"]["id"]
        await client.post(
            f"/v1/owner/threads/{thread}/messages",
            headers=bearer(relay.owner_token()),
            json={"body": "still reaches you"},
        )
        # Before, both sockets took every later message for one already sent.
        assert (await visitor.next("message"))["message"]["body"] == "still reaches you"
        assert (await owner.next("message"))["message"]["body"] == "still reaches you"
    await visitor.ws.close()
    await owner.ws.close()


async def test_send_is_acked_after_commit_and_reaches_owner(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "first")
    owner = await open_live(relay, relay.owner_token(), origin=None)
    visitor = await open_live(relay, started["token"])
    await visitor.send(type="send", body="over the socket", client_id="ws-1")
    ack = await visitor.next("ack")
    assert ack["client_id"] == "ws-1" and ack["thread"] == started["thread"]["id"]
    with relay.db() as db:  # acknowledged means committed
        row = db.execute("SELECT body FROM messages WHERE seq = ?", (ack["seq"],)).fetchone()
    assert row["body"] == "over the socket"
    seen = await owner.next("message")
    if seen["message"]["seq"] != ack["seq"]:  # the owner first replays "first"
        seen = await owner.next("message")
    assert seen["message"]["body"] == "over the socket"
    # The same client_id again: acked with the same seq, stored once.
    await visitor.send(type="send", body="over the socket", client_id="ws-1")
    assert (await visitor.next("ack"))["seq"] == ack["seq"]
    assert relay.counts()["messages"] == 2
    await visitor.ws.close()
    await owner.ws.close()


async def test_typing_and_read_events(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "hi")
    thread = started["thread"]["id"]
    visitor = await open_live(relay, started["token"])
    owner = await open_live(relay, relay.owner_token(), origin=None)
    await owner.send(type="typing", thread=thread)
    assert await visitor.next("typing") == {"type": "typing", "thread": thread, "author": "owner"}
    await owner.send(type="read", thread=thread, seq=started["message"]["seq"])
    read = await visitor.next("read")
    assert read == {
        "type": "read",
        "thread": thread,
        "author": "owner",
        "seq": started["message"]["seq"],
    }
    await visitor.send(type="typing")
    assert (await owner.next("typing"))["author"] == "visitor"
    await visitor.send(type="ping")
    assert await visitor.next("pong") == {"type": "pong"}
    await visitor.ws.close()
    await owner.ws.close()


async def test_invalid_body_gets_an_error_frame_and_socket_stays(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client)
    live = await open_live(relay, started["token"])
    await live.send(type="send", body="x" * 5000, client_id="big")
    error = await live.next("error")
    assert error["error"] == "too_large" and error["client_id"] == "big"
    await live.send(type="send", body="fine", client_id="ok")
    assert (await live.next("ack"))["client_id"] == "ok"
    assert relay.counts()["messages"] == 2
    await live.ws.close()


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        ("not json", CLOSE_BAD_FRAME),
        (json.dumps({"type": "send", "body": "x"}), CLOSE_BAD_FRAME),
        (json.dumps({"type": "hello"}), CLOSE_BAD_TOKEN),
        (json.dumps({"type": "hello", "token": "forged.token"}), CLOSE_BAD_TOKEN),
        (json.dumps({"type": "hello", "token": "__OWNER__", "since": -1}), CLOSE_BAD_FRAME),
    ],
)
async def test_bad_hello_closes_with_code(relay: RunningRelay, hello: str, code: int) -> None:
    async with connect(relay.ws_url) as ws:
        await ws.send(hello.replace("__OWNER__", relay.owner_token()))
        got, reason = await closed_with(ws)
    assert got == code
    assert reason


async def test_wrong_origin_on_socket(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client)
    async with connect(relay.ws_url, origin=BETA_ORIGIN) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello", "token": started["token"]}))
        code, reason = await closed_with(ws)
    assert code == CLOSE_BAD_ORIGIN and "not registered" in reason


async def test_oversized_frame_is_refused(make_relay) -> None:  # type: ignore[no-untyped-def]
    relay = make_relay(ws_max_frame_bytes=1024)
    async with relay.client() as client:
        started = await start_thread(client)
    live = await open_live(relay, started["token"])
    await live.send(type="send", body="x" * 2000, client_id="huge")
    code, _ = await closed_with(live)
    assert code == CLOSE_TOO_BIG
    assert relay.counts()["messages"] == 1


async def test_rate_limited_socket_is_closed(make_relay) -> None:  # type: ignore[no-untyped-def]
    relay = make_relay(visitor_messages_per_minute=2)
    async with relay.client() as client:
        started = await start_thread(client)
    live = await open_live(relay, started["token"])
    for i in range(3):
        await live.send(type="send", body=f"m{i}", client_id=f"m{i}")
    acks = [await live.next("ack"), await live.next("ack")]
    assert [a["client_id"] for a in acks] == ["m0", "m1"]
    code, reason = await closed_with(live)
    assert code == CLOSE_RATE_LIMITED and "too many" in reason
    assert relay.counts()["messages"] == 3


async def test_unknown_frame_type_closes(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client)
    live = await open_live(relay, started["token"])
    await live.send(type="dance")
    code, reason = await closed_with(live)
    assert code == CLOSE_BAD_FRAME and "dance" in reason


async def test_owner_cannot_touch_another_sites_thread(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client)
    owner = await open_live(relay, relay.owner_token("beta"), origin=None)
    assert owner.replayed == []  # alpha's message is not beta's to see
    await owner.send(type="send", thread=started["thread"]["id"], body="intrusion")
    code, _ = await closed_with(owner)
    assert code == 4404
    assert relay.counts()["messages"] == 1


async def test_resume_without_gaps_or_duplicates(relay: RunningRelay) -> None:
    """A reader that drops and resumes with its last seq, while others write, sees
    every message exactly once and in order."""
    writers, per_writer = 5, 40
    async with relay.client() as client:
        started = await start_thread(client, "start")
        thread = started["thread"]["id"]
        owner = bearer(relay.owner_token())

        async def write(w: int) -> None:
            for i in range(per_writer):
                response = await client.post(
                    f"/v1/owner/threads/{thread}/messages", headers=owner, json={"body": f"{w}-{i}"}
                )
                assert response.status_code == 201

        writing = asyncio.gather(*(write(w) for w in range(writers)))
        received: list[dict] = []
        rng = random.Random(7)
        while True:
            since = received[-1]["seq"] if received else 0
            live = await open_live(relay, started["token"], since=since)
            received.extend(live.replayed)
            try:  # read a few live frames, then drop the connection abruptly
                for _ in range(rng.randint(1, 15)):
                    received.append((await live.next("message", timeout=1))["message"])
            except TimeoutError:
                pass
            await live.ws.close()
            if writing.done() and len(received) >= 1 + writers * per_writer:
                break
        await writing
    seqs = [m["seq"] for m in received]
    assert len(seqs) == len(set(seqs)), "a message arrived twice"
    assert seqs == sorted(seqs), "messages arrived out of order"
    assert len(seqs) == 1 + writers * per_writer, "a message was lost"
    with relay.db() as db:
        stored = [r[0] for r in db.execute("SELECT seq FROM messages ORDER BY seq")]
    assert seqs == stored


async def test_the_sender_gets_its_message_in_the_ack_and_no_copy(relay: RunningRelay) -> None:
    """The sending socket's one frame for its message is the ack; the visitor's other
    tab and the owner get the message frame; resuming from the ack's seq misses nothing."""
    async with relay.client() as client:
        started = await start_thread(client, "first")
        first_seq = started["message"]["seq"]
        sender = await open_live(relay, started["token"], since=first_seq)
        other_tab = await open_live(relay, started["token"], since=first_seq)
        owner = await open_live(relay, relay.owner_token(), since=first_seq, origin=None)
        await sender.send(type="send", body="from this tab", client_id="tab-1")
        ack = await sender.next()  # nothing before it: no copy came first
        assert ack["type"] == "ack" and ack["client_id"] == "tab-1"
        assert ack["thread"] == started["thread"]["id"]
        stored = ack["message"]
        assert stored["seq"] == ack["seq"] and stored["body"] == "from this tab"
        assert stored["client_id"] == "tab-1" and stored["author"] == "visitor"
        seen_by_tab = (await other_tab.next("message"))["message"]
        assert seen_by_tab == stored  # the same visitor: their client_id too
        seen_by_owner = (await owner.next("message"))["message"]
        assert seen_by_owner == {**stored, "client_id": None}
        thread = started["thread"]["id"]
        await client.post(
            f"/v1/owner/threads/{thread}/messages",
            headers=bearer(relay.owner_token()),
            json={"body": "reply"},
        )
        # The stream is in seq order, so a copy would have come before the reply.
        reply = await sender.next()
        assert reply["type"] == "message" and reply["message"]["body"] == "reply"
        await sender.ws.close()
        again = await open_live(relay, started["token"], since=ack["seq"])
        assert [m["body"] for m in again.replayed] == ["reply"]
    for live in (other_tab, owner, again):
        await live.ws.close()


async def test_acks_stand_in_place_of_the_copies_while_others_write(make_relay) -> None:  # type: ignore[no-untyped-def]
    """A socket sending while the owner writes sees one frame per message of its
    thread, acks and messages alike, in seq order: its cursor never skips one."""
    sends = replies = 25
    relay = make_relay(visitor_messages_per_minute=1000, ip_messages_per_minute=1000)
    async with relay.client() as client:
        started = await start_thread(client, "start")
        thread = started["thread"]["id"]
        since = started["message"]["seq"]
        visitor = await open_live(relay, started["token"], since=since)

        async def reply() -> None:
            for i in range(replies):
                response = await client.post(
                    f"/v1/owner/threads/{thread}/messages",
                    headers=bearer(relay.owner_token()),
                    json={"body": f"reply {i}"},
                )
                assert response.status_code == 201

        writing = asyncio.create_task(reply())
        try:
            for i in range(sends):
                await visitor.send(type="send", body=f"send {i}", client_id=f"send-{i}")
            frames = [await visitor.next() for _ in range(sends + replies)]
        finally:
            await writing
    kinds = sorted({f["type"] for f in frames})
    assert kinds == ["ack", "message"], kinds
    seqs = [f["seq"] if f["type"] == "ack" else f["message"]["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    with relay.db() as db:
        stored = [r[0] for r in db.execute("SELECT seq FROM messages WHERE seq > ?", (since,))]
    assert sorted(seqs) == stored
    assert [f["client_id"] for f in frames if f["type"] == "ack"] == [
        f"send-{i}" for i in range(sends)
    ]
    await visitor.ws.close()
