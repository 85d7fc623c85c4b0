"""What keeps working after a visitor signed out everywhere: nothing of before. Tokens
and sockets are covered by tests/test_continuity.py; here, resume links, sent or still
waiting to be sent."""

from __future__ import annotations

from collections.abc import Callable

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
