"""Who is told of a new message, on which channel, now or in a digest.

Run by the one write path (relay.conversations.core) inside the message's own
transaction, so a message is never committed without its notification nor the other
way round. It only writes delivery rows (relay.store.outbox_rows.queue_delivery); each
channel's worker sends them, and gathers what they say when they leave, so later
messages join a pending one.

Owners choose how they hear of visitor messages (owners.notify): one delivery per
conversation, gathered over a short window; one digest an hour or every morning, for
every site they answer for; or nothing. A visitor hears of an owner's reply they have
not seen, on a contact they left: the chat on a messaging app they last wrote from, at
once (unless they wrote on the site since), else their email address (capped while
unconfirmed). An automatic reply to a message from a chat goes back to that chat.

Devices that took Web Push (relay/push) are told too, before email: an owner's phone
at once (then at most once per thread per owner_delay, the rest gathered; nothing while
an owner of the site is at the inbox), a visitor's after visitor_push_delay. Each is
sent only if still unread then, and so is the email after it: an owner who opened the
thread from the notification gets no email about it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from relay.clock import Clock, parse_instant
from relay.models import Author, Message, NotifyMode
from relay.store.contacts import (
    EMAIL,
    PUSH,
    Contact,
    last_push,
    last_written_on_site,
    owner_contacts,
    owner_devices,
    site_zone,
    visitor_contacts,
    visitor_devices,
)
from relay.store.digest import DIGEST_MODES, queue_digest
from relay.store.engine import StoreEvent
from relay.store.outbox_rows import (
    DeliveryKind,
    is_suppressed,
    notify_mode,
    queue_delivery,
    unconfirmed_refusal,
)
from relay.store.rows import Db


@dataclass(frozen=True)
class NotificationPolicy:
    """When to tell whom; given to the write path only when a channel can deliver."""

    owner_delay: int  # seconds to gather a visitor's consecutive messages
    visitor_delay: int  # seconds an owner reply may stay unseen before it is sent
    clock: Clock = field(default_factory=Clock)  # digests go out at hours of this clock
    channels: frozenset[str] = frozenset({"email"})  # the channels that can deliver
    visitor_push_delay: int = 60  # seconds an owner reply may stay unseen before a push
    at_inbox: Callable[[str], bool] = lambda site: False  # an owner of it is looking now

    def after_message(self, db: Db, message: Message, site: str) -> list[StoreEvent]:
        """Queue what `message` calls for; the events that wake the channels' workers."""
        if message.author is Author.VISITOR:
            # Owners are written to by email only: no mail server, no lookup (on
            # PostgreSQL each statement is a round trip of the message's transaction).
            owners = owner_contacts(db, site) if EMAIL in self.channels else []
            return self._to_owners(db, message, site, owners)
        contacts = visitor_contacts(db, message.thread)
        if message.author is Author.OWNER:
            return self._to_visitor(db, message, contacts)
        # The relay's own messages are seen where they were written, and sent to a chat
        # when written there (an automatic reply to a message from the app).
        return self._to_chat(db, message, [c for c in contacts if c.channel == message.via])

    def _to_owners(
        self, db: Db, message: Message, site: str, contacts: list[Contact]
    ) -> list[StoreEvent]:
        events: list[StoreEvent] = []
        for contact in self._deliverable(db, contacts):
            mode = notify_mode(db, contact.address)
            if mode == NotifyMode.OFF:
                continue
            if mode in DIGEST_MODES:
                queue_digest(
                    db, self.clock, contact.address, mode, site_zone(db, site), message.seq
                )
                events.append(contact.queued())
                continue
            events.append(
                queue_delivery(
                    db,
                    contact.channel,
                    DeliveryKind.OWNER,
                    message.thread,
                    contact.address,
                    self.owner_delay,
                )
            )
        return events + self._to_owner_devices(db, message, site)

    def _to_owner_devices(self, db: Db, message: Message, site: str) -> list[StoreEvent]:
        """Each device of the site's owners, unless one of them is at the inbox (it is
        seen there): at once, or at the end of owner_delay after this device was last
        told of the thread (what comes meanwhile is gathered into that one push)."""
        if PUSH not in self.channels or self.at_inbox(site):
            return []
        events: list[StoreEvent] = []
        for device in owner_devices(db, site):
            last = last_push(db, DeliveryKind.OWNER, message.thread, device.address)
            delay = self.owner_delay - _seconds_since(last) if last else 0.0
            events.append(
                queue_delivery(
                    db, PUSH, DeliveryKind.OWNER, message.thread, device.address, max(0.0, delay)
                )
            )
        return events

    def _to_visitor(self, db: Db, message: Message, contacts: list[Contact]) -> list[StoreEvent]:
        chats = [contact for contact in contacts if contact.since]  # the latest first
        if chats and chats[0].since >= last_written_on_site(db, message.thread):
            return self._to_chat(db, message, chats)
        events: list[StoreEvent] = []
        if PUSH in self.channels:
            for device in visitor_devices(db, message.thread):
                events.append(
                    queue_delivery(
                        db,
                        PUSH,
                        DeliveryKind.VISITOR,
                        message.thread,
                        device.address,
                        self.visitor_push_delay,
                    )
                )
        for contact in self._deliverable(db, contacts):
            if contact.since:
                continue
            if unconfirmed_refusal(db, contact.party, contact.address):  # None if confirmed
                continue
            events.append(
                queue_delivery(
                    db,
                    contact.channel,
                    DeliveryKind.VISITOR,
                    message.thread,
                    contact.address,
                    self.visitor_delay,
                )
            )
        return events

    def _to_chat(self, db: Db, message: Message, chats: list[Contact]) -> list[StoreEvent]:
        """To the chat the visitor last wrote from, at once: they are in the app."""
        for chat in self._deliverable(db, chats[:1]):
            return [
                queue_delivery(
                    db, chat.channel, DeliveryKind.VISITOR, message.thread, chat.address, 0
                )
            ]
        return []

    def _deliverable(self, db: Db, contacts: list[Contact]) -> list[Contact]:
        return [
            contact
            for contact in contacts
            if contact.channel in self.channels and not is_suppressed(db, contact.address)
        ]


def _seconds_since(instant: str) -> float:
    return (datetime.now(UTC) - parse_instant(instant)).total_seconds()
