"""The store's side of the email bridge: the outbox, reply tags, processed inbound mail
and suppressed addresses. Mixed into Store; every write is one transaction.

An email is queued in the same transaction as the message that causes it, so a
message is never committed without its notification nor the other way round. The
email's content is gathered when it is sent, so later messages join a pending one.

Owners choose how they hear of visitor messages (owners.notify): an email per
conversation, gathered over a short window; one digest an hour or every morning,
for every site they answer for; or nothing.

Digests and sign-in links are in relay.store.digest; what every email's outbox row
shares, in relay.store.outbox_rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from relay.clock import Clock
from relay.models import Author, Message, NotifyMode, Site, Thread, utc_now
from relay.store.digest import DIGEST_MODES, DigestJob, LoginJob, queue_digest
from relay.store.outbox_rows import (
    MailKind,
    OutboxItem,
    cancel,
    claim,
    claim_unconfirmed,
    is_suppressed,
    issued_reply_tag,
    later,
    mailbox_key,
    notify_mode,
    release_unconfirmed,
    unconfirmed_refusal,
)
from relay.store.rows import Db, Row, message_from_row, site_from_row, thread_from_row

if TYPE_CHECKING:
    from relay.store.base import StoreEvent

RECENT_IN_EMAIL = 10  # messages of context quoted below the marker
# What the Message-ID of an email about no thread names beside its outbox id
# (relay/mail/compose.py: <outbox.ID.digest@…>).
MESSAGE_ID_WORDS = {MailKind.DIGEST: "digest", MailKind.LOGIN: "login"}


@dataclass(frozen=True)
class MailPolicy:
    """When to write: set on the store only when outgoing mail is configured."""

    owner_delay: int  # seconds to gather a visitor's consecutive messages
    visitor_delay: int  # seconds an owner reply may stay unseen before it is mailed
    clock: Clock = field(default_factory=Clock)  # digests go out at hours of this clock


@dataclass(frozen=True)
class MailJob:
    """Everything needed to write one email, read in the transaction that claims it."""

    item: OutboxItem
    site: Site
    thread: Thread
    visitor_name: str | None
    visitor_email: str | None
    new: list[Message]  # what the email is about
    recent: list[Message]  # the conversation up to now, oldest first, for context
    tag: str | None  # owner emails: the reply tag of r+TAG@
    page: str | None = None  # resume links: the page the link opens
    visitor_epoch: int = 0  # a resume link stops working when the visitor signs out

    @property
    def upto_seq(self) -> int | None:
        return self.new[-1].seq if self.new else None


SentJob = MailJob | DigestJob | LoginJob


def queue_notifications(db: Db, policy: MailPolicy, message: Message, site_id: str) -> bool:
    """Queue the email a new message calls for; True if one was queued or joined."""
    now = message.created_at
    zone: str | None = None
    if message.author is Author.VISITOR:
        owners, settings = db.execute(
            "SELECT owner_emails, settings FROM sites WHERE id = ?", (site_id,)
        ).fetchone()
        recipients = [address.lower() for address in json.loads(owners)]
        zone = json.loads(settings).get("timezone")
        kind, delay = MailKind.OWNER, policy.owner_delay
    elif message.author is Author.OWNER:
        row = db.execute(
            "SELECT v.id, v.email FROM visitors v JOIN threads t ON t.visitor_id = v.id"
            " WHERE t.id = ?",
            (message.thread,),
        ).fetchone()
        if row is None or not row[1] or unconfirmed_refusal(db, row[0], row[1]):
            return False
        recipients, kind, delay = [row[1].lower()], MailKind.VISITOR, policy.visitor_delay
    else:
        return False
    queued = False
    for recipient in recipients:
        if is_suppressed(db, recipient):
            continue
        if kind == MailKind.OWNER:
            mode = notify_mode(db, recipient)
            if mode == NotifyMode.OFF:
                continue
            if mode in DIGEST_MODES:
                queue_digest(db, policy.clock, recipient, mode, zone, message.seq)
                queued = True
                continue
        db.execute(
            "INSERT INTO outbox (kind, thread_id, recipient, not_before, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, thread_id, recipient)"
            " WHERE status = 'pending' DO NOTHING",
            (kind, message.thread, recipient, later(delay), now, now),
        )
        queued = True
    return queued


def _item(row: Row) -> OutboxItem:
    return OutboxItem(row["id"], row["kind"], row["thread_id"], row["recipient"], row["attempts"])


class MailStore:
    """Methods SQLiteStore gains for mail (it provides _write and _read)."""

    mail_policy: MailPolicy | None = None

    async def _write(self, op: Any) -> Any: ...  # provided by Store
    async def _read(self, fn: Any) -> Any: ...  # provided by Store

    # -- outbox --------------------------------------------------------------------

    async def due_mail(self, limit: int = 20) -> list[OutboxItem]:
        now = utc_now()
        rows = await self._read(
            lambda db: db.execute(
                "SELECT * FROM outbox WHERE status = 'pending' AND not_before <= ?"
                " ORDER BY not_before, id LIMIT ?",
                (now, limit),
            ).fetchall()
        )
        return [_item(row) for row in rows]

    async def next_mail_at(self) -> str | None:
        row = await self._read(
            lambda db: db.execute(
                "SELECT MIN(not_before) FROM outbox WHERE status = 'pending'"
            ).fetchone()
        )
        return row[0] if row else None

    async def prepare_mail(self, item: OutboxItem, tag: str | None) -> MailJob | None:
        """Claim a due email and gather what it says; None (the row cancelled) if there is
        nothing to say or nobody to say it to any more. `tag`: for owner emails, the tag
        to issue if this recipient has none yet for the thread."""
        assert item.thread is not None, f"{item.kind} emails are prepared by their own method"
        policy = self.mail_policy or MailPolicy(0, 0)

        def op(db: Db) -> tuple[MailJob | None, list[StoreEvent]]:
            # An UPDATE, not a SELECT: it locks the row, so a second relay claiming the
            # same email waits for this transaction, then sees it claimed.
            status = db.execute(
                "UPDATE outbox SET status = status WHERE id = ? RETURNING status, payload",
                (item.id,),
            ).fetchone()
            if status is None or status[0] != "pending":  # cancelled meanwhile, or claimed
                return None, []
            row = db.execute(
                "SELECT t.*, v.name AS visitor_name, v.email AS visitor_email,"
                " v.token_epoch FROM threads t"
                " JOIN visitors v ON v.id = t.visitor_id WHERE t.id = ?",
                (item.thread,),
            ).fetchone()
            if row is None:
                cancel(db, item.id, "the conversation was deleted")
                return None, []
            thread = thread_from_row(row)
            site = site_from_row(
                db.execute("SELECT * FROM sites WHERE id = ?", (thread.site,)).fetchone()
            )

            def job(
                new: list[Message], recent: list[Message], tag: str | None, page: str | None
            ) -> MailJob:
                return MailJob(
                    item,
                    site,
                    thread,
                    row["visitor_name"],
                    row["visitor_email"],
                    new,
                    recent,
                    tag,
                    page,
                    row["token_epoch"],
                )

            refusal = _still_wanted(db, item, row, site) or _mode_changed(db, policy, item, site)
            if refusal:
                cancel(db, item.id, refusal)
                return None, []
            if item.kind == MailKind.RESUME:
                asked = json.loads(status[1] or "{}")
                if refusal := claim_unconfirmed(db, thread.visitor, item.recipient, item.id):
                    cancel(db, item.id, refusal)
                    return None, []
                claim(db, item.id)
                return job([], [], None, asked.get("page")), []
            owner = item.kind == MailKind.OWNER
            author = Author.VISITOR if owner else Author.OWNER
            read = thread.owner_read_seq if owner else thread.visitor_read_seq
            # What this person was already sent: earlier emails of the thread, and for
            # an owner, digests (they may have switched back from digests).
            last_sent = db.execute(
                "SELECT MAX(upto_seq) FROM outbox WHERE recipient = ?3 AND status = 'sent'"
                " AND ((kind = ?1 AND thread_id = ?2) OR (?1 = 'owner_notify' AND kind = ?4))",
                (item.kind, item.thread, item.recipient, MailKind.DIGEST),
            ).fetchone()[0]
            new = [
                message_from_row(r)
                for r in db.execute(
                    "SELECT * FROM messages WHERE thread_id = ? AND seq > ? AND author = ?"
                    " ORDER BY seq",
                    (thread.id, max(last_sent or 0, read), author.value),
                )
            ]
            if not new:
                cancel(db, item.id, "already seen")
                return None, []
            recent = [
                message_from_row(r)
                for r in db.execute(
                    "SELECT * FROM (SELECT * FROM messages WHERE thread_id = ? AND seq <= ?"
                    " ORDER BY seq DESC LIMIT ?) AS recent ORDER BY seq",
                    (thread.id, new[-1].seq, RECENT_IN_EMAIL),
                )
            ]
            if not owner and (
                refusal := claim_unconfirmed(db, thread.visitor, item.recipient, item.id)
            ):
                cancel(db, item.id, refusal)
                return None, []
            issued = issued_reply_tag(db, thread.id, item.recipient, tag) if owner and tag else None
            claim(db, item.id)
            return job(new, recent, issued, None), []

        return await self._write(op)  # type: ignore[no-any-return]

    async def mail_sent(self, job: SentJob) -> None:
        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, upto_seq = ?,"
                " updated_at = ? WHERE id = ?",
                (job.upto_seq, utc_now(), job.item.id),
            )
            return None, []

        await self._write(op)

    async def mail_retry(self, item: OutboxItem, error: str, delay: float) -> None:
        """Back to pending for a later try; merged into a newer pending email if one
        was queued meanwhile (it will say everything this one would have)."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            now = utc_now()
            if _merge_into_newer(db, item, later(round(delay))):
                db.execute(
                    "UPDATE outbox SET status = 'cancelled', attempts = attempts + 1,"
                    " last_error = ?, updated_at = ? WHERE id = ?",
                    (f"merged into a newer email after: {error}"[:500], now, item.id),
                )
            else:
                db.execute(  # unless it was cancelled while on its way
                    "UPDATE outbox SET status = 'pending', attempts = attempts + 1,"
                    " last_error = ?, not_before = ?, updated_at = ? WHERE id = ?"
                    " AND status = 'sending'",
                    (error[:500], later(round(delay)), now, item.id),
                )
            return None, []

        await self._write(op)

    async def requeue_interrupted(self, claimed_before: str) -> int:
        """Emails claimed before `claimed_before` by a process that died mid-send go back
        to pending (they may have left: at least once, with the same Message-ID)."""

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            rows = db.execute(
                "SELECT * FROM outbox WHERE status = 'sending' AND updated_at <= ?",
                (claimed_before,),
            ).fetchall()
            for row in rows:
                item = _item(row)
                status = "cancelled" if _merge_into_newer(db, item, utc_now()) else "pending"
                db.execute(
                    "UPDATE outbox SET status = ?, updated_at = ? WHERE id = ?",
                    (status, utc_now(), item.id),
                )
            return len(rows), []

        return await self._write(op)  # type: ignore[no-any-return]

    async def mail_failed(self, item: OutboxItem, error: str) -> None:
        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?,"
                " updated_at = ? WHERE id = ?",
                (error[:500], utc_now(), item.id),
            )
            release_unconfirmed(db, outbox_id=item.id)  # it never left: no day used up
            return None, []

        await self._write(op)

    async def mail_status(self) -> dict[str, Any]:
        def query(db: Db) -> dict[str, Any]:
            counts = dict(db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
            failed = [
                dict(r)
                for r in db.execute(
                    "SELECT id, kind, status, thread_id, recipient, attempts, last_error,"
                    " updated_at"
                    " FROM outbox WHERE status = 'failed' OR (status = 'pending' AND attempts > 0)"
                    " ORDER BY updated_at DESC LIMIT 50"
                )
            ]
            suppressed = [dict(r) for r in db.execute("SELECT * FROM suppressed ORDER BY address")]
            return {"counts": counts, "problems": failed, "suppressed": suppressed}

        return await self._read(query)  # type: ignore[no-any-return]

    # -- inbound -------------------------------------------------------------------

    async def reply_tag(self, tag: str) -> tuple[str, str, bool] | None:
        """(thread, recipient, revoked) for a tag we issued."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT thread_id, recipient, revoked_at FROM reply_tags WHERE tag = ?",
                (tag.lower(),),
            ).fetchone()
        )
        return (row[0], row[1], row[2] is not None) if row else None

    async def outbox_recipient(self, outbox_id: int) -> tuple[str, str, str] | None:
        """(kind, recipient, what its Message-ID names beside the id: the thread, else
        the kind's word) of an email we sent, or are sending: a bounce can come back
        before the server's answer to our send has been recorded."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT kind, recipient, thread_id FROM outbox WHERE id = ?"
                " AND status IN ('sent', 'sending')",
                (outbox_id,),
            ).fetchone()
        )
        if row is None:
            return None
        return row[0], row[1], row[2] or MESSAGE_ID_WORDS.get(row[0], "")

    async def inbound_seen(self, message_id: str) -> bool:
        row = await self._read(
            lambda db: db.execute(
                "SELECT 1 FROM inbound WHERE message_id = ?", (message_id,)
            ).fetchone()
        )
        return row is not None

    async def record_inbound(self, message_id: str, verdict: str, thread: str | None) -> None:
        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "INSERT INTO inbound (message_id, verdict, thread_id, received_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (message_id, verdict, thread, utc_now()),
            )
            return None, []

        await self._write(op)

    async def suppress(self, addresses: list[str], reason: str) -> None:
        """Never write to these again (hard bounce, unsubscribe); pending mail is dropped."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            for address in {a.lower() for a in addresses}:
                _suppress(db, address, reason)
            return None, []

        await self._write(op)

    async def hard_bounce(self, address: str) -> None:
        """An email we sent to `address` bounced for good. An address a visitor confirmed
        (opened one of our links) is suppressed. An unconfirmed one is forgotten by the
        visitors who typed it, and its waiting mail dropped, but not suppressed: whoever
        had a link sent to a stranger knows its Message-ID, and could forge its bounce
        to switch the stranger's mail off for good."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            confirmed = db.execute(
                "SELECT 1 FROM visitors WHERE lower(email) = ? AND email_verified_at IS NOT NULL",
                (address.lower(),),
            ).fetchone()
            if confirmed:
                _suppress(db, address, "hard_bounce")
                return None, []
            db.execute(
                "UPDATE visitors SET email = NULL WHERE lower(email) = ?"
                " AND email_verified_at IS NULL",
                (address.lower(),),
            )
            _cancel_pending(db, address, "the address bounced")
            return None, []

        await self._write(op)

    async def unsuppress(self, address: str) -> int:
        """Write to this mailbox again (its owner asks, or a bounce was wrong): how many
        suppressions of it were lifted."""

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            lifted = db.execute(
                "DELETE FROM suppressed WHERE mailbox = ? OR address = ?",
                (mailbox_key(address), address.lower()),
            )
            return lifted.rowcount, []

        return await self._write(op)  # type: ignore[no-any-return]


