"""The store: what both engines share. Routes never see SQL: they call a Store.

Every write is a plain function run inside one transaction on the store's single
writer connection. Writes that arrive while a commit is in flight are batched into
the next transaction (group commit: one fsync for many messages), each in its own
SAVEPOINT so one failing write does not undo the others. A caller's await returns
only after COMMIT, and the store publishes the events of a batch, in seq order,
before it wakes the callers: acknowledged means committed, and committed means
published.

The engines (sqlite.py, postgres.py) differ in how a function reaches a connection,
in search, and in how other processes hear of a commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from relay.errors import NotFound
from relay.models import (
    Author,
    Event,
    Message,
    MessageAdded,
    ReadMoved,
    Site,
    Started,
    StatusChanged,
    Thread,
    ThreadStatus,
    ThreadSummary,
    Typing,
    Via,
    utc_now,
)
from relay.store.continuity import ContinuityStore, still_signed_in
from relay.store.digest import DigestStore
from relay.store.inbox import InboxStore
from relay.store.mail import MailStore, queue_notifications
from relay.store.outbox_rows import MailQueued
from relay.store.privacy import PrivacyStore
from relay.store.rows import Db, message_from_row, new_id, site_from_row, thread_from_row

if TYPE_CHECKING:  # relay.conversations.away needs the clock and presence, not the other way round
    from relay.conversations.away import AwayReplies

log = logging.getLogger("porch.store")

T = TypeVar("T")
# A write: runs inside the open transaction, returns its result and the events to
# publish once the transaction has committed.
StoreEvent = Event | MailQueued
WriteOp = Callable[[Db], tuple[T, list[StoreEvent]]]
# Each op's outcome in a batch: (True, (result, events)) or (False, the exception).
Outcome = tuple[bool, Any]
# Called with a batch's events just before its COMMIT (PostgreSQL's NOTIFY).
BeforeCommit = Callable[[Db, list[StoreEvent]], None]

# Enough to amortise one fsync over a burst, small enough that one batch never
# holds the write lock for long.
MAX_BATCH = 256
# Shortest client_id that makes starting a conversation idempotent: 16 characters of
# a UUID are 64 random bits, beyond guessing.
MIN_START_CLIENT_ID = 16


class Store(MailStore, DigestStore, ContinuityStore, PrivacyStore, InboxStore):
    shared = False  # whether several relay processes use this database at once

    def __init__(self) -> None:
        self.on_commit: Callable[[Event], None] | None = None
        self.on_mail_queued: Callable[[], None] | None = None
        self.away: AwayReplies | None = None  # automatic replies outside business hours
        # (process, site, online): what another relay process said of its owners' presence
        self.on_presence: Callable[[str, str, bool], None] | None = None
        self._queue: list[tuple[WriteOp[Any], asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._writer_task: asyncio.Task[None] | None = None
        self._closing = False

    # -- what each engine provides -------------------------------------------------

    async def open(self) -> None:
        """Connect, apply migrations, start the writer."""
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError

    async def _run_batch(self, ops: list[WriteOp[Any]]) -> list[Outcome]:
        """Run ops in one transaction (see run_batch); raises if the COMMIT failed."""
        raise NotImplementedError

    async def _read(self, fn: Callable[[Db], T]) -> T:
        raise NotImplementedError

    async def _idle(self) -> None:
        """The writer has nothing queued (SQLite indexes for search then)."""

    async def _scrub(self) -> None:
        """After an erasure: make what was deleted unrecoverable from the database's
        files, as far as the engine allows (README: Erasure)."""

    async def catch_up_search(self) -> None:
        """Make every committed message searchable now."""

    async def share_typing(self, event: Typing) -> None:
        """Show a typing indicator on the sockets of other relay processes too."""

    async def share_presence(self, site: str, online: bool) -> None:
        """Tell other relay processes whether an owner of `site` is at the inbox here."""

    # -- lifecycle ---------------------------------------------------------------

    def _start_writer(self) -> None:
        self._writer_task = asyncio.create_task(self._write_loop(), name="porch-store-writer")

    async def close(self) -> None:
        """Finish every queued write, then disconnect."""
        self._closing = True
        self._wake.set()
        if self._writer_task is not None:
            await self._writer_task
        await self._disconnect()

    async def ping(self) -> None:
        await self._read(lambda db: db.execute("SELECT 1").fetchone())

    # -- the write path ----------------------------------------------------------

    async def _write(self, op: WriteOp[T]) -> T:
        if self._closing:
            raise RuntimeError("the store is closing")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((op, future))
        self._wake.set()
        return await future

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._between_batches()
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    outcomes = await self._run_batch([op for op, _ in batch])
                except Exception as error:  # the COMMIT itself failed: nothing was written
                    log.warning("write batch of %d failed: %s", len(batch), error)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for ok, value in outcomes:
                    if ok:
                        for event in value[1]:
                            self._publish(event)
                for (ok, value), (_, future) in zip(outcomes, batch, strict=True):
                    if future.done():  # the caller went away; the write stands
                        continue
                    if ok:
                        future.set_result(value[0])
                    else:
                        future.set_exception(value)
            await self._idle()
            if self._queue:  # writes came while it ran: they go first
                self._wake.set()
                continue
            if self._closing:
                return

    async def _between_batches(self) -> None:
        """Under sustained load, between two batches."""

    def _publish(self, event: StoreEvent) -> None:
        if isinstance(event, MailQueued):
            if self.on_mail_queued is not None:
                self.on_mail_queued()
            return
        if self.on_commit is not None:
            try:
                self.on_commit(event)
            except Exception:  # a broken listener must not fail a committed write
                log.exception("publishing %r failed", event)

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

        saved = await self._write(op)
        if self.away is not None:
            self.away.forget(saved.id)
        return saved

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

    async def start_thread(
        self,
        site_id: str,
        *,
        body: str,
        client_id: str | None,
        name: str | None,
        page: str | None,
        external_id: str | None = None,
        language: str | None = None,
    ) -> Started:
        """Visitor + thread + first message in one transaction.

        The same (site, client_id) again returns what the first request created.
        """

        # Replaying a start hands out the thread's token, so only a client_id nobody
        # can guess (the widget's are UUIDs) makes a start idempotent.
        replayable = client_id if client_id and len(client_id) >= MIN_START_CLIENT_ID else None

        def op(db: Db) -> tuple[Started, list[StoreEvent]]:
            if replayable is not None:
                row = db.execute(
                    "SELECT * FROM threads WHERE site_id = ? AND start_client_id = ?",
                    (site_id, replayable),
                ).fetchone()
                if row is not None:
                    thread = thread_from_row(row)
                    first = _message_by_client_id(db, thread.id, replayable)
                    assert first is not None
                    return Started(thread.visitor, thread, first, created=False), []
            if not db.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone():
                raise NotFound(f"no site {site_id!r}")
            now = utc_now()
            if external_id is not None:  # a signed-in user: their one thread, if they have it
                known = db.execute(
                    "SELECT id, token_epoch FROM visitors WHERE site_id = ? AND external_id = ?",
                    (site_id, external_id),
                ).fetchone()
                if known is not None:
                    return self._continue(db, known["id"], known["token_epoch"], body, client_id)
            visitor_id, thread_id = new_id("v"), new_id("t")
            db.execute(
                "INSERT INTO visitors (id, site_id, name, external_id, language, created_at,"
                " last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (visitor_id, site_id, name, external_id, language, now, now),
            )
            db.execute(
                "INSERT INTO threads (id, site_id, visitor_id, page, start_client_id,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (thread_id, site_id, visitor_id, page, replayable, now, now),
            )
            inserted = _insert_message(
                db, thread_id, Author.VISITOR, body, Via.WIDGET, client_id, now
            )
            assert inserted is not None
            message = inserted[0]
            new_thread = _thread_by_id(db, thread_id)
            assert new_thread is not None
            started = Started(visitor_id, new_thread, message, created=True)
            return started, [
                MessageAdded(site_id, message),
                *self._after_insert(db, inserted),
            ]

        return await self._write(op)

    async def add_message(
        self, thread_id: str, *, author: Author, body: str, via: Via, client_id: str | None
    ) -> tuple[Message, bool]:
        """Store a message; (message, created). A known client_id returns the stored one."""

        def op(db: Db) -> tuple[tuple[Message, bool], list[StoreEvent]]:
            inserted = _insert_message(db, thread_id, author, body, via, client_id, utc_now())
            if inserted is not None:
                message, site, _ = inserted
                return (message, True), [
                    MessageAdded(site, message),
                    *self._after_insert(db, inserted),
                ]
            existing = _message_by_client_id(db, thread_id, client_id) if client_id else None
            if existing is None:
                raise NotFound(f"no thread {thread_id!r}")
            return (existing, False), []

        return await self._write(op)

    def _continue(
        self, db: Db, visitor: str, epoch: int, body: str, client_id: str | None
    ) -> tuple[Started, list[StoreEvent]]:
        """A start by a user who already has a thread (another device): add to it."""
        thread_row = db.execute(
            "SELECT * FROM threads WHERE visitor_id = ?"
            " ORDER BY status = 'open' DESC, created_at DESC LIMIT 1",
            (visitor,),
        ).fetchone()
        thread = thread_from_row(thread_row)
        existing = _message_by_client_id(db, thread.id, client_id) if client_id else None
        if existing is not None:
            return Started(visitor, thread, existing, created=False, epoch=epoch), []
        inserted = _insert_message(
            db, thread.id, Author.VISITOR, body, Via.WIDGET, client_id, utc_now()
        )
        assert inserted is not None
        message, site, _ = inserted
        thread = _thread_by_id(db, thread.id) or thread
        events = [MessageAdded(site, message), *self._after_insert(db, inserted)]
        return Started(visitor, thread, message, created=True, epoch=epoch), events

    def _after_insert(self, db: Db, inserted: Inserted) -> list[StoreEvent]:
        """What a new message brings about, in its own transaction: a closed thread
        reopens when the visitor writes again, an automatic reply outside business
        hours, the email it calls for."""
        message, site, was_closed = inserted
        events: list[StoreEvent] = []
        if message.author is Author.VISITOR:
            if was_closed:
                db.execute("UPDATE threads SET status = 'open' WHERE id = ?", (message.thread,))
                events.append(StatusChanged(site, message.thread, ThreadStatus.OPEN))
            away = self.away.reply_for(db, message, site) if self.away is not None else None
            if away is not None:
                reply = _insert_message(
                    db,
                    message.thread,
                    Author.SYSTEM,
                    away.body,
                    Via.API,
                    away.client_id,
                    utc_now(),
                )
                if reply is not None:  # None: this closed period was answered already
                    events.append(MessageAdded(site, reply.message))
        if self.mail_policy is not None and queue_notifications(
            db, self.mail_policy, message, site
        ):
            events.append(MailQueued())
        return events

    async def mark_read(self, thread_id: str, reader: Author, seq: int) -> int:
        """Move a read cursor forward (never back, never past the last message)."""
        column = {Author.VISITOR: "visitor_read_seq", Author.OWNER: "owner_read_seq"}[reader]

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            thread = _thread_by_id(db, thread_id)
            if thread is None:
                raise NotFound(f"no thread {thread_id!r}")
            current = getattr(thread, column)
            target = max(current, min(seq, thread.last_seq))
            # Only forward, in the UPDATE itself: another relay may have moved it since.
            moved = db.execute(
                f"UPDATE threads SET {column} = ? WHERE id = ? AND {column} < ?",
                (target, thread_id, target),
            )
            if moved.rowcount == 0:  # already there, or further
                return int(
                    db.execute(
                        f"SELECT {column} FROM threads WHERE id = ?", (thread_id,)
                    ).fetchone()[0]
                ), []
            return target, [ReadMoved(thread.site, thread_id, reader, target)]

        return await self._write(op)

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

        await self._write(op)

    async def get_thread(self, thread_id: str) -> Thread | None:
        return await self._read(lambda db: _thread_by_id(db, thread_id))

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


# -- plain functions run inside the writer's transaction -------------------------


class BatchFailed(Exception):
    """An op of an optimistic batch failed: the batch was rolled back, run it isolated."""


def run_batch(
    db: Db,
    ops: list[WriteOp[Any]],
    before_commit: BeforeCommit | None = None,
    *,
    isolated: bool = True,
) -> list[Outcome]:
    """Run ops in one transaction. `isolated`: each op in a savepoint when there are
    several, so that one failing op undoes only itself. Not isolated (two statements
    fewer per op, which count where each is a round trip): the first failure rolls
    everything back and raises BatchFailed."""
    outcomes: list[Outcome] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        if len(ops) == 1:  # alone in its transaction: no savepoint needed to isolate it
            try:
                outcomes.append((True, ops[0](db)))
            except Exception as error:
                db.execute("ROLLBACK")
                return [(False, error)]
        elif not isolated:
            for op in ops:
                try:
                    outcomes.append((True, op(db)))
                except Exception as error:
                    db.execute("ROLLBACK")
                    raise BatchFailed() from error
        else:
            for op in ops:
                db.execute("SAVEPOINT op")
                try:
                    value = op(db)
                except Exception as error:
                    db.execute("ROLLBACK TO op")
                    db.execute("RELEASE op")
                    outcomes.append((False, error))
                else:
                    db.execute("RELEASE op")
                    outcomes.append((True, value))
        if before_commit is not None:
            events = [event for ok, value in outcomes if ok for event in value[1]]
            if events:
                before_commit(db, events)
        db.execute("COMMIT")
    except BaseException:
        if getattr(db, "in_transaction", False):
            db.execute("ROLLBACK")
        raise
    return outcomes


class Inserted(NamedTuple):
    message: Message
    site: str
    was_closed: bool  # the thread, when the message came (a visitor's reopens it)


def _insert_message(
    db: Db,
    thread_id: str,
    author: Author,
    body: str,
    via: Via,
    client_id: str | None,
    now: str,
) -> Inserted | None:
    """Insert into an existing thread, or None if there is no such thread or it already
    has this client_id. One statement: this is the hot path (the thread's last seq, read
    cursor and the visitor's last visit follow by trigger; the thread's status comes
    back with the seq, so an open thread costs no second statement)."""
    row = db.execute(
        "INSERT INTO messages (thread_id, site_id, author, body, via, client_id, created_at)"
        " SELECT id, site_id, ?, ?, ?, ?, ? FROM threads WHERE id = ?"
        " ON CONFLICT (thread_id, client_id) DO NOTHING"
        " RETURNING seq, site_id, (SELECT status FROM threads WHERE id = thread_id)",
        (author.value, body, via.value, client_id, now, thread_id),
    ).fetchone()
    if row is None:
        return None
    message = Message(row[0], thread_id, author, body, via, client_id, now)
    return Inserted(message, row[1], row[2] == ThreadStatus.CLOSED.value)


def _thread_by_id(db: Db, thread_id: str) -> Thread | None:
    row = db.execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchone()
    return thread_from_row(row) if row else None


def _message_by_client_id(db: Db, thread_id: str, client_id: str) -> Message | None:
    row = db.execute(
        "SELECT * FROM messages WHERE thread_id = ? AND client_id = ?", (thread_id, client_id)
    ).fetchone()
    return message_from_row(row) if row else None
