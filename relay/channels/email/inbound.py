"""The one inbound pipeline every ingress (SMTP, IMAP, webhooks) hands raw mail to:

    parse → ignore duplicates → classify → verify the tag → extract → accept

(relay/channels/accept.py authorises the sender, caps loops and posts.)

Nothing about the sender is trusted but what the reply tag proves: the tag must be
one we issued, not revoked, matching its thread and recipient under one of our keys,
and the From address must be the one it was issued to (or a registered alias).
Reply-To and display names are never looked at.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re

from relay.channels.accept import Accept, Inbound, Outcome, Verdict
from relay.channels.email.reading import Inspection, UnreadableEmail, inspect, tag_of
from relay.models import Author, Via
from relay.store import Store
from relay.store.outbox_rows import TO_OWNERS
from relay.tokens import Tokens

log = logging.getLogger("porch.inbound")

# Our Message-IDs (relay/mail/compose.py), <outbox.ID.THREAD@domain>: a bounce quoting
# one names the email it is about. The outbox id counts up, so anyone can guess one:
# the thread id beside it, which only the email's recipient and the owner know, must
# match too. An outbox id has at most 18 digits (it fits 63 bits); a longer run in a
# forged bounce is not ours, and int() of 5,000 digits would raise.
OUR_MESSAGE_ID = re.compile(rb"<outbox\.([0-9]{1,18})\.([A-Za-z0-9_-]{1,64})@")
MAX_QUOTED_IDS = 3  # a real bounce quotes the one email it returns


class Pipeline:
    def __init__(self, store: Store, tokens: Tokens, accept: Accept) -> None:
        self.store = store
        self.tokens = tokens
        self.accept = accept

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
        if await self.accept.seen(Via.EMAIL, message_id):
            return Outcome(Verdict.DUPLICATE)
        envelope_tags = [tag for tag in map(tag_of, envelope_to or []) if tag]
        if envelope_tags:
            mail = dataclasses.replace(mail, token=envelope_tags[0])
        outcome = await self._process(mail, raw, message_id)
        await self.accept.record(Via.EMAIL, message_id, outcome)
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
        # The tag proves the thread and whom it was issued to; accept checks the sender.
        if not self.tokens.reply_tag_matches(mail.token, thread_id, recipient):
            return Outcome(Verdict.FORGED, thread_id)
        if mail.sender is None:
            return Outcome(Verdict.FORGED, thread_id)
        reply = Inbound(
            Via.EMAIL, message_id, thread_id, Author.OWNER, mail.sender, recipient, mail.body
        )
        return await self.accept.post(reply)

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
            if kind in TO_OWNERS:  # an owner's mailbox is the owner's to fix
                log.warning("mail to owner address %s bounced for good", recipient)
                continue
            await self.store.hard_bounce(recipient)
