"""Refused replies and the notice that answers them, end to end: a real relay, its SMTP
ingress, a real SMTP server receiving what it sends (envelope included) and a DNS server
on loopback vouching for the senders. A reply address of an erased conversation, one
expired in its conversation's silence and one of an owner no longer the site's are
refused with one notice a day, auto-submitted and sent from the null sender, which the
relay itself never answers; a From that fails DMARC gets none (backscatter)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from relay.catalogue import text
from relay.channels.email.reading import tag_of
from tests.mail.conftest import OWNER, REPLY_DOMAIN, mail_relay
from tests.mail.smtp_sink import Sink, SinkServer
from tests.mail.trust_support import (
    FakeDns,
    Key,
    bodies,
    deliver,
    message_id,
    new_key,
    reply,
    sender_dns,
    signed,
    verdict,
)
from tests.pg import BOTH_ENGINES
from tests.support import (
    ALPHA_ORIGIN,
    BETA,
    BETA_ORIGIN,
    RunningRelay,
    bearer,
    free_port,
    start_thread,
)

pytestmark = BOTH_ENGINES

MakeRelay = Callable[..., RunningRelay]
BETA_OWNER = "owner@beta.example"
TAG_DAYS = 30  # the relay's reply_tag_days here
NOTICE = "refusal_notice"  # its outbox kind
NULL_SENDER = "<>"  # MAIL FROM:<>, as aiosmtpd records it


@pytest.fixture(scope="module")
def key() -> Key:
    return new_key()


@pytest.fixture(scope="module")
def dns(key: Key) -> Iterator[FakeDns]:
    with sender_dns(key) as server:
        yield server


class EnvelopeSink(Sink):
    """The sink, also keeping each email's MAIL FROM by its Message-ID."""

    def __init__(self) -> None:
        super().__init__()
        self.mail_from: dict[str, str | None] = {}

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        # Kept before the email is handed on: whoever reads it finds its envelope.
        self.mail_from[str(email.message_from_bytes(raw)["Message-ID"])] = envelope.mail_from
        return await super().handle_DATA(server, session, envelope)


class EnvelopeSinkServer(SinkServer):
    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.envelopes = EnvelopeSink()
        self.sink = self.controller.handler = self.envelopes  # the handler, before start


@pytest.fixture
def sink() -> Iterator[EnvelopeSinkServer]:
    server = EnvelopeSinkServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def relay(make_relay: MakeRelay, sink: EnvelopeSinkServer, dns: FakeDns) -> RunningRelay:
    return mail_relay(make_relay, sink, dns_servers=(dns.address,), reply_tag_days=TAG_DAYS)


async def notified(
    relay: RunningRelay, sink: EnvelopeSinkServer, site: str = "alpha"
) -> tuple[dict[str, Any], str]:
    """A visitor's thread, and the tag of the reply address its owner was emailed."""
    origin = BETA_ORIGIN if site == "beta" else ALPHA_ORIGIN
    async with relay.client(origin=origin) as client:
        started = await start_thread(client, "Do you bake on Sundays?", site=site)
    return started, await notification_tag(sink)


async def notification_tag(sink: EnvelopeSinkServer) -> str:
    notification = await sink.sink.next()
    assert notification["Auto-Submitted"] == "auto-generated", notification["Subject"]
    tag = tag_of(notification["Reply-To"])
    assert tag is not None, notification["Reply-To"]
    return tag


async def next_notice(sink: EnvelopeSinkServer) -> tuple[EmailMessage, str | None, str]:
    """The next email, which must be a notice: it, its MAIL FROM and its text."""
    notice = await sink.sink.next()
    assert notice["Auto-Submitted"] == "auto-replied", notice["Subject"]
    body = notice.get_body(("plain",))
    assert body is not None
    return notice, sink.envelopes.mail_from[notice["Message-ID"]], body.get_content()


def notices(relay: RunningRelay, recipient: str | None = None) -> int:
    """Notices queued (the pipeline queues one before the SMTP ingress answers)."""
    with relay.db() as db:
        if recipient is None:
            row = db.execute("SELECT COUNT(*) FROM outbox WHERE kind = ?", (NOTICE,)).fetchone()
        else:
            row = db.execute(
                "SELECT COUNT(*) FROM outbox WHERE kind = ? AND recipient = ?",
                (NOTICE, recipient),
            ).fetchone()
    return int(row[0])


def address(tag: str) -> str:
    return f"r+{tag}@{REPLY_DOMAIN}"


def revoked_at(relay: RunningRelay, tag: str) -> str | None:
    with relay.db() as db:
        row = db.execute("SELECT revoked_at FROM reply_tags WHERE tag = ?", (tag,)).fetchone()
    return row[0]  # type: ignore[no-any-return]


