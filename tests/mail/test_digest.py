"""Owner digests: when they leave (the site's wall clock, DST), what they gather (every
site of the owner, nothing the owner has read or was sent), and the notification
modes around them ('message', 'hourly', 'daily', 'off'), against a real relay and a
real SMTP server. The relay's clock starts a few seconds before the hour, so a digest
leaves without waiting for one."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import aiosmtplib
import pytest

from relay.channels.email.reading import LOOP_HEADER
from tests.mail.conftest import (
    OWNER,
    REPLY_DOMAIN,
    eventually,
    mail_relay,
    owner_reply,
    set_owner,
)
from tests.mail.smtp_sink import SinkServer
from tests.pg import BOTH_ENGINES
from tests.support import BETA_ORIGIN, RunningRelay, bearer, start_thread

BETA_OWNER = "owner@beta.example"
# Three seconds before the hour: time to start the relay and write, then the digest.
BEFORE_TEN = "2026-11-25T09:59:57Z"
MARGIN = 4.0  # seconds: a digest due later than this was scheduled for the next hour


def plain(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


pytestmark = BOTH_ENGINES


def html_of(mail: EmailMessage) -> str:
    part = mail.get_body(("html",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]


def outbox(relay: RunningRelay, kind: str | None = None) -> list[Any]:
    with relay.db() as db:
        return db.execute(
            "SELECT * FROM outbox WHERE CAST(?1 AS TEXT) IS NULL OR kind = ?1 ORDER BY id", (kind,)
        ).fetchall()


def seconds_until(stamp: str) -> float:
    return (datetime.fromisoformat(stamp) - datetime.now(UTC)).total_seconds()


def edit(relay: RunningRelay, sql: str, *params: Any) -> None:
    with contextlib.closing(relay.db()) as db, db:  # commit, then close
        db.execute(sql, params)


def share_beta_with(relay: RunningRelay, email: str) -> None:
    """Make `email` an owner of both sites (it already is of alpha)."""
    edit(
        relay,
        "UPDATE sites SET owner_emails = ? WHERE id = 'beta'",
        json.dumps([BETA_OWNER, email]),
    )


async def status_of(relay: RunningRelay, row_id: int, wanted: str) -> Any:
    def reached() -> bool:
        return any(r["id"] == row_id and r["status"] == wanted for r in outbox(relay))

    await eventually(reached, f"outbox row {row_id} to become {wanted!r}")
    return next(r for r in outbox(relay) if r["id"] == row_id)


async def only_pending_digest(relay: RunningRelay, before: int = 0) -> Any:
    rows = [r for r in outbox(relay, "owner_digest") if r["status"] == "pending"]
    assert len(rows) == 1 and rows[0]["id"] > before, [dict(r) for r in rows]
    assert rows[0]["thread_id"] is None and rows[0]["recipient"] == OWNER
    return rows[0]


@pytest.fixture
def digest_relay(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> RunningRelay:
    return mail_relay(make_relay, sink, clock_start=BEFORE_TEN)


async def test_hourly_digest_gathers_two_sites_then_starts_anew(
    digest_relay: RunningRelay, sink: SinkServer
) -> None:
    relay = digest_relay
    set_owner(relay, OWNER, notify="hourly")
    set_owner(relay, BETA_OWNER, notify="off")  # only OWNER's mail
    share_beta_with(relay, OWNER)
    async with relay.client() as alpha, relay.client(BETA_ORIGIN) as beta:
        ann = await start_thread(alpha, "Do you deliver to Lyon?", name="Ann")
        await alpha.post(
            "/v1/thread/messages", headers=bearer(ann["token"]), json={"body": "And on Sundays?"}
        )
        carol = await start_thread(beta, "Prix < 10 € pour une fuite ?", site="beta")
    pending = await only_pending_digest(relay)
    assert seconds_until(pending["not_before"]) < MARGIN, "the relay's clock passed 10:00 first"

    mail = await sink.sink.next()
    assert mail["To"] == OWNER
    assert mail["Subject"] == "3 new messages in 2 conversations"
    assert mail["Auto-Submitted"] == "auto-generated" and mail[LOOP_HEADER] == "1"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert re.fullmatch(rf"<outbox\.{pending['id']}\.digest@{REPLY_DOMAIN}>", mail["Message-ID"])
    assert mail["Reply-To"] is None  # which conversation would a reply belong to?
    text = plain(mail)
    ann_id, carol_id = ann["thread"]["id"], carol["thread"]["id"]
    assert text.index("== Ann on Alpha Bakery ==") < text.index("Do you deliver to Lyon?")
    assert text.index("Do you deliver to Lyon?") < text.index("And on Sundays?")
    assert text.index("And on Sundays?") < text.index("== A visitor on Beta Plumbing ==")
    assert "Prix < 10 € pour une fuite ?" in text
    tag = relay.tokens.reply_tag(ann_id, OWNER)
    subject = "Re: Alpha Bakery: conversation with Ann"
    mailto = f"mailto:r+{tag}@{REPLY_DOMAIN}?subject={quote(subject, safe='')}"
    for part in (text, html_of(mail)):
        assert f"{relay.url}/inbox/#t={ann_id}" in part
        assert f"{relay.url}/inbox/#t={carol_id}" in part
        assert mailto in part
    assert "Prix &lt; 10 € pour une fuite ?" in html_of(mail)  # visitor text is escaped
    with relay.db() as db:
        tags = dict(
            db.execute("SELECT thread_id, tag FROM reply_tags WHERE recipient = ?", (OWNER,))
        )
    assert tags == {ann_id: tag, carol_id: relay.tokens.reply_tag(carol_id, OWNER)}
    sent = await status_of(relay, pending["id"], "sent")
    assert sent["upto_seq"] == carol["message"]["seq"]

    # The mailto link's address takes a reply to its conversation.
    reply = owner_reply(tag, "Yes, Lyon on Tuesdays.")
    await aiosmtplib.send(
        reply,
        sender=OWNER,
        recipients=[f"r+{tag}@{REPLY_DOMAIN}"],
        hostname="127.0.0.1",
        port=relay.config.smtp_port,
    )
    with relay.db() as db:
        posted = db.execute(
            "SELECT thread_id, body FROM messages WHERE author = 'owner'"
        ).fetchall()
    assert [tuple(r) for r in posted] == [(ann_id, "Yes, Lyon on Tuesdays.")]

    # A message after the digest went starts the next one, for eleven o'clock.
    async with relay.client() as alpha:
        await alpha.post(
            "/v1/thread/messages", headers=bearer(ann["token"]), json={"body": "One more thing"}
        )
        following = await only_pending_digest(relay, before=pending["id"])
        assert 3600 - 60 < seconds_until(following["not_before"]) <= 3600
        # Brought forward to now, it says only what is new since the first digest.
        edit(
            relay,
            "UPDATE outbox SET not_before = ? WHERE id = ?",
            "2000-01-01T00:00:00.000Z",
            following["id"],
        )
        await alpha.post(
            "/v1/thread/messages", headers=bearer(ann["token"]), json={"body": "Two more things"}
        )
    second = await sink.sink.next()
    assert second["Subject"] == "2 new messages in 1 conversation"
    words = plain(second)
    assert "One more thing" in words and "Two more things" in words
    assert "Do you deliver" not in words and "Prix" not in words
    assert sink.sink.empty()


async def test_daily_digest_leaves_at_eight_on_the_site_clock(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    # 07:59:57 in Paris (UTC+1 in November): eight o'clock there, not in UTC.
    relay = make_relay(
        smtp_url=sink.url, reply_domain=REPLY_DOMAIN, clock_start="2026-11-25T06:59:57Z"
    )
    with relay.db() as db:
        settings = json.loads(
            db.execute("SELECT settings FROM sites WHERE id = 'alpha'").fetchone()[0]
        )
    edit(
        relay,
        "UPDATE sites SET settings = ? WHERE id = 'alpha'",
        json.dumps({**settings, "timezone": "Europe/Paris"}),
    )
    set_owner(relay, OWNER, notify="daily", language="fr")
    async with relay.client() as client:
        await start_thread(client, "Avez-vous des croissants ?")
    pending = await only_pending_digest(relay)
    assert seconds_until(pending["not_before"]) < MARGIN
    mail = await sink.sink.next()
    assert mail["Subject"] == "1 nouveau message dans 1 conversation"  # the owner's language
    text = plain(mail)
    assert "Un visiteur sur Alpha Bakery" in text and "chaque matin" in text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T:\nAvez-vous des croissants \?", text)


@pytest.mark.parametrize("mode", ["message", "hourly"])
async def test_what_the_owner_read_in_the_inbox_is_not_emailed(
    make_relay: Callable[..., RunningRelay], sink: SinkServer, mode: str
) -> None:
    relay = make_relay(
        smtp_url=sink.url, reply_domain=REPLY_DOMAIN, owner_notify_delay=2, clock_start=BEFORE_TEN
    )
    set_owner(relay, OWNER, notify=mode)
    async with relay.client() as client:
        started = await start_thread(client, "Are you open today?")
        [row] = outbox(relay)
        assert seconds_until(row["not_before"]) < MARGIN
        read = await client.post(
            f"/v1/owner/threads/{started['thread']['id']}/read",
            headers=bearer(relay.owner_token()),
            json={"seq": started["message"]["seq"]},
        )
        assert read.status_code == 204
    cancelled = await status_of(relay, row["id"], "cancelled")
    assert cancelled["last_error"] == "already seen"
    assert sink.sink.empty()


async def test_off_sends_nothing(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> None:
    relay = make_relay(smtp_url=sink.url, reply_domain=REPLY_DOMAIN, owner_notify_delay=0)
    set_owner(relay, OWNER, notify="off")
    async with relay.client() as alpha, relay.client(BETA_ORIGIN) as beta:
        await start_thread(alpha, "Hello?")
        assert outbox(relay) == []  # queued in the message's transaction, or never
        await start_thread(beta, "Bonjour ?", site="beta")  # beta's owner still gets mail
    mail = await sink.sink.next()
    assert mail["To"] == BETA_OWNER and "Bonjour ?" in plain(mail)
    assert [r["recipient"] for r in outbox(relay)] == [BETA_OWNER]


async def test_back_to_one_email_per_message(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    # Half past ten: the next digest is half an hour away.
    relay = make_relay(
        smtp_url=sink.url,
        reply_domain=REPLY_DOMAIN,
        owner_notify_delay=0,
        clock_start="2026-11-25T10:30:00Z",
    )
    set_owner(relay, OWNER, notify="hourly")
    async with relay.client() as client:
        started = await start_thread(client, "first, while on digests")
        digest = await only_pending_digest(relay)
        assert seconds_until(digest["not_before"]) > 1700
        set_owner(relay, OWNER, notify="message")
        edit(
            relay,
            "UPDATE outbox SET not_before = ? WHERE id = ?",
            "2000-01-01T00:00:00.000Z",
            digest["id"],
        )
        await client.post(
            "/v1/thread/messages", headers=bearer(started["token"]), json={"body": "second"}
        )
    # The pending digest still goes (it is the last one: its messages have no email of
    # their own); whatever it did not say goes in an email of its own. Each message is
    # emailed exactly once.
    await status_of(relay, digest["id"], "sent")
    await eventually(
        lambda: all(r["status"] in ("sent", "cancelled") for r in outbox(relay)),
        "every email sent or dropped",
    )
    mails = [
        plain(await sink.sink.next())
        for _ in range(sum(r["status"] == "sent" for r in outbox(relay)))
    ]
    assert sink.sink.empty()
    for text in ("first, while on digests", "second"):
        assert sum(text in mail for mail in mails) == 1, (text, mails)
