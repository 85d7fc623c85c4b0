"""Delivery rows through their life, whichever channel sends them:

    pending -> sending (claimed by the channel's worker) -> sent | failed
    pending -> cancelled (nothing left to say, or nobody to say it to)

A delivery is written by the notification policy (relay.conversations.notify) in the
transaction of the message that calls for it; what it says is gathered when it is
claimed, so later messages join a pending one.
"""

from __future__ import annotations

from typing import Any

from relay.models import utc_now
from relay.store.engine import Engine, StoreEvent
from relay.store.outbox_rows import DeliveryKind, OutboxItem, later, release_unconfirmed
from relay.store.rows import Db, Row


class DeliveryStore(Engine):
    async def due_deliveries(self, channel: str, limit: int = 20) -> list[OutboxItem]:
        now = utc_now()
        rows = await self._read(
            lambda db: db.execute(
                "SELECT * FROM outbox WHERE channel = ? AND status = 'pending'"
                " AND not_before <= ? ORDER BY not_before, id LIMIT ?",
                (channel, now, limit),
            ).fetchall()
        )
        return [_item(row) for row in rows]

    async def next_delivery_at(self, channel: str) -> str | None:
        row = await self._read(
            lambda db: db.execute(
                "SELECT MIN(not_before) FROM outbox WHERE channel = ? AND status = 'pending'",
                (channel,),
            ).fetchone()
        )
        return row[0] if row else None

    async def delivery_sent(self, item: OutboxItem, upto_seq: int | None) -> None:
        """It left; `upto_seq`: the last message it told of (the next one starts after)."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, upto_seq = ?,"
                " updated_at = ? WHERE id = ?",
                (upto_seq, utc_now(), item.id),
            )
            return None, []

        await self.write(op)

    async def delivery_retry(self, item: OutboxItem, error: str, delay: float) -> None:
        """Back to pending for a later try; merged into a newer pending email if one
        was queued meanwhile (it will say everything this one would have)."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            now = utc_now()
            if _merge_into_newer(db, item, later(round(delay))):
                db.execute(
                    "UPDATE outbox SET status = 'cancelled', attempts = attempts + 1,"
                    " last_error = ?, updated_at = ? WHERE id = ?",
                    (f"merged into a newer one after: {error}"[:500], now, item.id),
                )
            else:
                db.execute(  # unless it was cancelled while on its way
                    "UPDATE outbox SET status = 'pending', attempts = attempts + 1,"
                    " last_error = ?, not_before = ?, updated_at = ? WHERE id = ?"
                    " AND status = 'sending'",
                    (error[:500], later(round(delay)), now, item.id),
                )
            return None, []

        await self.write(op)

    async def requeue_interrupted(self, channel: str, claimed_before: str) -> int:
        """Emails claimed before `claimed_before` by a process that died mid-send go back
        to pending (they may have left: at least once, with the same Message-ID)."""

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            rows = db.execute(
                "SELECT * FROM outbox WHERE channel = ? AND status = 'sending' AND updated_at <= ?",
                (channel, claimed_before),
            ).fetchall()
            for row in rows:
                item = _item(row)
                status = "cancelled" if _merge_into_newer(db, item, utc_now()) else "pending"
                db.execute(
                    "UPDATE outbox SET status = ?, updated_at = ? WHERE id = ?",
                    (status, utc_now(), item.id),
                )
            return len(rows), []

        return await self.write(op)

    async def delivery_failed(self, item: OutboxItem, error: str) -> None:
        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?,"
                " updated_at = ? WHERE id = ?",
                (error[:500], utc_now(), item.id),
            )
            release_unconfirmed(db, outbox_id=item.id)  # it never left: no day used up
            return None, []

        await self.write(op)

    async def delivery_status(self) -> dict[str, Any]:
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

        return await self._read(query)


def _item(row: Row) -> OutboxItem:
    return OutboxItem(
        row["id"], DeliveryKind(row["kind"]), row["thread_id"], row["recipient"], row["attempts"]
    )


def _merge_into_newer(db: Db, item: OutboxItem, not_before: str) -> bool:
    """If a newer email of the same kind to the same person is pending, it takes this
    one's place: it leaves no later than this one would have (a daily digest must not
    slip a day for one failed try) and, for a digest, covers its messages too; a chat's
    record of the pieces of a long reply the app already has goes with it."""
    merged = db.execute(
        "UPDATE outbox SET not_before = MIN(not_before, ?1), payload = CASE"
        "   WHEN kind = 'owner_digest' THEN json_object('from_seq',"
        "     MIN(CAST(payload ->> 'from_seq' AS INTEGER), COALESCE((SELECT"
        "       CAST(payload ->> 'from_seq' AS INTEGER) FROM outbox WHERE id = ?5), 0)))"
        "   ELSE COALESCE(payload, (SELECT payload FROM outbox WHERE id = ?5)) END"
        " WHERE kind = ?2 AND thread_id IS ?3 AND recipient = ?4 AND status = 'pending'"
        " AND id != ?5",
        (not_before, item.kind, item.thread, item.recipient, item.id),
    )
    return merged.rowcount > 0
