"""The store's side of trust in emailed replies: replies held until an owner decides,
the notices that answer refused replies, and reply tags that expire. Mixed into Store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from relay.models import Author, HeldChanged, utc_now
from relay.store.engine import Engine, StoreEvent
from relay.store.outbox_rows import (
    DeliveryKind,
    DeliveryQueued,
    OutboxItem,
    cancel,
    claim,
    is_suppressed,
    later,
    mailbox_key,
    pending_row,
)
from relay.store.rows import Db, Row

# A sender hears of refused replies once a day at most, whatever they send: a notice
# goes to whatever From a mail claims, so it must not become a way to mail strangers.
NOTICES_WINDOW = 24 * 3600.0


@dataclass(frozen=True)
class HeldReply:
    id: int
    site: str
    thread: str
    external_id: str  # the mail's Message-ID: its inbound record, and its post's client id
    author: Author  # whom the reply tag was issued to: the owner, or the visitor
    sender: str
    recipient: str
    subject: str
    body: str
    reason: str
    detail: str
    authentication: dict[str, Any]
    received_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "thread": self.thread,
            "author": self.author.value,
            "sender": self.sender,
            "subject": self.subject,
            "body": self.body,
            "reason": self.reason,
            "detail": self.detail,
            "authentication": self.authentication,
            "received_at": self.received_at,
        }


@dataclass(frozen=True)
class NoticeJob:
    """A refusal notice, claimed: its payload says why and in which language."""

    item: OutboxItem
    payload: dict[str, Any]
    upto_seq: None = None


class HeldStore(Engine):
    async def hold_reply(self, held: HeldReply, raw: bytes) -> bool:
        """Keep a reply that could not be verified; False if this mail is held already
        (a second delivery of it)."""

        def op(db: Db) -> tuple[bool, list[StoreEvent]]:
            row = db.execute(
                "INSERT INTO held_mail (thread_id, external_id, author, sender, recipient,"
                " subject, body, reason, detail, authentication, raw, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (external_id) DO NOTHING RETURNING id",
                (
                    held.thread,
                    held.external_id,
                    held.author.value,
                    held.sender,
                    held.recipient,
                    held.subject,
                    held.body,
                    held.reason,
                    held.detail,
                    json.dumps(held.authentication),
                    raw,
                    utc_now(),
                ),
            ).fetchone()
            if row is None:
                return False, []
            return True, [HeldChanged(held.site, held.thread)]

        return await self.write(op)

    async def held_replies(self, sites: list[str], thread: str | None = None) -> list[HeldReply]:
        """Replies waiting for a decision in these sites (in one thread of them), oldest
        first."""
        if not sites:
            return []
        marks = ", ".join("?" * len(sites))
        where = f"t.site_id IN ({marks}) AND h.status IN ('held', 'releasing')"
        params: list[Any] = list(sites)
        if thread is not None:
            where += " AND h.thread_id = ?"
            params.append(thread)
        rows = await self._read(
            lambda db: db.execute(
                f"SELECT h.*, t.site_id FROM held_mail h JOIN threads t ON t.id = h.thread_id"
                f" WHERE {where} ORDER BY h.id",
                params,
            ).fetchall()
        )
        return [_held(row) for row in rows]

    async def held_reply(self, held_id: int) -> tuple[HeldReply, bytes] | None:
        """A reply still waiting for a decision, with its mail."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT h.*, t.site_id FROM held_mail h JOIN threads t ON t.id = h.thread_id"
                " WHERE h.id = ? AND h.status IN ('held', 'releasing')",
                (held_id,),
            ).fetchone()
        )
        return (_held(row), bytes(row["raw"])) if row is not None else None

    async def claim_release(self, held_id: int) -> bool:
        """Mark a held reply as being released, its mail kept until it is posted; False if
        it was discarded or released meanwhile. One that a crash left releasing may be
        released again (the post is idempotent: its client id is the mail's)."""

        def op(db: Db) -> tuple[bool, list[StoreEvent]]:
            row = db.execute(
                "UPDATE held_mail SET status = 'releasing' WHERE id = ?"
                " AND status IN ('held', 'releasing') RETURNING id",
                (held_id,),
            ).fetchone()
            return row is not None, []

        return await self.write(op)

    async def decide_held(self, held_id: int, status: str, owner: str) -> bool:
        """Released (once posted) or discarded (only while held); the mail itself is
        forgotten either way. False if another decision came first."""
        assert status in ("released", "discarded")
        was = "releasing" if status == "released" else "held"

        def op(db: Db) -> tuple[bool, list[StoreEvent]]:
            row = db.execute(
                "UPDATE held_mail SET status = ?, raw = NULL, decided_at = ?, decided_by = ?"
                " WHERE id = ? AND status = ? RETURNING thread_id",
                (status, utc_now(), owner, held_id, was),
            ).fetchone()
            if row is None:
                return False, []
            if status == "discarded":  # nobody is to read it any more
                db.execute("UPDATE held_mail SET body = '' WHERE id = ?", (held_id,))
            return True, [_changed(db, row[0])]

        return await self.write(op)

    async def hold_again(self, held_id: int) -> None:
        """A release whose post was refused: the reply waits for a decision again."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            row = db.execute(
                "UPDATE held_mail SET status = 'held' WHERE id = ? AND status = 'releasing'"
                " RETURNING thread_id",
                (held_id,),
            ).fetchone()
            return None, [_changed(db, row[0])] if row else []

        await self.write(op)

    async def held_count(self, site: str) -> int:
        """Replies of the site waiting for a decision."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT COUNT(*) FROM held_mail h JOIN threads t ON t.id = h.thread_id"
                " WHERE t.site_id = ? AND h.status IN ('held', 'releasing')",
                (site,),
            ).fetchone()
        )
        return int(row[0])

    async def discard_stale_held(self, days: int) -> int:
        """Discard replies held longer than `days`: nobody decided, the mail goes."""
        cutoff = later(-days * 24 * 3600.0)

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            cursor = db.execute(
                "UPDATE held_mail SET status = 'discarded', raw = NULL, body = '',"
                " decided_at = ? WHERE status = 'held' AND received_at < ?",
                (utc_now(), cutoff),
            )
            return cursor.rowcount, []

        return await self.write(op)

    # -- refused replies ---------------------------------------------------------------

    async def queue_refusal_notice(self, recipient: str, payload: dict[str, Any]) -> bool:
        """Tell the sender of a refused reply why, unless their mailbox (any spelling of
        it) was told of one in the last day, or wants no mail from us; True if queued."""
        address = recipient.lower()
        since = later(-NOTICES_WINDOW)

        def op(db: Db) -> tuple[bool, list[StoreEvent]]:
            if is_suppressed(db, address):
                return False, []
            now = utc_now()
            fresh = db.execute(
                "INSERT INTO refusal_notices (mailbox, notified_at) VALUES (?, ?)"
                " ON CONFLICT (mailbox) DO UPDATE SET notified_at = excluded.notified_at"
                " WHERE refusal_notices.notified_at < ? RETURNING mailbox",
                (mailbox_key(address), now, since),
            ).fetchone()
            if fresh is None:
                return False, []
            db.execute(
                "INSERT INTO outbox (kind, thread_id, recipient, not_before, payload,"
                " created_at, updated_at) VALUES (?, NULL, ?, ?, ?, ?, ?)",
                (DeliveryKind.NOTICE, address, now, json.dumps(payload), now, now),
            )
            return True, [DeliveryQueued("email")]

        return await self.write(op)

    async def prepare_notice(self, item: OutboxItem) -> NoticeJob | None:
        def op(db: Db) -> tuple[NoticeJob | None, list[StoreEvent]]:
            row = pending_row(db, item.id)
            if row is None:
                return None, []
            if is_suppressed(db, item.recipient):
                cancel(db, item.id, "address suppressed")
                return None, []
            claim(db, item.id)
            return NoticeJob(item, json.loads(row["payload"] or "{}")), []

        return await self.write(op)

    # -- reply tags --------------------------------------------------------------------

    async def expire_reply_tag(self, tag: str) -> None:
        """Record that a tag was refused for its conversation's silence. A new email
        about the conversation issues it again (outbox_rows.issued_reply_tag)."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "UPDATE reply_tags SET revoked_at = ? WHERE tag = ? AND revoked_at IS NULL",
                (utc_now(), tag.lower()),
            )
            return None, []

        await self.write(op)

    async def revive_reply_tag(self, tag: str) -> None:
        """A tag revoked for its conversation's silence, which has ended since."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute("UPDATE reply_tags SET revoked_at = NULL WHERE tag = ?", (tag.lower(),))
            return None, []

        await self.write(op)

    async def expire_reply_tags(self, days: int) -> int:
        """Revoke the tags of conversations without a message for `days` days; how many."""
        cutoff = later(-days * 24 * 3600.0)

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            cursor = db.execute(
                "UPDATE reply_tags SET revoked_at = ? WHERE revoked_at IS NULL AND thread_id IN"
                " (SELECT id FROM threads WHERE updated_at < ?)",
                (utc_now(), cutoff),
            )
            return cursor.rowcount, []

        return await self.write(op)


def _changed(db: Db, thread: str) -> HeldChanged:
    site = db.execute("SELECT site_id FROM threads WHERE id = ?", (thread,)).fetchone()
    return HeldChanged(site[0], thread)


def _held(row: Row) -> HeldReply:
    return HeldReply(
        id=int(row["id"]),
        site=row["site_id"],
        thread=row["thread_id"],
        external_id=row["external_id"],
        author=Author(row["author"]),
        sender=row["sender"],
        recipient=row["recipient"],
        subject=row["subject"],
        body=row["body"],
        reason=row["reason"],
        detail=row["detail"],
        authentication=json.loads(row["authentication"]),
        received_at=row["received_at"],
    )
