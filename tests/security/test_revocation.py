"""What keeps working after a visitor signed out everywhere: nothing of before. Tokens
and sockets are covered by tests/test_continuity.py; here, resume links, sent or still
waiting to be sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from relay.errors import InvalidToken
from tests.mail.smtp_sink import SinkServer
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, free_port, start_thread
from tests.test_continuity import ask_link

pytestmark = BOTH_ENGINES


async def sign_out_everywhere(relay: RunningRelay, token: str) -> None:
    async with relay.client() as client:
        out = await client.post(
            "/v1/thread/sign-out", headers=bearer(token), json={"everywhere": True}
        )
    assert out.status_code == 204


async def test_a_link_sent_before_signing_out_no_longer_opens(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    relay = make_relay(smtp_url=sink.url, reply_domain="reply.example")
    async with relay.client() as client:
        started = await start_thread(client, "hi")
    _, link = await ask_link(relay, sink, started["token"])
    await sign_out_everywhere(relay, started["token"])
    before = relay.counts()
    async with relay.client() as client:
        opened = await client.post("/v1/resume", json={"token": link})
    assert opened.status_code == 401 and opened.json()["reason"] == "revoked"
    assert relay.counts() == before
    with relay.db() as db:  # refused without being spent, and the address not confirmed
        assert db.execute("SELECT COUNT(*) FROM resume_uses").fetchone()[0] == 0
        assert db.execute("SELECT email_verified_at FROM visitors").fetchone()[0] is None


async def test_a_link_still_queued_when_signing_out_is_never_sent(
    make_relay: Callable[..., RunningRelay],
) -> None:
    # A mail server that is down: the link waits in the outbox, retried with backoff.
    relay = make_relay(smtp_url=f"smtp://127.0.0.1:{free_port()}", reply_domain="reply.example")
    async with relay.client() as client:
        started = await start_thread(client, "hi")
        asked = await client.post(
            "/v1/thread/resume-link",
            headers=bearer(started["token"]),
            json={"email": "ann@example.com"},
        )
    assert asked.status_code == 202
    await sign_out_everywhere(relay, started["token"])
    with relay.db() as db:
        rows = db.execute(
            "SELECT status, last_error FROM outbox WHERE kind = 'resume_link'"
        ).fetchall()
    assert [tuple(row) for row in rows] == [("cancelled", "signed out everywhere")]


async def test_signing_out_forgets_the_address_left_for_replies(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    """Whoever held a token may have left their own address for replies: after signing
    out everywhere no reply, and no link in one, goes there."""
    relay = make_relay(
        smtp_url=sink.url, reply_domain="reply.example", owner_notify_delay=3600,
        visitor_notify_delay=3600,
    )  # fmt: skip
    async with relay.client() as client:
        started = await start_thread(client, "hi")
        thief = {"email": "thief@evil.example"}
        token = bearer(started["token"])
        assert (await client.post("/v1/thread/contact", headers=token, json=thief)).is_success
        owner = bearer(relay.owner_token())
        replies = f"/v1/owner/threads/{started['thread']['id']}/messages"
        assert (await client.post(replies, headers=owner, json={"body": "one"})).is_success
    await sign_out_everywhere(relay, started["token"])
    async with relay.client() as client:
        assert (await client.post(replies, headers=owner, json={"body": "two"})).is_success
    with relay.db() as db:
        assert db.execute("SELECT email FROM visitors").fetchone()[0] is None
        rows = db.execute("SELECT status FROM outbox WHERE kind = 'visitor_notify'").fetchall()
    assert [row[0] for row in rows] == ["cancelled"]  # the one queued before; none after


async def test_writes_that_race_a_sign_out_are_refused(
    make_relay: Callable[..., RunningRelay],
) -> None:
    """A request checked before the sign-out committed, writing after it: the store checks
    the token's epoch again inside the write."""
    relay = make_relay(smtp_url=f"smtp://127.0.0.1:{free_port()}", reply_domain="reply.example")
    async with relay.client() as client:
        started = await start_thread(client, "hi")
    await sign_out_everywhere(relay, started["token"])
    store = relay.services.store
    thread = await relay.call(store.get_thread(started["thread"]["id"]))
    with pytest.raises(InvalidToken):
        await relay.call(store.request_resume_link(thread, 0, "ann@example.com", "/"))
    with pytest.raises(InvalidToken):
        await relay.call(store.set_contact(thread.visitor, 0, name=None, email="a@b.c"))
    with relay.db() as db:
        assert (
            db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'resume_link'").fetchone()[0] == 0
        )
        assert db.execute("SELECT email FROM visitors").fetchone()[0] is None
