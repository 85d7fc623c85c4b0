"""The whole loop over real SMTP: a visitor writes, the owner's notification goes out
through a real SMTP server, the owner's mail client replies to its Reply-To through
the relay's SMTP ingress, and only the new text appears live in the widget."""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from typing import Any

import aiosmtplib
import pytest

from relay.limits import RateLimiter
from tests.mail.conftest import OWNER, REPLY_DOMAIN, mail_relay
from tests.mail.smtp_sink import SinkServer
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, open_live, start_thread

pytestmark = BOTH_ENGINES


@pytest.fixture
def loop_relay(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> RunningRelay:
    return mail_relay(make_relay, sink)


def reply_to(
    notification: EmailMessage,
    text: str,
    *,
    sender: str = OWNER,
    to: str | None = None,
    **headers: str,
) -> EmailMessage:
    """What a mail client makes when the owner presses Reply: new text on top, the
    original quoted below."""
    original = notification.get_body(("plain",))
    assert original is not None
    quoted = "\n".join(f"> {line}" for line in original.get_content().splitlines())
    reply = EmailMessage()
    reply["From"] = f"Owner <{sender}>"
    reply["To"] = to or notification["Reply-To"]
    reply["Subject"] = "Re: " + notification["Subject"]
    reply["Message-ID"] = make_msgid(domain="alpha.example")
    reply["In-Reply-To"] = notification["Message-ID"]
    for name, value in headers.items():
        reply[name.replace("_", "-")] = value
    reply.set_content(f"{text}\n\nOn Tue, 24 Nov 2026 at 10:00, Porch wrote:\n{quoted}\n")
    return reply


async def send_to_relay(relay: RunningRelay, message: EmailMessage) -> None:
    await aiosmtplib.send(message, hostname="127.0.0.1", port=relay.config.smtp_port)


async def conversation(relay: RunningRelay, sink: SinkServer) -> tuple[dict[str, Any], Any]:
    async with relay.client() as client:
        started = await start_thread(client, "Is the shop open on Monday?")
    notification = await sink.sink.next()
    return started, notification


async def test_owner_reply_by_email_appears_live_without_the_quote(
    loop_relay: RunningRelay, sink: SinkServer
) -> None:
    started, notification = await conversation(loop_relay, sink)
    live = await open_live(loop_relay, started["token"], since=started["message"]["seq"])
    await send_to_relay(loop_relay, reply_to(notification, "Closed on Mondays, sorry!"))
    message = (await live.next("message"))["message"]
    assert message["body"] == "Closed on Mondays, sorry!"
    assert message["author"] == "owner" and message["via"] == "email"
    await live.ws.close()


async def test_duplicate_delivery_is_posted_once(
    loop_relay: RunningRelay, sink: SinkServer
) -> None:
    started, notification = await conversation(loop_relay, sink)
    reply = reply_to(notification, "Once only")
    for _ in range(2):
        await send_to_relay(loop_relay, reply)
    with loop_relay.db() as db:
        verdicts = db.execute("SELECT verdict FROM inbound").fetchall()
        bodies = [r[0] for r in db.execute("SELECT body FROM messages WHERE author = 'owner'")]
    assert [v[0] for v in verdicts] == ["posted"]
    assert bodies == ["Once only"]


async def test_tag_is_case_insensitive(loop_relay: RunningRelay, sink: SinkServer) -> None:
    started, notification = await conversation(loop_relay, sink)
    address = parseaddr(notification["Reply-To"])[1]
    local, _, domain = address.partition("@")
    await send_to_relay(
        loop_relay, reply_to(notification, "Shouted tag", to=f"{local.upper()}@{domain.upper()}")
    )
    assert owner_bodies(loop_relay) == ["Shouted tag"]


@pytest.mark.parametrize(
    ("sender", "headers"),
    [
        ("intruder@evil.example", {}),  # someone else holding a valid tag
        ("intruder@evil.example", {"Reply_To": OWNER}),  # Reply-To is never trusted
    ],
)
async def test_spoofed_sender_with_valid_tag_is_not_posted(
    loop_relay: RunningRelay, sink: SinkServer, sender: str, headers: dict[str, str]
) -> None:
    _, notification = await conversation(loop_relay, sink)
    await send_to_relay(
        loop_relay, reply_to(notification, "Free bread for all", sender=sender, **headers)
    )
    assert owner_bodies(loop_relay) == []
    assert inbound_verdicts(loop_relay) == ["forged"]


async def test_unknown_tag_and_foreign_domain(loop_relay: RunningRelay, sink: SinkServer) -> None:
    _, notification = await conversation(loop_relay, sink)
    await send_to_relay(
        loop_relay, reply_to(notification, "guess", to=f"r+{'a' * 26}@{REPLY_DOMAIN}")
    )
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):  # we are not an open relay
        await send_to_relay(
            loop_relay, reply_to(notification, "relay me", to="someone@elsewhere.example")
        )
    assert owner_bodies(loop_relay) == []
    assert inbound_verdicts(loop_relay) == ["unknown_tag"]


async def test_out_of_office_is_not_posted(loop_relay: RunningRelay, sink: SinkServer) -> None:
    _, notification = await conversation(loop_relay, sink)
    auto = reply_to(notification, "I am away until Monday.", Auto_Submitted="auto-replied")
    auto.replace_header("Subject", "Out of Office: " + notification["Subject"])
    await send_to_relay(loop_relay, auto)
    assert owner_bodies(loop_relay) == []
    assert inbound_verdicts(loop_relay) == ["auto_reply"]


