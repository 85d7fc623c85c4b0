"""Where a person can be told something, per channel: an owner or a visitor has
contacts (an email address; a chat on a messaging app, relay.store.chats). Plain
functions run inside the caller's transaction.

An owner is one of a site's owner addresses: the email contact is also who they are
(owners, inbox sessions and digests are keyed by it). A visitor's email contact is
the address they left (visitors.email), confirmed once they opened one of our links.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from relay.store.outbox_rows import DeliveryQueued
from relay.store.pg_connection import once_per_transaction
from relay.store.rows import Db

EMAIL = "email"
PUSH = "push"  # a device taking Web Push (relay/push): its address is the subscription's id
# What owner_devices reads, and owner_sessions, whose rows take their devices with them
# (ON DELETE CASCADE).
OWNER_DEVICE_TABLES = frozenset({"push_subscriptions", "sites", "owner_sessions"})
SITES = frozenset({"sites"})  # what owner_contacts reads


@dataclass(frozen=True)
class Contact:
    channel: str  # a registered channel name (relay.channels)
    address: str  # what that channel delivers to: an email address, a chat id
    party: str  # whose contact: an owner's address, or a visitor id
    confirmed: bool  # the person proved they read it
    since: str = ""  # chats: when the person last wrote from it

    def queued(self) -> DeliveryQueued:
        return DeliveryQueued(self.channel)


def chat_recipient(channel_id: str, address: str) -> str:
    """How a chat on a messaging app (relay.store.chats) is named as a delivery's recipient."""
    return f"{channel_id}:{address}"


def owner_contacts(db: Db, site: str) -> list[Contact]:
    """The site's owners' addresses; read once per write batch on PostgreSQL."""

    def read() -> list[Contact]:
        row = db.execute("SELECT owner_emails FROM sites WHERE id = ?", (site,)).fetchone()
        addresses = json.loads(row[0]) if row else []
        # An owner's address is confirmed by whoever set up the site (the CLI or the inbox).
        return [Contact(EMAIL, a.lower(), a.lower(), confirmed=True) for a in addresses]

    return list(once_per_transaction(db, ("owner_contacts", site), SITES, read))


def visitor_contacts(db: Db, thread: str) -> list[Contact]:
    """Their chats on messaging apps, the one they last wrote from first; then the
    email address they left."""
    chats = [
        Contact(row[0], chat_recipient(row[1], row[2]), row[3], confirmed=True, since=row[4])
        for row in db.execute(
            "SELECT a.kind, c.channel_id, c.address, c.visitor_id, c.last_inbound_at"
            " FROM chats c JOIN app_channels a ON a.id = c.channel_id"
            " WHERE c.thread_id = ? ORDER BY c.last_inbound_at DESC",
            (thread,),
        )
    ]
    return chats + _visitor_email(db, thread)


def owner_devices(db: Db, site: str) -> list[Contact]:
    """The push devices of whoever owns the site now (wherever they subscribed); read
    once per write batch on PostgreSQL, where each visitor message asks."""

    def read() -> list[Contact]:
        return [
            Contact(PUSH, row[0], row[1], confirmed=True)
            for row in db.execute(
                "SELECT id, owner_email FROM push_subscriptions WHERE owner_email IN"
                " (SELECT lower(value) FROM sites s, json_each(s.owner_emails) WHERE s.id = ?)",
                (site,),
            )
        ]

    return list(once_per_transaction(db, ("owner_devices", site), OWNER_DEVICE_TABLES, read))


def visitor_devices(db: Db, thread: str) -> list[Contact]:
    """The push devices of the thread's visitor."""
    return [
        Contact(PUSH, row[0], row[1], confirmed=True)
        for row in db.execute(
            "SELECT p.id, p.visitor_id FROM push_subscriptions p"
            " JOIN threads t ON t.visitor_id = p.visitor_id WHERE t.id = ?",
            (thread,),
        )
    ]


def last_push(db: Db, kind: str, thread: str, device: str) -> str | None:
    """When this device was last pushed news of the thread (or a push of it was
    claimed: one on its way counts, so what comes meanwhile waits for the window)."""
    row = db.execute(
        "SELECT MAX(updated_at) FROM outbox WHERE channel = ? AND kind = ? AND thread_id = ?"
        " AND recipient = ? AND status IN ('sent', 'sending')",
        (PUSH, kind, thread, device),
    ).fetchone()
    return str(row[0]) if row and row[0] else None


def last_written_on_site(db: Db, thread: str) -> str:
    """When the visitor last wrote other than from a chat (the widget, email), or ''."""
    row = db.execute(
        "SELECT MAX(created_at) FROM messages WHERE thread_id = ? AND author = 'visitor'"
        " AND via IN ('widget', 'email')",
        (thread,),
    ).fetchone()
    return str(row[0]) if row and row[0] else ""


def _visitor_email(db: Db, thread: str) -> list[Contact]:
    row = db.execute(
        "SELECT v.id, v.email, v.email_verified_at FROM visitors v"
        " JOIN threads t ON t.visitor_id = v.id WHERE t.id = ?",
        (thread,),
    ).fetchone()
    if row is None or not row[1]:
        return []
    return [Contact(EMAIL, row[1].lower(), row[0], confirmed=row[2] is not None)]


def site_zone(db: Db, site: str) -> str | None:
    """The site's time zone setting: digests go out at its hours."""
    row = db.execute("SELECT settings FROM sites WHERE id = ?", (site,)).fetchone()
    zone = json.loads(row[0]).get("timezone") if row else None
    return zone if isinstance(zone, str) else None
