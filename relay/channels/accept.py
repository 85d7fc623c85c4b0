"""The one inbound step every channel ends with, after it verified and parsed what its
provider delivered:

    drop duplicates (channel, id at the provider) → authorise the sender for the
    thread → cap loops → keep its files → post through the one write path, with
    `via` = the channel

A channel proves which thread a message belongs to its own way (an email's reply tag,
a chat bound to a visitor); what it cannot prove is left to this step: that the
sender may still write in that thread.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.catalogue import text
from relay.conversations import Actor, Conversations
from relay.conversations.files import Files
from relay.errors import NotFound, TooLarge, UnprocessableRequest, UnsupportedType
from relay.inputs import MAX_ATTACHMENTS
from relay.limits import RateLimiter
from relay.models import Author, Message, Site, Thread, Via
from relay.sites.settings import LANGUAGE, MAX_MESSAGE_MB, MB, REPLY_ALIASES
from relay.store import Store

log = logging.getLogger("porch.channels")

HOUR = 3600.0
MINUTE = 60.0
# An owner answering by hand writes a few messages an hour per conversation; a loop
# between two robots writes hundreds. These caps stop the second, never the first.
REPLIES_PER_THREAD_PER_HOUR = 30
REPLIES_PER_SENDER_PER_HOUR = 120
# A customer in a messaging app types short lines, or forwards a batch of fifty at once;
# the app has no auto-responder to loop with ours. Only a flood is capped: a refused
# message is delivered again later, and Telegram holds the bot's next updates meanwhile.
CHAT_MESSAGES_PER_MINUTE = 120


class Verdict(enum.StrEnum):
    POSTED = "posted"
    DUPLICATE = "duplicate"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    EMPTY = "empty"  # nothing new after quotes and signatures were removed
    NO_TAG = "no_tag"
    UNKNOWN_TAG = "unknown_tag"
    REVOKED_TAG = "revoked_tag"
    EXPIRED_TAG = "expired_tag"  # its conversation had no message for REPLY_TAG_DAYS
    HELD = "held"  # the sender could not be verified: kept until an owner decides
    FORGED = "forged"  # the sender may not write to the thread
    FORGED_TAG = "forged_tag"  # the tag or the mail's headers prove nothing: not ours
    RATE_LIMITED = "rate_limited"
    UNREADABLE = "unreadable"
    LINKED = "linked"  # a chat now continues a widget thread ("continue in the app")
    IGNORED = "ignored"  # an app's command or opening that says nothing by itself
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
        """Refused for now only: the provider must deliver it again later (SMTP 451,
        HTTP 429, IMAP leaves it unmarked)."""
        return self.verdict in (Verdict.RATE_LIMITED, Verdict.DEFERRED)


@dataclass(frozen=True)
class Received:
    """A file that came with a message, as the channel saved it (a Files.scratch())."""

    name: str  # as the sender named it
    path: Path


@dataclass(frozen=True)
class Inbound:
    """A message a channel verified and parsed, for a thread it proved. Its `files`
    are Accept's from here on: kept with the message, or removed."""

    channel: Via
    external_id: str  # the provider's id for it: the same id again is a duplicate
    thread: str
    author: Author  # an owner answering, or a visitor writing from a contact of theirs
    sender: str  # the sender's address on the channel (an email address, a chat)
    on_behalf_of: str  # owners: the owner contact the channel wrote to (a tag recipient)
    body: str
    files: tuple[Received, ...] = ()


