"""The store: every part of it over one engine. Routes never see SQL: they call a Store,
and the one path of a message (relay.conversations) runs its statements (messages.py)
inside the store's transactions.

The engines (sqlite.py, postgres.py) differ in how a function reaches a connection,
in search, and in how other processes hear of a commit (engine.py).
"""

from __future__ import annotations

import json

from relay.models import Message, Site, Thread, ThreadSummary, utc_now
from relay.store.answers import AnswerStore
from relay.store.attachments import AttachmentStore
from relay.store.chats import ChatStore
from relay.store.continuity import ContinuityStore, still_signed_in
from relay.store.deliveries import DeliveryStore
from relay.store.digest import DigestStore
from relay.store.engine import StoreEvent
from relay.store.held import HeldStore
from relay.store.inbound import InboundStore
from relay.store.inbox import InboxStore
from relay.store.mail import MailStore
from relay.store.messages import thread_by_id
from relay.store.privacy import PrivacyStore
from relay.store.push import PushStore
from relay.store.rows import Db, message_from_row, site_from_row, thread_from_row


class Store(
    MailStore,
    ChatStore,
    AttachmentStore,
    AnswerStore,
    DeliveryStore,
    DigestStore,
    ContinuityStore,
    PrivacyStore,
    PushStore,
    InboxStore,
    InboundStore,
    HeldStore,
):
    """Sites and the reads of conversations; the rest comes from one part per concern."""

    # -- sites -------------------------------------------------------------------

    async def add_site(self, site: Site, *, replace: bool = False) -> Site:
        """Register a site; with replace, update an existing one in place (its threads stay)."""

        def op(db: Db) -> tuple[Site, list[StoreEvent]]:
            existing = db.execute(
                "SELECT created_at FROM sites WHERE id = ?", (site.id,)
            ).fetchone()
            if existing and not replace:
                raise ValueError(f"a site with id {site.id!r} already exists")
            created_at = existing["created_at"] if existing else site.created_at or utc_now()
            saved = Site(**{**site.__dict__, "created_at": created_at})
            db.execute(
                "INSERT INTO sites (id, name, owner_emails, origins, settings, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
                " owner_emails = excluded.owner_emails, origins = excluded.origins,"
                " settings = excluded.settings",
                (
                    saved.id,
                    saved.name,
                    json.dumps(list(saved.owner_emails)),
                    json.dumps(list(saved.origins)),
                    json.dumps(saved.settings),
                    saved.created_at,
                ),
            )
            db.execute("DELETE FROM site_origins WHERE site_id = ?", (saved.id,))
            db.executemany(
                "INSERT INTO site_origins (origin, site_id) VALUES (?, ?)",
                [(origin, saved.id) for origin in saved.origins],
            )
            return saved, []

        return await self.write(op)

    async def get_site(self, site_id: str) -> Site | None:
        row = await self._read(
            lambda db: db.execute("SELECT * FROM sites WHERE id = ?", (site_id,)).fetchone()
        )
        return site_from_row(row) if row else None

    async def list_sites(self) -> list[Site]:
        rows = await self._read(lambda db: db.execute("SELECT * FROM sites ORDER BY id").fetchall())
        return [site_from_row(row) for row in rows]

    async def origin_allowed(self, origin: str) -> bool:
        """Whether any site lists this origin (enough to answer a CORS preflight)."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT 1 FROM site_origins WHERE origin = ? LIMIT 1", (origin,)
            ).fetchone()
        )
        return row is not None

    # -- conversations -----------------------------------------------------------

    # -- conversations (written by relay.conversations) ---------------------------

    async def set_contact(
        self, visitor_id: str, epoch: int, *, name: str | None, email: str
    ) -> None:
        """Name (kept if not given) and email a visitor left with a token of `epoch`; the
        email is unverified."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            still_signed_in(db, visitor_id, epoch)
            db.execute(
                "UPDATE visitors SET name = COALESCE(?, name), email = ?,"
                " email_verified_at = CASE WHEN email = ? THEN email_verified_at END"
                " WHERE id = ?",
                (name, email, email, visitor_id),
            )
            return None, []

        await self.write(op)

    async def get_thread(self, thread_id: str) -> Thread | None:
        return await self._read(lambda db: thread_by_id(db, thread_id))

    async def visitor_thread(self, visitor_id: str, epoch: int = 0) -> Thread | None:
        """The visitor's open thread, else their latest one; None if there is none, or
        if `epoch` (from their token) is not the visitor's current one (signed out)."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT t.* FROM threads t JOIN visitors v ON v.id = t.visitor_id"
                " WHERE t.visitor_id = ? AND v.token_epoch = ?"
                " ORDER BY t.status = 'open' DESC, t.created_at DESC LIMIT 1",
                (visitor_id, epoch),
            ).fetchone()
        )
        return thread_from_row(row) if row else None

    async def thread_messages(self, thread_id: str, since: int, limit: int) -> list[Message]:
        rows = await self._read(
            lambda db: db.execute(
                "SELECT * FROM messages WHERE thread_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (thread_id, since, limit),
            ).fetchall()
        )
        return [message_from_row(row) for row in rows]

    async def site_messages(self, sites: tuple[str, ...], since: int, limit: int) -> list[Message]:
        """Messages of these sites after `since` (an owner socket's replay)."""
        rows = await self._read(
            lambda db: db.execute(
                "SELECT * FROM messages WHERE site_id IN (SELECT value FROM json_each(?))"
                " AND seq > ? ORDER BY seq LIMIT ?",
                (json.dumps(list(sites)), since, limit),
            ).fetchall()
        )
        return [message_from_row(row) for row in rows]

    async def list_threads(self, site_id: str | None = None) -> list[ThreadSummary]:
        """Threads, most recent activity first, with what an inbox list needs."""

        def query(db: Db) -> list[ThreadSummary]:
            rows = db.execute(
                "SELECT t.*, v.name AS visitor_name, v.email AS visitor_email,"
                " (SELECT COUNT(*) FROM messages m WHERE m.thread_id = t.id"
                "   AND m.seq > t.owner_read_seq AND m.author != 'owner') AS unread"
                " FROM threads t JOIN visitors v ON v.id = t.visitor_id"
                " WHERE CAST(?1 AS TEXT) IS NULL OR t.site_id = ?1"
                " ORDER BY t.updated_at DESC, t.id",
                (site_id,),
            ).fetchall()
            summaries = []
            for row in rows:
                last = db.execute(
                    "SELECT * FROM messages WHERE seq = ?", (row["last_seq"],)
                ).fetchone()
                summaries.append(
                    ThreadSummary(
                        thread=thread_from_row(row),
                        visitor_name=row["visitor_name"],
                        visitor_email=row["visitor_email"],
                        last_message=message_from_row(last) if last else None,
                        unread=row["unread"],
                    )
                )
            return summaries

        return await self._read(query)
