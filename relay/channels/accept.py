"""The one inbound step every channel ends with, after it verified and parsed what its
provider delivered:

    drop duplicates (channel, id at the provider) → authorise the sender for the
    thread → cap loops → post through the one write path, with `via` = the channel

A channel proves which thread a message belongs to its own way (an email's reply tag,
a chat bound to a visitor); what it cannot prove is left to this step: that the
sender may still write in that thread.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from relay.conversations import Actor, Conversations
from relay.limits import RateLimiter
from relay.models import Author, Message, Via
from relay.sites.settings import REPLY_ALIASES
from relay.store import Store

HOUR = 3600.0
# An owner answering by hand writes a few messages an hour per conversation; a loop
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
    FORGED = "forged"  # the thread's proof does not match, or the sender may not write
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
        """Refused for now only: the provider must deliver it again later (SMTP 451,
        HTTP 429, IMAP leaves it unmarked)."""
        return self.verdict in (Verdict.RATE_LIMITED, Verdict.DEFERRED)


@dataclass(frozen=True)
class Inbound:
    """A message a channel verified and parsed, for a thread it proved."""

    channel: Via
    external_id: str  # the provider's id for it: the same id again is a duplicate
    thread: str
    author: Author  # who writes: today an owner answering (a visitor's channels: #15)
    sender: str  # the sender's address on the channel (an email address, a chat id)
    on_behalf_of: str  # the owner contact the channel wrote to (an email's tag recipient)
    body: str


class Accept:
    def __init__(self, store: Store, conversations: Conversations) -> None:
        self.store = store
        self.conversations = conversations
        self.per_thread = RateLimiter(REPLIES_PER_THREAD_PER_HOUR, HOUR)
        self.per_sender = RateLimiter(REPLIES_PER_SENDER_PER_HOUR, HOUR)

    async def seen(self, channel: Via, external_id: str) -> bool:
        return await self.store.inbound_seen(channel.value, external_id)

    async def record(self, channel: Via, external_id: str, outcome: Outcome) -> None:
        """Remember a final outcome; a temporary one is processed again when redelivered."""
        if not outcome.temporary:
            await self.store.record_inbound(
                channel.value, external_id, outcome.verdict.value, outcome.thread
            )

    async def post(self, inbound: Inbound) -> Outcome:
        if not await self._may_write(inbound):
            return Outcome(Verdict.FORGED, inbound.thread)
        if not inbound.body:
            return Outcome(Verdict.EMPTY, inbound.thread)
        if self.per_thread.hit(inbound.thread) or self.per_sender.hit(inbound.sender):
            return Outcome(Verdict.RATE_LIMITED, inbound.thread)
        # Idempotent: the same message through two ingresses is stored once.
        digest = hashlib.sha256(inbound.external_id.encode()).hexdigest()[:40]
        message, _ = await self.conversations.post(
            inbound.thread,
            Actor(inbound.author, inbound.channel),
            inbound.body,
            f"{inbound.channel.value}.{digest}",
        )
        return Outcome(Verdict.POSTED, inbound.thread, message)

    async def _may_write(self, inbound: Inbound) -> bool:
        """An owner: the contact written to is still an owner of the thread's site, and
        the sender is that contact, an alias that owner registered, or a reply alias
        of the site (the older, per-site list)."""
        if inbound.author is not Author.OWNER:
            return False  # visitors write in through channels bound to them (issue 15)
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
