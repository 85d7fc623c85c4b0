"""The one inbound pipeline every ingress (SMTP, IMAP, webhooks) hands raw mail to:

    parse → ignore duplicates → classify → verify → extract → store → publish

Nothing about the sender is trusted but what the reply tag proves: the tag must be
one we issued, not revoked, matching its thread and recipient under one of our keys,
and the From address must be the one it was issued to (or a registered alias).
Reply-To and display names are never looked at.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import logging
import re
from dataclasses import dataclass

from relay.channels.email.reading import Inspection, UnreadableEmail, inspect, tag_of
from relay.limits import RateLimiter
from relay.models import Author, Message, Via
from relay.store import Store
from relay.store.outbox_rows import MailKind
from relay.tokens import Tokens

log = logging.getLogger("porch.inbound")

HOUR = 3600.0
# Our Message-IDs (relay/mail/compose.py), <outbox.ID.THREAD@domain>: a bounce quoting
# one names the email it is about. The outbox id counts up, so anyone can guess one:
# the thread id beside it, which only the email's recipient and the owner know, must
# match too. An outbox id has at most 18 digits (it fits 63 bits); a longer run in a
# forged bounce is not ours, and int() of 5,000 digits would raise.
OUR_MESSAGE_ID = re.compile(rb"<outbox\.([0-9]{1,18})\.([A-Za-z0-9_-]{1,64})@")
MAX_QUOTED_IDS = 3  # a real bounce quotes the one email it returns
# An owner answering by hand writes a few emails an hour per conversation; a loop
# between two robots writes hundreds. These caps stop the second, never the first.
REPLIES_PER_THREAD_PER_HOUR = 30
REPLIES_PER_SENDER_PER_HOUR = 120


class Verdict(enum.StrEnum):
    POSTED = "posted"
    DUPLICATE = "duplicate"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    EMPTY = "empty"  # nothing new after quotes and signatures were removed
    NO_TAG = "no_tag"
    UNKNOWN_TAG = "unknown_tag"
    REVOKED_TAG = "revoked_tag"
    FORGED = "forged"  # the tag does not match, or From is not whom it was issued to
    RATE_LIMITED = "rate_limited"
    UNREADABLE = "unreadable"
    DEFERRED = "deferred"  # could not be processed now (`porch smtp`: relay unreachable)


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    thread: str | None = None
    message: Message | None = None

    @property
    def posted(self) -> bool:
        return self.verdict is Verdict.POSTED

    @property
    def temporary(self) -> bool:
        """Refused for now only: the ingress must get the mail delivered again later
        (SMTP 451, HTTP 429, IMAP leaves it unmarked)."""
        return self.verdict in (Verdict.RATE_LIMITED, Verdict.DEFERRED)


class Pipeline:
    def __init__(self, store: Store, tokens: Tokens) -> None:
        self.store = store
        self.tokens = tokens
        self.per_thread = RateLimiter(REPLIES_PER_THREAD_PER_HOUR, HOUR)
        self.per_sender = RateLimiter(REPLIES_PER_SENDER_PER_HOUR, HOUR)

    async def receive(
        self, raw: bytes, *, source: str, envelope_to: list[str] | None = None
    ) -> Outcome:
        """Process one raw RFC 5322 message; never raises for bad mail. `envelope_to`:
        the SMTP envelope's recipients, which decide over any header the sender wrote."""
        try:
            # Parsing a large HTML mail takes CPU: off the event loop, which serves
            # every socket.
            mail = await asyncio.to_thread(inspect, raw)
        except UnreadableEmail as error:
            log.info("inbound via %s: unreadable (%s)", source, error)
            return Outcome(Verdict.UNREADABLE)
        # Without a Message-ID, a digest of the bytes still catches a re-delivery.
        message_id = mail.message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
        if await self.store.inbound_seen(message_id):
            return Outcome(Verdict.DUPLICATE)
        envelope_tags = [tag for tag in map(tag_of, envelope_to or []) if tag]
        if envelope_tags:
            mail = dataclasses.replace(mail, token=envelope_tags[0])
        outcome = await self._process(mail, raw, message_id)
        if not outcome.temporary:  # a capped reply will be delivered again
            await self.store.record_inbound(message_id, outcome.verdict.value, outcome.thread)
        log.info("inbound via %s from %s: %s", source, mail.sender, outcome.verdict.value)
        return outcome

    async def _process(self, mail: Inspection, raw: bytes, message_id: str) -> Outcome:
        if mail.kind == "bounce":
            await self._bounce(mail, raw)
            return Outcome(Verdict.BOUNCE)
        if mail.kind == "auto_reply":
            return Outcome(Verdict.AUTO_REPLY)
        if mail.token is None:
            return Outcome(Verdict.NO_TAG)
        issued = await self.store.reply_tag(mail.token)
        if issued is None:
            return Outcome(Verdict.UNKNOWN_TAG)
        thread_id, recipient, revoked = issued
        if revoked:
            return Outcome(Verdict.REVOKED_TAG, thread_id)
        if not self.tokens.reply_tag_matches(mail.token, thread_id, recipient):
            return Outcome(Verdict.FORGED, thread_id)
        if not await self._sender_allowed(mail.sender, recipient, thread_id):
            return Outcome(Verdict.FORGED, thread_id)
        if not mail.body:
            return Outcome(Verdict.EMPTY, thread_id)
        sender = mail.sender or ""
        if self.per_thread.hit(thread_id) or self.per_sender.hit(sender):
            return Outcome(Verdict.RATE_LIMITED, thread_id)
        message, _ = await self.store.add_message(
            thread_id,
            author=Author.OWNER,
            body=mail.body,
            via=Via.EMAIL,
            # Idempotent: the same email through two ingresses is stored once.
            client_id="mail." + hashlib.sha256(message_id.encode()).hexdigest()[:40],
        )
        return Outcome(Verdict.POSTED, thread_id, message)

    async def _bounce(self, mail: Inspection, raw: bytes) -> None:
        """Stop writing to an address that bounced for good, but only when the bounce
        returns an email we really sent to it: anyone can write a fake bounce
        (store.hard_bounce says what one can and cannot do)."""
        if not mail.hard_bounce or not mail.bounced:  # it must say which address failed
            return
        quoted = list(dict.fromkeys(OUR_MESSAGE_ID.findall(raw)))[:MAX_QUOTED_IDS]
        for outbox_id, about in quoted:
            sent = await self.store.outbox_recipient(int(outbox_id))
            if sent is None:
                continue
            kind, recipient, thread = sent
            if about.decode() != thread or recipient not in mail.bounced:
                continue
            if kind in MailKind.TO_OWNERS:  # an owner's mailbox is the owner's to fix
                log.warning("mail to owner address %s bounced for good", recipient)
                continue
            await self.store.hard_bounce(recipient)

    async def _sender_allowed(self, sender: str | None, recipient: str, thread_id: str) -> bool:
        """From must be whom the tag was issued to (still an owner of the site), an
        alias that owner registered, or a reply alias of the site (the older, per-site
        list)."""
        if sender is None:
            return False
        thread = await self.store.get_thread(thread_id)
        site = await self.store.get_site(thread.site) if thread else None
        if site is None or recipient not in {e.lower() for e in site.owner_emails}:
            return False
        if sender == recipient:
            return True
        aliases = {a.lower() for a in site.settings.get("reply_aliases", [])}
        aliases.update(a.lower() for a in (await self.store.get_owner(recipient)).aliases)
        return sender in aliases