class Accept:
    def __init__(self, store: Store, conversations: Conversations, files: Files) -> None:
        self.store = store
        self.conversations = conversations
        self.files = files
        self.per_thread = RateLimiter(REPLIES_PER_THREAD_PER_HOUR, HOUR)
        self.per_sender = RateLimiter(REPLIES_PER_SENDER_PER_HOUR, HOUR)
        self.per_chat = RateLimiter(CHAT_MESSAGES_PER_MINUTE, MINUTE)

    async def seen(self, channel: Via, external_id: str) -> bool:
        return await self.store.inbound_seen(channel.value, external_id)

    async def record(
        self, channel: Via, external_id: str, outcome: Outcome, **details: Any
    ) -> None:
        """Remember a final outcome; a temporary one is processed again when redelivered.
        `details`: what the channel knows of the delivery (store.record_inbound)."""
        if not outcome.temporary:
            await self.store.record_inbound(
                channel.value, external_id, outcome.verdict.value, outcome.thread, **details
            )

    async def post(self, inbound: Inbound) -> Outcome:
        try:
            return await self._post(inbound)
        finally:  # kept files were moved into blobs; the rest go
            for received in inbound.files:
                await asyncio.to_thread(received.path.unlink, missing_ok=True)

    async def _post(self, inbound: Inbound) -> Outcome:
        if not await self.may_write(inbound):
            return Outcome(Verdict.FORGED, inbound.thread)
        if not inbound.body and not inbound.files:
            return Outcome(Verdict.EMPTY, inbound.thread)
        if self.flooding(inbound):
            return Outcome(Verdict.RATE_LIMITED, inbound.thread)
        thread = await self.store.get_thread(inbound.thread)
        if thread is None:
            raise NotFound(f"no thread {inbound.thread!r}")
        kept, notes = await self.keep_files(inbound, thread)
        body = "\n\n".join(part for part in (inbound.body, *notes) if part)
        # Idempotent: the same message through two ingresses is stored once.
        digest = hashlib.sha256(inbound.external_id.encode()).hexdigest()[:40]
        message, _ = await self.conversations.post(
            inbound.thread,
            Actor(inbound.author, inbound.channel),
            body,
            f"{inbound.channel.value}.{digest}",
            kept,
            site=thread.site,
        )
        return Outcome(Verdict.POSTED, inbound.thread, message)

    async def keep_files(self, inbound: Inbound, thread: Thread) -> tuple[list[str], list[str]]:
        """(ids of the files kept, a note for each refused one): a file the relay does
        not take, or past the site's total for one message, is never dropped without a
        word. (Its scratch file is removed by post(); a caller that does not post removes
        them itself.)"""
        site = await self.store.get_site(thread.site)
        settings: Site | dict[str, Any] = site if site else {}
        most, total = MAX_MESSAGE_MB.of(settings) * MB, 0
        kept: list[str] = []
        notes: list[str] = []
        for received in inbound.files:
            try:
                if len(kept) == MAX_ATTACHMENTS:
                    raise UnprocessableRequest(f"more than {MAX_ATTACHMENTS} files")
                attachment = await self.files.keep(
                    received.path, received.name, thread, inbound.author
                )
                if total + attachment.size > most:  # left unsent: the daily purge takes it
                    raise TooLarge(f"the files of one message may total {most // MB} MB")
            except (TooLarge, UnsupportedType, UnprocessableRequest) as refused:
                # Too large, a type it does not take, unreadable: noted. Anything else (the
                # store unavailable) fails the whole message, which the provider sends again.
                log.info("%s %s: file not kept: %s", inbound.channel, thread.id, refused)
                name = received.name[:100]
                notes.append(text("server.attach.refused", LANGUAGE.of(settings), name=name))
                continue
            total += attachment.size
            kept.append(attachment.id)
        return kept, notes

    def flooding(self, inbound: Inbound) -> bool:
        """Over a cap (RateLimiter.hit gives the seconds to wait, 0 when under it)."""
        if inbound.channel is not Via.EMAIL and inbound.author is Author.VISITOR:
            return self.per_chat.hit(inbound.sender) > 0
        return self.per_thread.hit(inbound.thread) > 0 or self.per_sender.hit(inbound.sender) > 0

    async def may_write(self, inbound: Inbound) -> bool:
        """A visitor: the sender is a confirmed contact of the thread's visitor on this
        channel (a chat bound to the thread, an address they confirmed). An owner: the
        contact written to is still an owner of the thread's site, and the sender is that
        contact, an alias that owner registered, or a reply alias of the site (the older,
        per-site list)."""
        if inbound.author is Author.VISITOR:
            contacts = await self.store.thread_visitor_contacts(inbound.thread)
            return any(
                contact.confirmed
                and contact.channel == inbound.channel.value
                and contact.address.lower() == inbound.sender.lower()
                for contact in contacts
            )
        if inbound.author is not Author.OWNER:
            return False
        thread = await self.store.get_thread(inbound.thread)
        site = await self.store.get_site(thread.site) if thread else None
        owner = inbound.on_behalf_of.lower()
        if site is None or owner not in {e.lower() for e in site.owner_emails}:
            return False
        sender = inbound.sender.lower()
        if sender == owner:
            return True
        aliases = {a.lower() for a in REPLY_ALIASES.of(site)}
        aliases.update(a.lower() for a in (await self.store.get_owner(owner)).aliases)
        return sender in aliases
