"""The outbox rows every kind of email shares: the kinds, the record of one queued
email, and the steps the store takes on them whatever the email says (claiming,
cancelling, issuing reply tags), with whether and how an address wants mail at all.
Used by the mail, digest and continuity parts of the store, inside their transactions.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relay.models import NotifyMode, utc_now
from relay.store.pg_connection import once_per_transaction
from relay.store.rows import Db, Row

# The tables notify_mode and is_suppressed read: a write to one drops what was kept.
OWNERS = frozenset({"owners"})
SUPPRESSED = frozenset({"suppressed"})

# An address its visitor has not confirmed (by opening one of our links) gets one email
# a day at most, whichever visitor or site asks; one visitor gets mail sent to a few
# such addresses a day at most. Nobody mail-bombs a stranger through a chat widget, and
# a visitor who never opened a link can ask again tomorrow.
UNCONFIRMED_WINDOW = 24 * 3600.0
UNCONFIRMED_ADDRESSES_PER_VISITOR = 3


class DeliveryKind(enum.StrEnum):
    """What a delivery row says, whichever channel carries it."""

    OWNER = "owner_notify"
    DIGEST = "owner_digest"  # many conversations in one email: thread NULL
    VISITOR = "visitor_notify"
    RESUME = "resume_link"  # a link that opens the conversation on another device
    LOGIN = "owner_login"  # an inbox sign-in link: thread NULL, the token minted on send
    TEMPLATE = "template"  # an app's approved message, outside its reply window
    NOTICE = "refusal_notice"  # to the sender of a refused emailed reply: thread NULL


TO_OWNERS = frozenset({DeliveryKind.OWNER, DeliveryKind.DIGEST, DeliveryKind.LOGIN})


class DeliveryStatus(enum.StrEnum):
    """pending -> sending -> sent | failed; pending -> cancelled. A `sending` row whose
    relay died is pending again after a lease (store.requeue_interrupted)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class DeliveryQueued:
    """Published after commit when a delivery was queued: wakes its channel's worker."""

    channel: str


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: DeliveryKind
    thread: str | None  # None: a digest or a sign-in link
    recipient: str
    attempts: int


def later(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def notify_mode(db: Db, address: str) -> str:
    """How an owner is told; read once per write batch on PostgreSQL (each visitor
    message of a batch asks for the same owners)."""

    def read() -> str:
        row = db.execute("SELECT notify FROM owners WHERE email = ?", (address.lower(),))
        found = row.fetchone()
        return str(found[0]) if found else NotifyMode.MESSAGE.value

    return once_per_transaction(db, ("notify_mode", address.lower()), OWNERS, read)


def is_suppressed(db: Db, address: str) -> bool:
    """Whether this address, or another spelling of its mailbox, asked for no mail (or
    bounced for good). Rows from before migration 0006 hold the address only. Read once
    per write batch on PostgreSQL, like notify_mode."""

    def read() -> bool:
        found = db.execute(
            "SELECT 1 FROM suppressed WHERE mailbox = ? OR address = ?",
            (mailbox_key(address), address.lower()),
        )
        return found.fetchone() is not None

    return once_per_transaction(db, ("suppressed", address.lower()), SUPPRESSED, read)


def unconfirmed_refusal(db: Db, visitor: str, address: str, outbox_id: int = 0) -> str | None:
    """Why an email to `address` on this visitor's behalf must not go out now, or None.
    Only an address the visitor confirmed escapes the caps. `outbox_id`: the email
    asking, whose own earlier claim (a try that failed) does not count against it."""
    return None if _confirmed(db, visitor, address) else _refusal(db, visitor, address, outbox_id)


def _refusal(db: Db, visitor: str, address: str, outbox_id: int) -> str | None:
    since = later(-UNCONFIRMED_WINDOW)
    if db.execute(
        "SELECT 1 FROM unconfirmed_sends WHERE mailbox = ? AND sent_at > ? AND outbox_id != ?",
        (mailbox_key(address), since, outbox_id),
    ).fetchone():
        return "we already wrote to this address today, and nobody confirmed it"
    addresses = db.execute(
        "SELECT COUNT(*) FROM unconfirmed_sends"
        " WHERE visitor_id = ? AND sent_at > ? AND mailbox != ?",
        (visitor, since, mailbox_key(address)),
    ).fetchone()[0]
    if addresses >= UNCONFIRMED_ADDRESSES_PER_VISITOR:
        return f"we already wrote to {addresses} unconfirmed addresses for this visitor today"
    return None


def claim_unconfirmed(db: Db, visitor: str, address: str, outbox_id: int) -> str | None:
    """Take the day's one email to an unconfirmed address for this outbox row, or say
    why not. One statement takes it (an upsert that locks the mailbox's row), so two
    relays sending to the same mailbox at once cannot both have it; it is taken before
    the email leaves, so an erasure while it is on its way resets nothing."""
    if _confirmed(db, visitor, address):
        return None
    refusal = _refusal(db, visitor, address, outbox_id)
    if refusal is not None:
        return refusal
    taken = db.execute(
        "INSERT INTO unconfirmed_sends (mailbox, visitor_id, outbox_id, sent_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (mailbox) DO UPDATE SET"
        " visitor_id = excluded.visitor_id, outbox_id = excluded.outbox_id,"
        " sent_at = excluded.sent_at WHERE unconfirmed_sends.sent_at <= ?"
        " OR unconfirmed_sends.outbox_id = excluded.outbox_id RETURNING mailbox",
        (mailbox_key(address), visitor, outbox_id, utc_now(), later(-UNCONFIRMED_WINDOW)),
    ).fetchone()
    return None if taken else "another email to this address was sent just now"


def release_unconfirmed(
    db: Db, *, outbox_id: int | None = None, address: str | None = None
) -> None:
    """The day's email is given back: it never left (its send failed for good), or the
    address was confirmed (who opened the link reads that mailbox: no cap protects it)."""
    if outbox_id is not None:
        db.execute("DELETE FROM unconfirmed_sends WHERE outbox_id = ?", (outbox_id,))
    if address is not None:
        db.execute("DELETE FROM unconfirmed_sends WHERE mailbox = ?", (mailbox_key(address),))


def _confirmed(db: Db, visitor: str, address: str) -> bool:
    row = db.execute(
        "SELECT email, email_verified_at FROM visitors WHERE id = ?", (visitor,)
    ).fetchone()
    return row is not None and row[1] is not None and (row[0] or "").lower() == address.lower()


def mailbox_key(address: str) -> str:
    """What is kept of an address for its cap: the mailbox it reaches, as far as one can
    tell (lower case, no "+tag": every large provider delivers ann+x@ to ann@; Gmail
    ignores dots), as a SHA-256 digest: enough to recognise it, not to read it."""
    local, _, domain = address.lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return hashlib.sha256(f"{local}@{domain}".encode()).hexdigest()


def claim(db: Db, item_id: int) -> None:
    # Claimed: out of the one-pending index, so a message that comes while this email
    # is on its way queues a new one instead of joining one already written.
    db.execute(
        "UPDATE outbox SET status = 'sending', updated_at = ? WHERE id = ?", (utc_now(), item_id)
    )


def pending_row(db: Db, item_id: int) -> Row | None:
    """The outbox row if it is still pending; None if cancelled or claimed meanwhile."""
    # An UPDATE locks the row: another relay claiming it waits, then sees it claimed.
    row: Row | None = db.execute(
        "UPDATE outbox SET status = status WHERE id = ? RETURNING *", (item_id,)
    ).fetchone()
    return row if row is not None and row["status"] == "pending" else None


def issued_reply_tag(db: Db, thread: str, recipient: str, candidate: str) -> str:
    """The tag this recipient already has for the thread (whatever key made it: every
    key verifies), else `candidate`, recorded."""
    found = db.execute(
        "SELECT tag FROM reply_tags WHERE thread_id = ? AND recipient = ?", (thread, recipient)
    ).fetchone()
    if found is not None:
        # A new email about the conversation: a tag expired in its silence works again.
        db.execute("UPDATE reply_tags SET revoked_at = NULL WHERE tag = ?", (found[0],))
        return str(found[0])
    db.execute(
        "INSERT INTO reply_tags (tag, thread_id, recipient, created_at) VALUES (?, ?, ?, ?)",
        (candidate, thread, recipient, utc_now()),
    )
    return candidate


def cancel(db: Db, item_id: int, reason: str) -> None:
    db.execute(
        "UPDATE outbox SET status = 'cancelled', last_error = ?, updated_at = ? WHERE id = ?",
        (reason, utc_now(), item_id),
    )


def queue_delivery(
    db: Db, channel: str, kind: DeliveryKind, thread: str | None, recipient: str, delay: float
) -> DeliveryQueued:
    """A delivery row in the caller's transaction; joins the pending one of the same kind,
    thread and recipient (whose content is gathered when it leaves)."""
    now = utc_now()
    db.execute(
        "INSERT INTO outbox (channel, kind, thread_id, recipient, not_before, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (channel, kind, thread_id, recipient) WHERE status = 'pending' DO NOTHING",
        (channel, kind.value, thread, recipient, later(delay), now, now),
    )
    return DeliveryQueued(channel)
