"""The one inbound pipeline every ingress (SMTP, IMAP, webhooks) hands raw mail to:

    parse → ignore duplicates → classify → verify the tag → extract → accept

(relay/channels/accept.py authorises the sender, caps loops, keeps the files and posts.)

A reply must prove its thread and its sender. The tag proves the thread: one we issued,
not revoked, not expired (its conversation had a message within REPLY_TAG_DAYS),
matching its thread and recipient under one of our keys. The From address must be the
one it was issued to (or a registered alias), and From must be believable: the sender
checks (authentication/: DKIM, SPF where the relay is the receiving MX, DMARC, trusted
Authentication-Results) hold a reply the site's policy does not let through, until an
owner releases or discards it (held.py). Reply-To and display names are never looked
at. A tag issued to an owner posts as the owner; one issued to the visitor (their
notification's reply address), as the visitor. The sender of a reply refused for its
tag or its From hears why, once (a notice, auto-submitted so that it cannot loop).
Untagged mail to a site's contact address (hello@…) starts a new conversation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta

from relay.channels.accept import HOUR, Accept, Inbound, Outcome, Received, Verdict
from relay.channels.email.authentication import (
    Authentication,
    Envelope,
    Resolver,
    authenticate,
)
from relay.channels.email.reading import (
    Inspection,
    UnreadableEmail,
    contact_site_of,
    inspect,
    tag_of,
)
from relay.clock import parse_instant
from relay.config import Config
from relay.conversations import Actor
from relay.limits import RateLimiter
from relay.models import Author, Started, Via
from relay.sites.settings import CONTACT_ADDRESSES, LANGUAGE, SENDER_CHECKS
from relay.store import Store
from relay.store.held import HeldReply
from relay.store.outbox_rows import TO_OWNERS
from relay.store.rows import Db
from relay.tokens import Tokens

log = logging.getLogger("porch.inbound")

# Our Message-IDs (relay/mail/compose.py), <outbox.ID.THREAD@domain>: a bounce quoting
# one names the email it is about. The outbox id counts up, so anyone can guess one:
# the thread id beside it, which only the email's recipient and the owner know, must
# match too. An outbox id has at most 18 digits (it fits 63 bits); a longer run in a
# forged bounce is not ours, and int() of 5,000 digits would raise.
OUR_MESSAGE_ID = re.compile(rb"<outbox\.([0-9]{1,18})\.([A-Za-z0-9_-]{1,64})@")
MAX_QUOTED_IDS = 3  # a real bounce quotes the one email it returns
# New conversations by email to one site's contact address, an hour: a flood waits (the
# sending server retries), a bakery's real mail never comes near it.
EMAIL_STARTS_PER_SITE_PER_HOUR = 60
# Reading a mail takes about four times its size in memory at the peak (its text, the
# parser's copies, the decoded files): ~160 MB for the largest the ingresses take
# (smtp_ingress.MAX_MESSAGE_BYTES). Mail over this size (files, not a chat reply) is
# read one at a time, so that a few arriving together cannot multiply that.
LARGE_MAIL_BYTES = 1024 * 1024
# The sender checks of one mail, DNS lookups included (each has its own limit, and SPF
# may make ten): past this the mail is deferred, and its sender tries again later.
CHECK_SECONDS = 30.0
# The refusals whose sender is told why (a tag that proved nothing is an attack's, or
# a typo's: nobody to tell).
NOTICED = frozenset({Verdict.UNKNOWN_TAG, Verdict.REVOKED_TAG, Verdict.EXPIRED_TAG, Verdict.FORGED})


class Pipeline:
    def __init__(self, store: Store, tokens: Tokens, accept: Accept, config: Config) -> None:
        self.store = store
        self.tokens = tokens
        self.accept = accept
        self.config = config
        self.resolver = Resolver(config.dns_servers)
        self.trusted_authserv_ids = frozenset(i.lower() for i in config.trusted_authserv_ids)
        self.starts_per_site = RateLimiter(EMAIL_STARTS_PER_SITE_PER_HOUR, HOUR)
        self.reading_large = asyncio.Semaphore(1)

    async def receive(
        self,
        raw: bytes,
        *,
        source: str,
        envelope_to: list[str] | None = None,
        envelope: Envelope | None = None,
    ) -> Outcome:
        """Process one raw RFC 5322 message; never raises for bad mail. `envelope_to`:
        the SMTP envelope's recipients, which decide over any header the sender wrote;
        `envelope`: what the SMTP server saw of the sender, where the relay is the MX."""
        if len(raw) <= LARGE_MAIL_BYTES:
            return await self._receive(raw, source, envelope_to, envelope)
        async with self.reading_large:
            return await self._receive(raw, source, envelope_to, envelope)

    async def check_sender(self, raw: bytes, envelope: Envelope | None) -> Authentication | None:
        """The sender checks' verdict; None if they could not finish in time."""
        checking = asyncio.to_thread(
            authenticate,
            raw,
            envelope,
            resolver=self.resolver,
            trusted_authserv_ids=self.trusted_authserv_ids,
        )
        try:
            return await asyncio.wait_for(checking, CHECK_SECONDS)
        except TimeoutError:
            return None

    async def _receive(
        self,
        raw: bytes,
        source: str,
        envelope_to: list[str] | None,
        envelope: Envelope | None,
    ) -> Outcome:
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
        checks = None
        if mail.kind == "reply" and mail.token is not None:
            checks = await self.check_sender(raw, envelope)
        outcome = await self._process(mail, raw, message_id, checks)
        await self.accept.record(
            Via.EMAIL,
            message_id,
            outcome,
            envelope=dataclasses.asdict(envelope) if envelope else None,
            authentication=checks.to_json() if checks else None,
        )
        log.info("inbound via %s from %s: %s", source, mail.sender, outcome.verdict.value)
        return outcome

    async def _process(
        self, mail: Inspection, raw: bytes, message_id: str, checks: Authentication | None
    ) -> Outcome:
        if mail.kind == "bounce":
            await self._bounce(mail, raw)
            return Outcome(Verdict.BOUNCE)
        if mail.kind == "auto_reply":
            return Outcome(Verdict.AUTO_REPLY)
        if mail.token is None:
            return await self._to_contact_address(mail, message_id)
        if checks is None:  # the checks ran out of time (DNS): the sender tries later
            return Outcome(Verdict.DEFERRED)
        outcome = await self._reply(mail, raw, message_id, checks)
        if outcome.verdict in NOTICED:
            await self._tell_sender(mail, message_id, outcome, checks)
        return outcome

    async def _reply(
        self, mail: Inspection, raw: bytes, message_id: str, checks: Authentication
    ) -> Outcome:
        assert mail.token is not None
        issued = await self.store.reply_tag(mail.token)
        if issued is None:
            return Outcome(Verdict.UNKNOWN_TAG)
        thread_id, recipient = issued.thread, issued.recipient
        if issued.revoked:
            expired = self._expired(issued.last_activity)  # revoked for its silence
            return Outcome(Verdict.EXPIRED_TAG if expired else Verdict.REVOKED_TAG, thread_id)
        if self._expired(issued.last_activity):
            await self.store.expire_reply_tag(mail.token)
            return Outcome(Verdict.EXPIRED_TAG, thread_id)
        # The tag proves the thread and whom it was issued to; accept checks the sender.
        if not self.tokens.reply_tag_matches(mail.token, thread_id, recipient):
            return Outcome(Verdict.FORGED, thread_id)
        if mail.sender is None:
            return Outcome(Verdict.FORGED, thread_id)
        thread = await self.store.get_thread(thread_id)
        site = await self.store.get_site(thread.site) if thread else None
        if thread is None or site is None:
            return Outcome(Verdict.UNKNOWN_TAG)
        decision = checks.decide(SENDER_CHECKS.of(site))
        if decision.action == "retry":
            log.warning("sender checks deferred a reply from %s: %s", mail.sender, decision.detail)
            return Outcome(Verdict.DEFERRED, thread_id)
        author = await self._author(thread_id, recipient)
        if author is Author.VISITOR and mail.sender == recipient.lower():
            # Only that address got the tag: answering with it confirms the address.
            await self.store.confirm_email_by_reply(thread_id, recipient)
        reply = Inbound(Via.EMAIL, message_id, thread_id, author, mail.sender, recipient, mail.body)
        if not await self.accept.may_write(reply):
            return Outcome(Verdict.FORGED, thread_id)
        if decision.action == "hold":
            held = HeldReply(
                id=0,
                site=site.id,
                thread=thread_id,
                external_id=message_id,
                author=author,
                sender=mail.sender,
                recipient=recipient,
                subject=mail.subject,
                body=mail.body,
                reason=decision.reason,
                detail=decision.detail,
                authentication=checks.to_json(),
                received_at="",
            )
            await self.store.hold_reply(held, raw)
            log.warning("held a reply from %s in %s: %s", mail.sender, thread_id, decision.detail)
            return Outcome(Verdict.HELD, thread_id)
        return await self.post(mail, reply)

    async def post(self, mail: Inspection, reply: Inbound) -> Outcome:
        """Post a reply whose tag and sender were proved (now, or by an owner releasing
        it): its files are saved, then kept or removed by accept."""
        files = await self._saved(mail)
        reply = dataclasses.replace(reply, files=files)
        return await self.accept.post(reply)  # removes the saved files, whatever happens

    async def release(self, held: HeldReply, raw: bytes) -> Outcome:
        """Post a held reply an owner vouched for: read again from the mail kept, its
        tag's other checks (sender, thread) made again by accept."""
        try:
            mail = await asyncio.to_thread(inspect, raw)
        except UnreadableEmail:  # it was read once: only a change of our reader could do it
            return Outcome(Verdict.UNREADABLE, held.thread)
        reply = Inbound(
            Via.EMAIL, held.external_id, held.thread, held.author, held.sender, held.recipient,
            mail.body,
        )  # fmt: skip
        return await self.post(mail, reply)

    def _expired(self, last_activity: str) -> bool:
        days = self.config.reply_tag_days
        if not days:
            return False
        return parse_instant(last_activity) < datetime.now(UTC) - timedelta(days=days)

    async def _tell_sender(
        self, mail: Inspection, message_id: str, outcome: Outcome, checks: Authentication
    ) -> None:
        """One notice to the sender of a refused reply, when there is a mail server to
        send it, and its From is believable: a notice to a forged From would be spam
        to a stranger (and the store sends an address one notice a day at most)."""
        if not self.config.mail_enabled or mail.sender is None:
            return
        if checks.decide("dmarc").action != "accept":
            return
        language = "en"
        thread = await self.store.get_thread(outcome.thread) if outcome.thread else None
        site = await self.store.get_site(thread.site) if thread else None
        if site is not None:
            language = LANGUAGE.of(site)
        payload = {
            "reason": outcome.verdict.value,
            "subject": mail.subject,
            "in_reply_to": message_id,
            "language": language,
            "days": self.config.reply_tag_days,
        }
        await self.store.queue_refusal_notice(mail.sender, payload)

    async def _saved(self, mail: Inspection) -> tuple[Received, ...]:
        """The mail's files, each written to a scratch file of the relay's file store."""
        saved: list[Received] = []
        try:
            for file in mail.files:
                path = await self.accept.files.scratch()
                saved.append(Received(file.name, path))
                await asyncio.to_thread(path.write_bytes, file.data)
        except BaseException:
            await _remove(saved)
            raise
        return tuple(saved)

    async def _author(self, thread_id: str, recipient: str) -> Author:
        """Whom the tag was issued to: one of the site's owners, else the visitor (the
        address they left). Accept checks the sender may write as them."""
        thread = await self.store.get_thread(thread_id)
        site = await self.store.get_site(thread.site) if thread else None
        owners = {email.lower() for email in site.owner_emails} if site else set()
        return Author.OWNER if recipient.lower() in owners else Author.VISITOR

    async def _to_contact_address(self, mail: Inspection, message_id: str) -> Outcome:
        """Mail to a site's public address (hello@…, forwarded here) starts a conversation
        with its sender, answered by email. Each such email is a new thread: From alone
        proves nothing, so it never writes into an existing one; the visitor's address is
        unconfirmed until they answer one of our emails from it or open its link."""
        site = await self._site_of(mail.recipients)
        if site is None or mail.sender is None:
            return Outcome(Verdict.NO_TAG)
        if not mail.body and not mail.files:
            return Outcome(Verdict.EMPTY)
        # Senders are free to vary their From: a site also caps new email conversations.
        if self.starts_per_site.hit(site) or self.accept.per_sender.hit(mail.sender):
            return Outcome(Verdict.RATE_LIMITED)
        sender = mail.sender

        def leave_email(db: Db, started: Started) -> None:
            db.execute("UPDATE visitors SET email = ? WHERE id = ?", (sender, started.visitor))

        digest = hashlib.sha256(message_id.encode()).hexdigest()[:40]
        # A conversation opens with words: a mail of files alone, with its subject.
        opening = mail.body or mail.subject or ", ".join(file.name for file in mail.files)
        started = await self.accept.conversations.start(
            site,
            body=opening,
            client_id=f"email.{digest}",
            name=None,
            page=None,
            via=Via.EMAIL,
            then=leave_email,
        )
        if mail.files:
            await self._post_files(started, mail, message_id, f"email.{digest}.files")
        return Outcome(Verdict.POSTED, started.thread.id, started.message)

    async def _post_files(
        self, started: Started, mail: Inspection, message_id: str, client_id: str
    ) -> None:
        """The files of a mail that started a conversation, as the visitor's next
        message: a thread must exist before a file can be kept for it. Accept.post would
        refuse the visitor, whose address is not confirmed yet; its keeping step is the
        one every channel uses."""
        assert mail.sender is not None
        files = await self._saved(mail)
        thread = started.thread
        inbound = Inbound(
            channel=Via.EMAIL,
            external_id=message_id,
            thread=thread.id,
            author=Author.VISITOR,
            sender=mail.sender,
            on_behalf_of=mail.sender,
            body="",
            files=files,
        )
        try:
            kept, notes = await self.accept.keep_files(inbound, thread)
        finally:
            await _remove(files)
        visitor = Actor(Author.VISITOR, Via.EMAIL)
        await self.accept.conversations.post(
            thread.id, visitor, "\n\n".join(notes), client_id, kept
        )

    async def _site_of(self, recipients: tuple[str, ...]) -> str | None:
        """The one site these addresses name: its contact+SITE@ address at the relay, or
        an address it lists as its own; None when none does, or several do (a site cannot
        take another's mail by listing its address)."""
        sites = await self.store.list_sites()
        # The relay's own contact+SITE@ address is the site's by construction: it wins
        # over any site's list.
        named = {contact_site_of(address) for address in recipients} & {s.id for s in sites}
        if named:
            return named.pop() if len(named) == 1 else None
        wanted = set(recipients)
        listed = {site.id for site in sites if wanted & set(CONTACT_ADDRESSES.of(site))}
        return listed.pop() if len(listed) == 1 else None

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


async def _remove(files: list[Received] | tuple[Received, ...]) -> None:
    for received in files:
        await asyncio.to_thread(received.path.unlink, missing_ok=True)