async def test_a_reply_to_an_erased_conversation_gets_one_notice_that_never_loops(
    relay: RunningRelay, sink: EnvelopeSinkServer, key: Key
) -> None:
    started, tag = await notified(relay, sink)
    async with relay.client() as client:
        erased = await client.delete("/v1/thread", headers=bearer(started["token"]))
    assert erased.status_code == 204, erased.text
    first = signed(reply(tag, "Still open?"), key)
    await deliver(relay, first, to=address(tag))
    assert verdict(relay, first) == "unknown_tag"
    notice, mail_from, says = await next_notice(sink)
    assert mail_from == NULL_SENDER  # nothing comes back to it
    assert parseaddr(notice["To"])[1] == OWNER
    assert notice["In-Reply-To"] == f"<{message_id(first)}>"
    assert notice["Subject"] == text("server.refused.subject", "en", subject="Re: Your question")
    assert text("server.refused.unknown", "en") in says

    second = signed(reply(tag, "Hello?"), key)
    await deliver(relay, second, to=address(tag))
    assert verdict(relay, second) == "unknown_tag"
    assert notices(relay, OWNER) == 1  # one a day, whatever they send

    # The owner's server auto-answers the notice by sending it back to the address that
    # was refused: an automatic reply, refused without a word.
    returned = notice.as_bytes(policy=email.policy.SMTP)
    await deliver(relay, returned, to=address(tag), mail_from="")
    assert verdict(relay, returned) == "auto_reply"
    # An out-of-office answering the notice's From: not an address the relay takes.
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await deliver(relay, reply(tag, "I am away"), to=parseaddr(notice["From"])[1], mail_from="")
    assert notices(relay) == 1  # none to notify@ either: no loop
    assert bodies(relay) == []


async def test_an_expired_reply_address_is_refused_until_a_new_email_about_it(
    relay: RunningRelay, sink: EnvelopeSinkServer, key: Key
) -> None:
    started, tag = await notified(relay, sink)
    silent_since = datetime.now(UTC) - timedelta(days=TAG_DAYS + 10)
    with relay.db() as db:  # the conversation's last message, 40 days ago
        db.execute(
            "UPDATE threads SET updated_at = ? WHERE id = ?",
            (silent_since.strftime("%Y-%m-%dT%H:%M:%S.000Z"), started["thread"]["id"]),
        )
    late = signed(reply(tag, "Sorry for the delay"), key)
    await deliver(relay, late, to=address(tag))
    assert verdict(relay, late) == "expired_tag"
    assert revoked_at(relay, tag) is not None
    notice, mail_from, says = await next_notice(sink)
    assert (parseaddr(notice["To"])[1], mail_from) == (OWNER, NULL_SENDER)
    assert text("server.refused.expired", "en", days=TAG_DAYS) in says

    # The visitor writes again: the owner's new notification brings the address back.
    async with relay.client() as client:
        sent = await client.post(
            "/v1/thread/messages", headers=bearer(started["token"]), json={"body": "Hello?"}
        )
    assert sent.status_code in (200, 201), sent.text
    assert await notification_tag(sink) == tag
    assert revoked_at(relay, tag) is None
    answer = signed(reply(tag, "Yes, Sundays 8 to noon."), key)
    await deliver(relay, answer, to=address(tag))
    assert verdict(relay, answer) == "posted"
    assert bodies(relay) == ["Yes, Sundays 8 to noon."]
    assert notices(relay) == 1


async def test_a_removed_owners_reply_is_refused_in_the_sites_language(
    relay: RunningRelay, sink: EnvelopeSinkServer, key: Key
) -> None:
    _, tag = await notified(relay, sink, "beta")  # Beta Plumbing writes in French
    others = replace(BETA, owner_emails=("new@beta.example",))
    await relay.call(relay.services.store.add_site(others, replace=True))
    raw = signed(reply(tag, "C'est encore moi", sender=BETA_OWNER), key, "beta.example")
    await deliver(relay, raw, to=address(tag), mail_from=BETA_OWNER)
    assert verdict(relay, raw) == "forged"
    notice, mail_from, says = await next_notice(sink)
    assert (parseaddr(notice["To"])[1], mail_from) == (BETA_OWNER, NULL_SENDER)
    assert notice["Subject"] == text("server.refused.subject", "fr", subject="Re: Your question")
    assert text("server.refused.forged", "fr") in says
    assert text("server.refused.intro", "fr") in says
    assert bodies(relay) == []
    assert notices(relay) == 1


async def test_a_from_that_fails_dmarc_is_not_told(
    relay: RunningRelay, sink: EnvelopeSinkServer, key: Key
) -> None:
    unknown = "a" * 26  # a tag never issued
    forged = reply(unknown, "Click here")  # From owner@alpha.example, p=reject, unsigned
    await deliver(relay, forged, to=address(unknown))
    assert verdict(relay, forged) == "unknown_tag"
    assert notices(relay) == 0  # its From proves nothing: a notice would be backscatter
    genuine = signed(reply(unknown, "Typo in the address?"), key)
    await deliver(relay, genuine, to=address(unknown))
    assert verdict(relay, genuine) == "unknown_tag"
    assert notices(relay, OWNER) == 1  # the same refusal, from a sender DMARC vouches for
    notice, _, says = await next_notice(sink)
    assert notice["In-Reply-To"] == f"<{message_id(genuine)}>"
    assert text("server.refused.unknown", "en") in says