def _suppress(db: Db, address: str, reason: str) -> None:
    db.execute(
        "INSERT INTO suppressed (address, mailbox, reason, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (address.lower(), mailbox_key(address), reason, utc_now()),
    )
    _cancel_pending(db, address, f"address suppressed: {reason}")


def _cancel_pending(db: Db, address: str, reason: str) -> None:
    db.execute(
        "UPDATE outbox SET status = 'cancelled', last_error = ?, updated_at = ?"
        " WHERE recipient = ? AND status = 'pending'",
        (reason, utc_now(), address.lower()),
    )


def _still_wanted(db: Db, item: OutboxItem, row: Row, site: Site) -> str | None:
    """Why this email must not go out now, or None. Checked when it is sent, not only
    when it was queued: owners and addresses change, people unsubscribe."""
    if is_suppressed(db, item.recipient):
        return "address suppressed"
    if item.kind == MailKind.OWNER:
        if item.recipient not in {e.lower() for e in site.owner_emails}:
            return "no longer an owner address of the site"
        return None
    if (row["visitor_email"] or "").lower() != item.recipient:
        return "the visitor changed or removed this address"
    return None  # the caps on unconfirmed addresses: claim_unconfirmed, once it is written


def _mode_changed(db: Db, policy: MailPolicy, item: OutboxItem, site: Site) -> str | None:
    """Why an owner email queued before the owner changed how they hear of messages
    must not go out; a digest now says what it would have said."""
    if item.kind != MailKind.OWNER:
        return None
    mode = notify_mode(db, item.recipient)
    if mode in DIGEST_MODES:
        # The digest starts where this email would have: the thread's first unsent message.
        first = db.execute(
            "SELECT MIN(m.seq) FROM messages m JOIN threads t ON t.id = m.thread_id"
            " WHERE m.thread_id = ? AND m.author = 'visitor' AND m.seq > MAX(t.owner_read_seq,"
            " COALESCE((SELECT MAX(upto_seq) FROM outbox WHERE kind = ? AND thread_id = ?"
            " AND recipient = ? AND status = 'sent'), 0))",
            (item.thread, MailKind.OWNER, item.thread, item.recipient),
        ).fetchone()[0]
        zone = site.settings.get("timezone")
        queue_digest(db, policy.clock, item.recipient, mode, zone, first or 0)
        return "the owner now gets digests: moved into the next one"
    return "the owner turned these emails off" if mode == NotifyMode.OFF else None


def _merge_into_newer(db: Db, item: OutboxItem, not_before: str) -> bool:
    """If a newer email of the same kind to the same person is pending, it takes this
    one's place: it leaves no later than this one would have (a daily digest must not
    slip a day for one failed try) and, for a digest, covers its messages too."""
    merged = db.execute(
        "UPDATE outbox SET not_before = MIN(not_before, ?1), payload = CASE"
        "   WHEN kind = 'owner_digest' THEN json_object('from_seq',"
        "     MIN(CAST(payload ->> 'from_seq' AS INTEGER), COALESCE((SELECT"
        "       CAST(payload ->> 'from_seq' AS INTEGER) FROM outbox WHERE id = ?5), 0)))"
        "   ELSE payload END"
        " WHERE kind = ?2 AND thread_id IS ?3 AND recipient = ?4 AND status = 'pending'"
        " AND id != ?5",
        (not_before, item.kind, item.thread, item.recipient, item.id),
    )
    return merged.rowcount > 0
