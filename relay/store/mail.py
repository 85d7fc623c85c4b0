"""The email channel's rows: its deliveries in the outbox (gathered and claimed when
they leave), reply tags, and suppressed addresses. Who is told of what, and when, is
decided by relay.conversations.notify, inside the message's own transaction.

Digests and sign-in links are in relay.store.digest; what every delivery row shares,
in relay.store.outbox_rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from relay.catalogue import language_or_default
from relay.clock import Clock
from relay.models import Author, Message, NotifyMode, Site, Thread, utc_now
from relay.store.digest import DIGEST_MODES, DigestJob, LoginJob, owner_language, queue_digest
from relay.store.engine import Engine, StoreEvent
from relay.store.held import NoticeJob
from relay.store.outbox_rows import (
    DeliveryKind,
    OutboxItem,
    cancel,
    claim,
    claim_unconfirmed,
    is_suppressed,
    issued_reply_tag,
    mailbox_key,
    notify_mode,
)
from relay.store.rows import Db, Row, message_from_row, site_from_row, thread_from_row

RECENT_IN_EMAIL = 10  # messages of context quoted below the marker
# What the Message-ID of an email about no thread names beside its outbox id
# (relay/mail/compose.py: <outbox.ID.digest@…>).
MESSAGE_ID_WORDS = {
    DeliveryKind.DIGEST: "digest",
    DeliveryKind.LOGIN: "login",
    DeliveryKind.NOTICE: "notice",
}


@dataclass(frozen=True)
class IssuedTag:
    thread: str
    recipient: str  # lowercased address it was issued to
    revoked: bool
    last_activity: str  # ISO UTC: the conversation's last message


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
    tag: str | None  # notifications: the reply tag of their r+TAG@ Reply-To
    page: str | None = None  # resume links: the page the link opens
    visitor_epoch: int = 0  # a resume link stops working when the visitor signs out
    language: str = "en"  # the recipient's (relay.catalogue.LANGUAGES)

    @property
    def upto_seq(self) -> int | None:
        return self.new[-1].seq if self.new else None


SentJob = MailJob | DigestJob | LoginJob | NoticeJob


class MailStore(Engine):
    """The email channel's rows: its deliveries in the outbox, reply tags, suppressions."""

    # -- outbox --------------------------------------------------------------------

    async def prepare_mail(self, item: OutboxItem, tag: str | None, clock: Clock) -> MailJob | None:
        """Claim a due email and gather what it says; None (the row cancelled) if there is
        nothing to say or nobody to say it to any more. `tag`: for notifications, the tag
        to issue if this recipient has none yet for the thread. `clock`: when digests go
        out (an owner who switched to digests gets this email's news in the next one)."""
        assert item.thread is not None, f"{item.kind} emails are prepared by their own method"

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
                " v.token_epoch, v.language AS visitor_language FROM threads t"
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
                    language,
                )

            # In the recipient's language: an owner's choice, a visitor's widget, else
            # the site's.
            chosen = (
                owner_language(db, item.recipient)
                if item.kind == DeliveryKind.OWNER
                else row["visitor_language"]
            )
            language = language_or_default(chosen or site.settings.get("language"))
            refusal = _still_wanted(db, item, row, site) or _mode_changed(db, clock, item, site)
            if refusal:
                cancel(db, item.id, refusal)
                return None, []
            if item.kind == DeliveryKind.RESUME:
                asked = json.loads(status[1] or "{}")
                if refusal := claim_unconfirmed(db, thread.visitor, item.recipient, item.id):
                    cancel(db, item.id, refusal)
                    return None, []
                claim(db, item.id)
                return job([], [], None, asked.get("page")), []
            owner = item.kind == DeliveryKind.OWNER
            author = Author.VISITOR if owner else Author.OWNER
            read = thread.owner_read_seq if owner else thread.visitor_read_seq
            # What this person was already sent: earlier emails of the thread, and for
            # an owner, digests (they may have switched back from digests).
            last_sent = db.execute(
                "SELECT MAX(upto_seq) FROM outbox WHERE recipient = ?3 AND status = 'sent'"
                " AND ((kind = ?1 AND thread_id = ?2) OR (?1 = 'owner_notify' AND kind = ?4))",
                (item.kind, item.thread, item.recipient, DeliveryKind.DIGEST),
            ).fetchone()[0]
            # A visitor also gets the relay's own messages written for email (the away
            # reply to a customer who wrote by email).
            new = [
                message_from_row(r)
                for r in db.execute(
                    "SELECT * FROM messages WHERE thread_id = ? AND seq > ?"
                    " AND (author = ? OR (? AND author = 'system' AND via = 'email'))"
                    " ORDER BY seq",
                    (thread.id, max(last_sent or 0, read), author.value, not owner),
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
            issued = issued_reply_tag(db, thread.id, item.recipient, tag) if tag else None
            claim(db, item.id)
            return job(new, recent, issued, None), []

        return await self.write(op)

    # -- inbound -------------------------------------------------------------------

    async def reply_tag(self, tag: str) -> IssuedTag | None:
        """A tag we issued, with its conversation's last message time."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT r.thread_id, r.recipient, r.revoked_at, t.updated_at FROM reply_tags r"
                " JOIN threads t ON t.id = r.thread_id WHERE r.tag = ?",
                (tag.lower(),),
            ).fetchone()
        )
        return IssuedTag(row[0], row[1], row[2] is not None, row[3]) if row else None

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

    async def suppress(self, addresses: list[str], reason: str) -> None:
        """Never write to these again (hard bounce, unsubscribe); pending mail is dropped."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            for address in {a.lower() for a in addresses}:
                _suppress(db, address, reason)
            return None, []

        await self.write(op)

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

        await self.write(op)

    async def unsuppress(self, address: str) -> int:
        """Write to this mailbox again (its owner asks, or a bounce was wrong): how many
        suppressions of it were lifted."""

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            lifted = db.execute(
                "DELETE FROM suppressed WHERE mailbox = ? OR address = ?",
                (mailbox_key(address), address.lower()),
            )
            return lifted.rowcount, []

        return await self.write(op)


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
    if item.kind == DeliveryKind.OWNER:
        if item.recipient not in {e.lower() for e in site.owner_emails}:
            return "no longer an owner address of the site"
        return None
    if (row["visitor_email"] or "").lower() != item.recipient:
        return "the visitor changed or removed this address"
    return None  # the caps on unconfirmed addresses: claim_unconfirmed, once it is written


def _mode_changed(db: Db, clock: Clock, item: OutboxItem, site: Site) -> str | None:
    """Why an owner email queued before the owner changed how they hear of messages
    must not go out; a digest now says what it would have said."""
    if item.kind != DeliveryKind.OWNER:
        return None
    mode = notify_mode(db, item.recipient)
    if mode in DIGEST_MODES:
        # The digest starts where this email would have: the thread's first unsent message.
        first = db.execute(
            "SELECT MIN(m.seq) FROM messages m JOIN threads t ON t.id = m.thread_id"
            " WHERE m.thread_id = ? AND m.author = 'visitor' AND m.seq > MAX(t.owner_read_seq,"
            " COALESCE((SELECT MAX(upto_seq) FROM outbox WHERE kind = ? AND thread_id = ?"
            " AND recipient = ? AND status = 'sent'), 0))",
            (item.thread, DeliveryKind.OWNER, item.thread, item.recipient),
        ).fetchone()[0]
        zone = site.settings.get("timezone")
        queue_digest(db, clock, item.recipient, mode, zone, first or 0)
        return "the owner now gets digests: moved into the next one"
    return "the owner turned these emails off" if mode == NotifyMode.OFF else None
