"""Outgoing mail against a real SMTP server (aiosmtpd): owner notifications, visitor
notifications, batching, retries, permanent failures, unsubscribe."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import httpx
import pytest

from relay.channels.email.reading import REPLY_MARKERS
from tests.mail.smtp_sink import SinkServer
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, free_port, start_thread, tampered

pytestmark = BOTH_ENGINES

REPLY_DOMAIN = "reply.example"


@pytest.fixture
def mail_relay(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> RunningRelay:
    return make_relay(
        smtp_url=sink.url, reply_domain=REPLY_DOMAIN, owner_notify_delay=0, visitor_notify_delay=0
    )


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]


def new_text(message: EmailMessage) -> list[str]:
    """The words of the new messages: after our marker, before the earlier history."""
    body = text_of(message)
    assert body.startswith(REPLY_MARKERS[0])  # the marker first: replies go above it
    return body.split(REPLY_MARKERS[0])[1].split("Earlier in this conversation:")[0].split()


def outbox(relay: RunningRelay) -> list[sqlite3.Row]:
    with relay.db() as db:
        return db.execute("SELECT * FROM outbox ORDER BY id").fetchall()


async def test_owner_gets_each_visitor_message_with_reply_address(
    mail_relay: RunningRelay, sink: SinkServer
) -> None:
    async with mail_relay.client() as client:
        started = await start_thread(
            client, "Do you bake rye on Sundays?", name="Ann\r\nBcc: x@evil.example"
        )
    mail = await sink.sink.next()
    assert mail["To"] == "owner@alpha.example"
    name, sender = parseaddr(mail["From"])
    # CR/LF gone (no injection), and nothing that reads as an address (tests/security)
    assert name == "Ann Bcc x evil.example via Alpha Bakery"
    assert mail["Bcc"] is None
    assert sender == f"notify@{REPLY_DOMAIN}"
    local, _, domain = parseaddr(mail["Reply-To"])[1].partition("@")
    assert domain == REPLY_DOMAIN and local.startswith("r+") and local[2:].islower()
    assert len(local) <= 64
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-Auto-Response-Suppress"] == "All"
    thread = started["thread"]["id"]
    assert mail["In-Reply-To"] == mail["References"] == f"<thread.{thread}@{REPLY_DOMAIN}>"
    assert mail["Message-ID"].startswith("<outbox.")
    assert new_text(mail) == ["Do", "you", "bake", "rye", "on", "Sundays?"]
    assert mail.get_body(("html",)) is not None
    # The tag was recorded for the reply to come back to this thread.
    with mail_relay.db() as db:
        row = db.execute("SELECT thread_id, recipient FROM reply_tags").fetchone()
    assert tuple(row) == (thread, "owner@alpha.example")
    sent = await wait_for_row(mail_relay, lambda r: r["status"] == "sent")  # recorded after
    assert sent["kind"] == "owner_notify" and len(outbox(mail_relay)) == 1


async def test_consecutive_messages_go_in_one_email(make_relay: Any, sink: SinkServer) -> None:
    relay = make_relay(smtp_url=sink.url, reply_domain=REPLY_DOMAIN, owner_notify_delay=2)
    async with relay.client() as client:
        started = await start_thread(client, "first")
        for text in ("second", "third"):
            await client.post(
                "/v1/thread/messages", headers=bearer(started["token"]), json={"body": text}
            )
    mail = await sink.sink.next()
    assert new_text(mail) == ["first", "second", "third"]
    subject = mail["Subject"]
    async with relay.client() as client:  # a later message: a new email, same subject
        await client.post(
            "/v1/thread/messages", headers=bearer(started["token"]), json={"body": "fourth"}
        )
    later = await sink.sink.next()
    assert later["Subject"] == subject
    assert new_text(later) == ["fourth"]
    assert sink.sink.count == 2


async def test_mail_server_down_delays_but_never_loses_or_doubles(make_relay: Any) -> None:
    port = free_port()  # nothing listens here yet
    relay = make_relay(
        smtp_url=f"smtp://127.0.0.1:{port}", reply_domain=REPLY_DOMAIN, owner_notify_delay=0
    )
    mailer = relay.services.workers["email"]
    mailer.retry_base = 0.2
    async with relay.client() as client:
        await start_thread(client, "anyone there?")
    # Between two tries: a try claims the row ("sending") for as long as it lasts.
    row = await wait_for_row(relay, lambda r: r["attempts"] >= 2 and r["status"] != "sending")
    assert row["status"] == "pending" and "Connect" in (row["last_error"] or "")
    server = SinkServer(port).start()
    try:
        mail = await server.sink.next(timeout=15)
        assert new_text(mail) == ["anyone", "there?"]
        row = await wait_for_row(relay, lambda r: r["status"] == "sent")
        await asyncio.sleep(0.5)  # would a second copy come? (nothing to await for "never")
        assert server.sink.count == 1
    finally:
        server.stop()


async def test_permanent_refusal_is_recorded_and_shown(
    make_relay: Any, sink: SinkServer, tmp_path: Any
) -> None:
    sink.sink.refuse = True
    relay = make_relay(smtp_url=sink.url, reply_domain=REPLY_DOMAIN, owner_notify_delay=0)
    async with relay.client() as client:
        await start_thread(client, "hello")
    row = await wait_for_row(relay, lambda r: r["status"] == "failed")
    assert row["last_error"].startswith("550")
    status = await asyncio.to_thread(porch_mail_status, relay)
    assert "failed" in status and "550" in status and "owner@alpha.example" in status


async def test_visitor_gets_unseen_owner_reply_once_until_confirmed(
    mail_relay: RunningRelay, sink: SinkServer
) -> None:
    async with mail_relay.client() as client:
        started = await start_thread(client, "Call me back?")
        await sink.sink.next()  # the owner's notification
        auth = bearer(started["token"])
        saved = await client.post(
            "/v1/thread/contact", headers=auth, json={"name": "Ann", "email": "Ann@Example.com"}
        )
        assert saved.status_code == 200
        thread = started["thread"]["id"]
        owner = bearer(mail_relay.owner_token())
        await client.post(
            f"/v1/owner/threads/{thread}/messages", headers=owner, json={"body": "Yes, at 5 pm."}
        )
        mail = await sink.sink.next()
        assert mail["To"] == "ann@example.com"  # addresses are kept lowercased
        assert "Yes, at 5 pm." in text_of(mail)
        assert "#porch=" in text_of(mail)  # a resume link: opens the thread anywhere
        unsubscribe = mail["List-Unsubscribe"].strip("<>")
        assert unsubscribe.startswith(mail_relay.url + "/v1/unsubscribe/")
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # Unconfirmed address: one email at most, however many replies follow.
        await client.post(
            f"/v1/owner/threads/{thread}/messages", headers=owner, json={"body": "Or at 6?"}
        )
        await asyncio.sleep(0.5)  # nothing to await: we assert that nothing comes
        assert sink.sink.empty()


async def test_reply_seen_in_the_widget_is_not_emailed(make_relay: Any, sink: SinkServer) -> None:
    relay = make_relay(
        smtp_url=sink.url, reply_domain=REPLY_DOMAIN, owner_notify_delay=0, visitor_notify_delay=1
    )
    async with relay.client() as client:
        started = await start_thread(client, "hi")
        await sink.sink.next()
        auth = bearer(started["token"])
        await client.post("/v1/thread/contact", headers=auth, json={"email": "ann@example.com"})
        thread = started["thread"]["id"]
        reply = await client.post(
            f"/v1/owner/threads/{thread}/messages",
            headers=bearer(relay.owner_token()),
            json={"body": "hello!"},
        )
        await client.post("/v1/thread/read", headers=auth, json={"seq": reply.json()["seq"]})
    row = await wait_for_row(
        relay, lambda r: r["kind"] == "visitor_notify" and r["status"] != "pending"
    )
    assert row["status"] == "cancelled" and row["last_error"] == "already seen"
    assert sink.sink.empty()


async def test_unsubscribe_link_stops_mail(mail_relay: RunningRelay, sink: SinkServer) -> None:
    async with mail_relay.client() as client:
        started = await start_thread(client, "hi")
        await sink.sink.next()
        await client.post(
            "/v1/thread/contact",
            headers=bearer(started["token"]),
            json={"email": "ann@example.com"},
        )
        thread = started["thread"]["id"]
        owner = bearer(mail_relay.owner_token())
        await client.post(
            f"/v1/owner/threads/{thread}/messages", headers=owner, json={"body": "one"}
        )
        url = (await sink.sink.next())["List-Unsubscribe"].strip("<>")
    async with httpx.AsyncClient() as plain:
        page = await plain.get(url)
        assert page.status_code == 200 and "ann@example.com" in page.text
        forged = await plain.post(tampered(url), content=b"List-Unsubscribe=One-Click")
        assert forged.status_code == 401
        done = await plain.post(url, content=b"List-Unsubscribe=One-Click")
        assert done.status_code == 200
    with mail_relay.db() as db:
        assert (
            db.execute(
                "SELECT reason FROM suppressed WHERE address = 'ann@example.com'"
            ).fetchone()[0]
            == "unsubscribed"
        )


async def wait_for_row(
    relay: RunningRelay, condition: Callable[[sqlite3.Row], bool], timeout: float = 15.0
) -> sqlite3.Row:
    """Poll the outbox (another process's table: no event reaches the test)."""
    async with asyncio.timeout(timeout):
        while True:
            for row in outbox(relay):
                if condition(row):
                    return row
            await asyncio.sleep(0.05)


def porch_mail_status(relay: RunningRelay) -> str:
    import subprocess

    from tests.support import porch_command, relay_env

    env = relay_env(relay)
    result = subprocess.run(
        [*porch_command(), "mail", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout
