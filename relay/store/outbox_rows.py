"""The outbox rows every kind of email shares: the kinds, the record of one queued
email, and the steps the store takes on them whatever the email says (claiming,
cancelling, issuing reply tags), with whether and how an address wants mail at all.
Used by the mail, digest and continuity parts of the store, inside their transactions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relay.models import NotifyMode, utc_now
from relay.store.rows import Db

# An address its visitor has not confirmed (by opening one of our links) gets one email
# a day at most, whichever visitor or site asks; one visitor gets mail sent to a few
# such addresses a day at most. Nobody mail-bombs a stranger through a chat widget, and
# a visitor who never opened a link can ask again tomorrow.
UNCONFIRMED_WINDOW = 24 * 3600.0
UNCONFIRMED_ADDRESSES_PER_VISITOR = 3


class MailKind:
    OWNER = "owner_notify"
    DIGEST = "owner_digest"  # many conversations in one email: thread NULL
    VISITOR = "visitor_notify"
    RESUME = "resume_link"  # a link that opens the conversation on another device
    LOGIN = "owner_login"  # an inbox sign-in link: thread NULL, the token minted on send
    TO_OWNERS = (OWNER, DIGEST, LOGIN)


@dataclass(frozen=True)
class MailQueued:
    """Published after commit when an email was queued: wakes the outbox worker."""


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    thread: str | None  # None: a digest or a sign-in link
    recipient: str
    attempts: int


def later(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def notify_mode(db: Db, address: str) -> str:
    row = db.execute("SELECT notify FROM owners WHERE email = ?", (address.lower(),)).fetchone()
    return str(row[0]) if row else NotifyMode.MESSAGE.value


def is_suppressed(db: Db, address: str) -> bool:
    found = db.execute("SELECT 1 FROM suppressed WHERE address = ?", (address.lower(),))
    return found.fetchone() is not None


def unconfirmed_refusal(db: Db, visitor: str, address: str) -> str | None:
    """Why an email to `address` on this visitor's behalf must not go out now, or None.
    Only addresses the visitor confirmed escape the caps."""
    address = address.lower()
    row = db.execute(
        "SELECT email, email_verified_at FROM visitors WHERE id = ?", (visitor,)
    ).fetchone()
    if row is not None and row[1] is not None and (row[0] or "").lower() == address:
        return None
    since = later(-UNCONFIRMED_WINDOW)
    if db.execute(
        "SELECT 1 FROM unconfirmed_sends WHERE address_hash = ? AND sent_at > ? LIMIT 1",
        (address_hash(address), since),
    ).fetchone():
        return "we already wrote to this address today, and nobody confirmed it"
    addresses = db.execute(
        "SELECT COUNT(DISTINCT address_hash) FROM unconfirmed_sends"
        " WHERE visitor_id = ? AND sent_at > ?",
        (visitor, since),
    ).fetchone()[0]
    if addresses >= UNCONFIRMED_ADDRESSES_PER_VISITOR:
        return f"we already wrote to {addresses} unconfirmed addresses for this visitor today"
    return None


def record_unconfirmed(db: Db, visitor: str, address: str) -> None:
    """An email left for an address this visitor has not confirmed: it counts."""
    db.execute(
        "INSERT INTO unconfirmed_sends (address_hash, visitor_id, sent_at)"
        " SELECT ?, id, ? FROM visitors WHERE id = ?"
        " AND (email_verified_at IS NULL OR lower(email) != ?)",
        (address_hash(address), utc_now(), visitor, address.lower()),
    )


def address_hash(address: str) -> str:
    """What is kept of an address for its cap: enough to recognise it, not to read it."""
    return hashlib.sha256(address.lower().encode()).hexdigest()


def claim(db: Db, item_id: int) -> None:
    # Claimed: out of the one-pending index, so a message that comes while this email
    # is on its way queues a new one instead of joining one already written.
    db.execute(
        "UPDATE outbox SET status = 'sending', updated_at = ? WHERE id = ?", (utc_now(), item_id)
    )


def issued_reply_tag(db: Db, thread: str, recipient: str, candidate: str) -> str:
    """The tag this recipient already has for the thread (whatever key made it: every
    key verifies), else `candidate`, recorded."""
    found = db.execute(
        "SELECT tag FROM reply_tags WHERE thread_id = ? AND recipient = ?", (thread, recipient)
    ).fetchone()
    if found is not None:
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
