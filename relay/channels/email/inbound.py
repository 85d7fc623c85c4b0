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
import functools
import hashlib
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relay.channels.accept import HOUR, Accept, Inbound, Outcome, Received, Verdict
from relay.channels.email.authentication import (
    Authentication,
    Decision,
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
from relay.models import Author, Site, Started, Via
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
# The refusals whose sender is told why: a conversation erased (its tag is gone), a
# tag expired, a sender who may not answer (an owner removed from the site, a stranger).
NOTICED = frozenset({Verdict.UNKNOWN_TAG, Verdict.EXPIRED_TAG, Verdict.FORGED})
# Sender checks run on threads of their own (each mostly waits on DNS): those of replies
# to a tag we issued on some, those that only decide whether to send a refusal notice (to
# any r+ address) on one other, so that mail whose DNS never answers, sent to made-up
# addresses, cannot hold up real replies.
CHECKERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="porch-sender-checks")
NOTICE_CHECKERS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="porch-notice-checks")
# Slow sender checks per tag, an hour: mail whose checks take longer than SLOW_CHECK
# seconds (DNS that does not answer) counts against its tag, so that one tag cannot keep
# the checking threads busy; past it the sender's server tries again later. Real mail is
# checked in milliseconds (cached keys and records) and never counts.
SLOW_CHECKS_PER_TAG_PER_HOUR = 20
SLOW_CHECK = 2.0
# Refusal notices the relay sends in an hour, all senders together: refusals are rare, and
# a flood of them is someone using the relay to mail others.
NOTICES_PER_HOUR = 60
# Held replies one site keeps waiting for a decision: past it, more wait at their sender
# (SMTP 451), until the owner releases or discards some. Each keeps its whole mail.
MAX_HELD_PER_SITE = 100


@dataclass
class Reading:
    """One mail on its way through the pipeline, and its sender checks once made."""

    mail: Inspection
    raw: bytes
    message_id: str
    envelope: Envelope | None
    checks: Authentication | None = None


