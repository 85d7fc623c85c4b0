"""The outbox rows every kind of email shares: the kinds, the record of one queued
email, and the steps the store takes on them whatever the email says (claiming,
cancelling, issuing reply tags), with whether and how an address wants mail at all.
Used by the mail, digest and continuity parts of the store, inside their transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relay.models import NotifyMode, utc_now
from relay.store.rows import Db


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