async def test_reply_of_only_quotes_is_not_posted(
    loop_relay: RunningRelay, sink: SinkServer
) -> None:
    _, notification = await conversation(loop_relay, sink)
    await send_to_relay(loop_relay, reply_to(notification, ""))
    assert owner_bodies(loop_relay) == []
    assert inbound_verdicts(loop_relay) == ["empty"]


def owner_bodies(relay: RunningRelay) -> list[str]:
    with relay.db() as db:
        return [r[0] for r in db.execute("SELECT body FROM messages WHERE author = 'owner'")]


def inbound_verdicts(relay: RunningRelay) -> list[str]:
    with relay.db() as db:
        return [r[0] for r in db.execute("SELECT verdict FROM inbound ORDER BY received_at")]


DSN = """From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounces@reply.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn.{n}@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.
I'm sorry to have to inform you that your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {address}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{address}>: Recipient address rejected

--b1
Content-Type: text/rfc822-headers

From: Alpha Bakery <notify@reply.example>
To: {address}
Message-ID: {message_id}

--b1--
"""


def bounce(relay: RunningRelay, address: str, message_id: str, n: int = 1) -> None:
    text = DSN.format(address=address, message_id=message_id, n=n).replace("\n", "\r\n")
    with smtplib.SMTP("127.0.0.1", relay.config.smtp_port) as client:  # null reverse-path
        client.sendmail("", [f"bounces@{REPLY_DOMAIN}"], text)


def suppressed(relay: RunningRelay) -> dict[str, str]:
    with relay.db() as db:
        return dict(db.execute("SELECT address, reason FROM suppressed").fetchall())


async def test_hard_bounce_of_our_email_stops_mail_to_that_address(
    loop_relay: RunningRelay, sink: SinkServer
) -> None:
    started, _ = await conversation(loop_relay, sink)
    async with loop_relay.client() as client:
        await client.post(
            "/v1/thread/contact",
            headers=bearer(started["token"]),
            json={"email": "ann@example.com"},
        )
        await client.post(
            f"/v1/owner/threads/{started['thread']['id']}/messages",
            headers=bearer(loop_relay.owner_token()),
            json={"body": "Yes!"},
        )
    to_visitor = await sink.sink.next()
    assert to_visitor["To"] == "ann@example.com"
    # Ann opens the email's link: the address is confirmed hers (an unconfirmed one
    # is only forgotten: see the next test).
    link = re.search(r"#porch=(\S+)", to_visitor.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert link is not None
    async with loop_relay.client() as phone:
        assert (await phone.post("/v1/resume", json={"token": link.group(1)})).is_success
    await asyncio.to_thread(bounce, loop_relay, "ann@example.com", to_visitor["Message-ID"])
    assert suppressed(loop_relay) == {"ann@example.com": "hard_bounce"}
    assert inbound_verdicts(loop_relay) == ["bounce"]


async def test_hard_bounce_of_an_unconfirmed_address_forgets_it(
    loop_relay: RunningRelay, sink: SinkServer
) -> None:
    """Not suppressed: who typed a stranger's address could forge its bounce. Forgotten
    by the visitor who typed it, so nothing more is sent there."""
    started, _ = await conversation(loop_relay, sink)
    thread = started["thread"]["id"]
    async with loop_relay.client() as client:
        contact = {"email": "typo@example.com"}
        await client.post("/v1/thread/contact", headers=bearer(started["token"]), json=contact)
        owner = bearer(loop_relay.owner_token())
        reply = {"body": "Yes!"}
        await client.post(f"/v1/owner/threads/{thread}/messages", headers=owner, json=reply)
        to_visitor = await sink.sink.next()
        await asyncio.to_thread(bounce, loop_relay, "typo@example.com", to_visitor["Message-ID"])
        again = {"body": "Still there?"}
        await client.post(f"/v1/owner/threads/{thread}/messages", headers=owner, json=again)
    assert suppressed(loop_relay) == {}
    with loop_relay.db() as db:
        assert db.execute("SELECT email FROM visitors").fetchone()[0] is None
        kinds = [
            r[0]
            for r in db.execute("SELECT kind FROM outbox WHERE recipient = ?", (contact["email"],))
        ]
    assert kinds == ["visitor_notify"]  # the first reply's, and nothing after the bounce


async def test_forged_bounces_suppress_nothing(loop_relay: RunningRelay, sink: SinkServer) -> None:
    _, notification = await conversation(loop_relay, sink)
    # Anyone can write a bounce: one quoting no email of ours, and one quoting the
    # owner's notification (an owner's mailbox is never switched off by mail).
    await asyncio.to_thread(bounce, loop_relay, "victim@example.com", "<made.up@x>", 1)
    await asyncio.to_thread(bounce, loop_relay, OWNER, notification["Message-ID"], 2)
    assert suppressed(loop_relay) == {}
    assert inbound_verdicts(loop_relay) == ["bounce", "bounce"]


async def test_capped_replies_are_deferred_not_lost(
    loop_relay: RunningRelay, sink: SinkServer
) -> None:
    loop_relay.services.accept.per_thread = RateLimiter(1, 3600)  # a tight cap to hit
    _, notification = await conversation(loop_relay, sink)
    await send_to_relay(loop_relay, reply_to(notification, "first"))
    with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
        await send_to_relay(loop_relay, reply_to(notification, "second"))
    assert deferred.value.code == 451  # the sending server keeps it and retries
    assert owner_bodies(loop_relay) == ["first"]
    assert inbound_verdicts(loop_relay) == ["posted"]  # the second is not marked as seen