class Pipeline:
    def __init__(self, store: Store, tokens: Tokens, accept: Accept, config: Config) -> None:
        self.store = store
        self.tokens = tokens
        self.accept = accept
        self.config = config
        self._resolver: Resolver | None = None  # made on first use (resolver())
        self.trusted_authserv_ids = frozenset(i.lower() for i in config.trusted_authserv_ids)
        self.starts_per_site = RateLimiter(EMAIL_STARTS_PER_SITE_PER_HOUR, HOUR)
        self.notices = RateLimiter(NOTICES_PER_HOUR, HOUR)
        self.slow_checks = RateLimiter(SLOW_CHECKS_PER_TAG_PER_HOUR, HOUR)
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
        reading = Reading(mail, raw, message_id, envelope)
        outcome = await self._process(reading)
        await self.accept.record(
            Via.EMAIL,
            message_id,
            outcome,
            envelope=dataclasses.asdict(envelope) if envelope else None,
            authentication=reading.checks.to_json() if reading.checks else None,
        )
        log.info("inbound via %s from %s: %s", source, mail.sender, outcome.verdict.value)
        return outcome

    async def _process(self, reading: Reading) -> Outcome:
        mail = reading.mail
        if mail.kind == "bounce":
            await self._bounce(mail, reading.raw)
            return Outcome(Verdict.BOUNCE)
        if mail.kind == "auto_reply":
            return Outcome(Verdict.AUTO_REPLY)
        if mail.token is None:
            return await self._to_contact_address(mail, reading.message_id)
        outcome = await self._reply(reading)
        if outcome.verdict in NOTICED:
            await self._tell_sender(reading, outcome)
        return outcome

    async def _reply(self, reading: Reading) -> Outcome:
        mail = reading.mail
        assert mail.token is not None
        issued = await self.store.reply_tag(mail.token)
        if issued is None:
            return Outcome(Verdict.UNKNOWN_TAG)
        thread_id, recipient = issued.thread, issued.recipient
        if self._expired(issued.last_activity):
            if not issued.revoked:
                await self.store.expire_reply_tag(mail.token)
            return Outcome(Verdict.EXPIRED_TAG, thread_id)
        if issued.revoked:  # for a silence that has ended since (nothing else revokes)
            await self.store.revive_reply_tag(mail.token)
        # The tag proves the thread and whom it was issued to; accept checks the sender.
        # A tag that proves nothing is nobody's to be told about: no notice.
        if not self.tokens.reply_tag_matches(mail.token, thread_id, recipient):
            return Outcome(Verdict.FORGED_TAG, thread_id)
        thread = await self.store.get_thread(thread_id)
        site = await self.store.get_site(thread.site) if thread else None
        if thread is None or site is None or mail.sender is None:
            return Outcome(Verdict.UNKNOWN_TAG)
        policy = SENDER_CHECKS.of(site)
        held: tuple[Decision, Authentication] | None = None
        if policy != "off":  # "off": the tag and From alone, no DNS (the demo's site)
            judged = await self._judge(reading, policy, thread_id)
            if isinstance(judged, Outcome):
                return judged
            if judged[0].action == "hold":
                held = judged
        author = _author(site, recipient)
        if author is Author.VISITOR and mail.sender == recipient.lower():
            # Only that address got the tag: answering with it confirms the address.
            await self.store.confirm_email_by_reply(thread_id, recipient)
        reply = Inbound(
            Via.EMAIL, reading.message_id, thread_id, author, mail.sender, recipient, mail.body
        )
        if not await self.accept.may_write(reply):
            return Outcome(Verdict.FORGED, thread_id)
        if held is not None:
            return await self._hold(reading, reply, site.id, *held)
        return await self.post(mail, reply)

    async def _judge(
        self, reading: Reading, policy: str, thread_id: str
    ) -> Outcome | tuple[Decision, Authentication]:
        """What the site's policy makes of the sender checks: an outcome when the reply
        cannot go on now, else the decision (accept or hold) and what it rests on."""
        mail = reading.mail
        assert mail.token is not None and mail.sender is not None
        if self.slow_checks.hit(mail.token):
            return Outcome(Verdict.RATE_LIMITED, thread_id)
        started = time.monotonic()
        checks = await self._checks(reading, CHECKERS)
        if time.monotonic() - started < SLOW_CHECK:
            self.slow_checks.refund(mail.token)
        if checks is None:  # the checks ran out of time (DNS): the sender tries later
            return Outcome(Verdict.DEFERRED, thread_id)
        if not _same_sender(mail.sender, checks):
            log.warning("From read two ways: %s, %s checked", mail.sender, checks.from_domain)
            return Outcome(Verdict.FORGED_TAG, thread_id)
        decision = checks.decide(policy)
        if decision.action == "retry":
            log.warning("sender checks deferred a reply from %s: %s", mail.sender, decision.detail)
            return Outcome(Verdict.DEFERRED, thread_id)
        return decision, checks

    async def _hold(
        self,
        reading: Reading,
        reply: Inbound,
        site: str,
        decision: Decision,
        checks: Authentication,
    ) -> Outcome:
        """Keep a reply nothing verified, within the caps every reply has (a flood of
        them waits, as posted ones would) and a cap of what a site keeps waiting."""
        if self.accept.flooding(reply) or await self.store.held_count(site) >= MAX_HELD_PER_SITE:
            return Outcome(Verdict.RATE_LIMITED, reply.thread)
        mail = reading.mail
        held = HeldReply(
            id=0,
            site=site,
            thread=reply.thread,
            external_id=reading.message_id,
            author=reply.author,
            sender=reply.sender,
            recipient=reply.on_behalf_of,
            subject=mail.subject,
            body=mail.body,
            reason=decision.reason,
            detail=decision.detail,
            authentication=checks.to_json(),
            received_at="",
        )
        await self.store.hold_reply(held, reading.raw)
        log.warning("held a reply from %s in %s: %s", reply.sender, reply.thread, decision.detail)
        return Outcome(Verdict.HELD, reply.thread)

    async def _checks(self, reading: Reading, pool: ThreadPoolExecutor) -> Authentication | None:
        """The sender checks' verdict, made once per mail; None if they could not finish in
        time. On threads of their own: a DNS server that never answers holds those, not the
        default executor that reads mail and writes files for the whole relay."""
        if reading.checks is None:
            resolver = self.resolver()
            if resolver is None:
                return None
            loop = asyncio.get_running_loop()
            checking = loop.run_in_executor(
                pool,
                functools.partial(
                    authenticate,
                    reading.raw,
                    reading.envelope,
                    resolver=resolver,
                    trusted_authserv_ids=self.trusted_authserv_ids,
                ),
            )
            try:
                reading.checks = await asyncio.wait_for(checking, CHECK_SECONDS)
            except TimeoutError:
                return None
        return reading.checks

    def resolver(self) -> Resolver | None:
        """The DNS the checks ask; None (replies wait at their sender, and the log says
        why) when there is none: no PORCH_DNS_SERVERS and no /etc/resolv.conf. Made on
        first use, so a relay that never takes email needs neither."""
        if self._resolver is None:
            try:
                self._resolver = Resolver(self.config.dns_servers)
            except ValueError as error:
                log.error("cannot check who sent a reply: %s; set PORCH_DNS_SERVERS", error)
                return None
        return self._resolver

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

    async def _tell_sender(self, reading: Reading, outcome: Outcome) -> None:
        """One notice to the sender of a refused reply, when there is a mail server to
        send it and its sender is proved: DKIM or SPF aligned with its From passed. A
        notice to an unproved From could be mail to a stranger, at a forger's wish. The
        store sends a mailbox one a day at most; the relay, NOTICES_PER_HOUR in all."""
        mail = reading.mail
        if not self.config.mail_enabled or mail.sender is None:
            return
        checks = await self._checks(reading, NOTICE_CHECKERS)
        if checks is None or not _same_sender(mail.sender, checks):
            return
        if checks.decide("strict").action != "accept":
            return
        if self.notices.hit("relay"):
            log.warning("%d refusal notices this hour: %s not told", NOTICES_PER_HOUR, mail.sender)
            return
        language = "en"
        thread = await self.store.get_thread(outcome.thread) if outcome.thread else None
        site = await self.store.get_site(thread.site) if thread else None
        if site is not None:
            language = LANGUAGE.of(site)
        payload = {
            "reason": outcome.verdict.value,
            "subject": mail.subject,
            "in_reply_to": reading.message_id,
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


def _author(site: Site, recipient: str) -> Author:
    """Whom the tag was issued to: one of the site's owners, else the visitor (the address
    they left). Accept checks the sender may write as them."""
    owners = {email.lower() for email in site.owner_emails}
    return Author.OWNER if recipient.lower() in owners else Author.VISITOR


def _same_sender(sender: str, checks: Authentication) -> bool:
    """Whether the checks judged the From the reader read. Two parsers can read one header
    block two ways (a bare CR ends a line for one and not the other): a From only the reader
    sees would be posted under the DMARC verdict of another domain. Several From fields, or
    none the checks could use: no."""
    domain = sender.rpartition("@")[2].strip().lower().rstrip(".")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return checks.from_domain is not None and ascii_domain == checks.from_domain
