"""The store's side of the visitor's control over their data: export, erasure, and the
per-site retention purge. Mixed into Store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from relay.models import Author, ThreadDeleted
from relay.store.engine import Engine, StoreEvent
from relay.store.outbox_rows import UNCONFIRMED_WINDOW, later
from relay.store.rows import Db, message_from_row, site_from_row, thread_from_row


class PrivacyStore(Engine):
    async def find_visitors(self, email_or_id: str) -> list[str]:
        """Visitor ids with this id, or this email (any case), or this address in a
        messaging app (a phone number, a chat id), on any site."""
        rows = await self._read(
            lambda db: db.execute(
                "SELECT id FROM visitors WHERE id = ? OR lower(email) = lower(?)"
                " UNION SELECT visitor_id FROM chats WHERE address = ? ORDER BY 1",
                (email_or_id, email_or_id, email_or_id.lstrip("+").replace(" ", "")),
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def export_visitor(self, visitor_id: str) -> dict[str, Any] | None:
        """Everything stored about a visitor, as JSON-ready data."""

        def query(db: Db) -> dict[str, Any] | None:
            visitor = db.execute("SELECT * FROM visitors WHERE id = ?", (visitor_id,)).fetchone()
            if visitor is None:
                return None
            site = site_from_row(
                db.execute("SELECT * FROM sites WHERE id = ?", (visitor["site_id"],)).fetchone()
            )
            threads = []
            for row in db.execute(
                "SELECT * FROM threads WHERE visitor_id = ? ORDER BY created_at", (visitor_id,)
            ):
                thread = thread_from_row(row)
                messages = db.execute(
                    "SELECT * FROM messages WHERE thread_id = ? ORDER BY seq", (thread.id,)
                )
                threads.append(
                    {
                        **thread.to_json(),
                        "page": thread.page,
                        "messages": [message_from_row(m).to_json(Author.VISITOR) for m in messages],
                    }
                )
            return {
                "site": {"id": site.id, "name": site.name},
                "visitor": {
                    "id": visitor["id"],
                    "name": visitor["name"],
                    "email": visitor["email"],
                    "email_verified_at": visitor["email_verified_at"],
                    "created_at": visitor["created_at"],
                    "last_seen_at": visitor["last_seen_at"],
                },
                "threads": threads,
                "chats": [  # where they write from in messaging apps
                    {
                        "app": row["kind"],
                        "account": row["handle"],
                        "address": row["address"],
                        "name": row["name"],
                        "created_at": row["created_at"],
                        "last_written_at": row["last_inbound_at"],
                    }
                    for row in db.execute(
                        "SELECT a.kind, a.handle, c.address, c.name, c.created_at,"
                        " c.last_inbound_at FROM chats c JOIN app_channels a"
                        " ON a.id = c.channel_id WHERE c.visitor_id = ? ORDER BY c.created_at",
                        (visitor_id,),
                    )
                ],
                # Where they take notifications: never the endpoint or keys, which are
                # what lets anyone push to the device.
                "devices": [
                    {
                        "id": row["id"],
                        "created_at": row["created_at"],
                        "user_agent": row["user_agent"],
                    }
                    for row in db.execute(
                        "SELECT id, created_at, user_agent FROM push_subscriptions"
                        " WHERE visitor_id = ? ORDER BY created_at, id",
                        (visitor_id,),
                    )
                ],
            }

        return await self._read(query)

    async def delete_visitor(self, visitor_id: str) -> int:
        """Erase a visitor: their threads, messages, queued emails, reply addresses and
        push subscriptions go with them. Returns the number of threads erased."""

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            return _erase(db, [visitor_id])

        erased: int = await self.write(op)
        await self._scrub()
        return erased

    async def purge_idle(self, *, dry_run: bool = False) -> list[tuple[str, str, str]]:
        """Threads idle longer than their site's retention_days: (site, thread, last
        activity). Erased unless dry_run; a visitor left with no thread goes too."""

        def op(db: Db) -> tuple[list[tuple[str, str, str]], list[StoreEvent]]:
            idle: list[tuple[str, str, str, str]] = []
            for site_row in db.execute("SELECT * FROM sites"):
                days = site_from_row(site_row).settings.get("retention_days")
                if not isinstance(days, int) or days <= 0:
                    continue
                cutoff = (
                    (datetime.now(UTC) - timedelta(days=days))
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z")
                )
                idle += [
                    (r["site_id"], r["id"], r["updated_at"], r["visitor_id"])
                    for r in db.execute(
                        "SELECT * FROM threads WHERE site_id = ? AND updated_at < ?",
                        (site_row["id"], cutoff),
                    )
                ]
            found = [(site, thread, when) for site, thread, when, _ in idle]
            if not dry_run:  # caps of emails to unconfirmed addresses last a day
                db.execute(
                    "DELETE FROM unconfirmed_sends WHERE sent_at < ?", (later(-UNCONFIRMED_WINDOW),)
                )
            if dry_run or not idle:
                return found, []
            events: list[StoreEvent] = []
            for site, thread, _, _ in idle:
                db.execute("DELETE FROM threads WHERE id = ?", (thread,))
                db.execute("UPDATE inbound SET thread_id = NULL WHERE thread_id = ?", (thread,))
                events.append(ThreadDeleted(site, thread))
            orphans = [
                v
                for *_, v in idle
                if not db.execute("SELECT 1 FROM threads WHERE visitor_id = ?", (v,)).fetchone()
            ]
            _erase(db, orphans)
            return found, events

        purged: list[tuple[str, str, str]] = await self.write(op)
        if purged and not dry_run:
            await self._scrub()
        return purged


def _erase(db: Db, visitor_ids: list[str]) -> tuple[int, list[StoreEvent]]:
    erased = 0
    events: list[StoreEvent] = []
    for visitor_id in visitor_ids:
        if not db.execute("SELECT 1 FROM visitors WHERE id = ?", (visitor_id,)).fetchone():
            continue
        threads = db.execute(
            "SELECT id, site_id FROM threads WHERE visitor_id = ?", (visitor_id,)
        ).fetchall()
        for thread in threads:
            db.execute("UPDATE inbound SET thread_id = NULL WHERE thread_id = ?", (thread["id"],))
            events.append(ThreadDeleted(thread["site_id"], thread["id"]))
        # Foreign keys cascade: threads, messages, outbox rows, reply tags, the
        # devices they took pushes on (push_subscriptions).
        db.execute("DELETE FROM visitors WHERE id = ?", (visitor_id,))
        # What protects the addresses they gave stays: the caps on mail to unconfirmed
        # ones (a day), and suppressions (an unsubscribe is the address owner's wish,
        # and the visitor may not be that owner): erasing must not reset either.
        db.execute(
            "UPDATE unconfirmed_sends SET visitor_id = NULL WHERE visitor_id = ?", (visitor_id,)
        )
        erased += len(threads)
    return erased, events
