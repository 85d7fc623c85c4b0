"""The PostgreSQL store (asyncpg), for several relay processes on one database.

The same statements and migrations as SQLite (see pg_connection.py). One writer
connection per process keeps group commit; reads share a few connections. Writers of
different processes serialise only where messages get their seq (migration 0001).

Live fan-out across processes: each write batch NOTIFYs the ids of what it changed,
delivered by PostgreSQL at COMMIT, in commit order. Every process, the writer's own
included, publishes from that one ordered stream and reads the messages themselves
from the store, from the last seq it published: a lost notification, or a listener
connection down for a while, costs latency, never a message.

A database that cannot be reached (restarting, network) makes calls fail with
StoreUnavailable (503 store_unavailable, retry); the next call reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from relay.errors import StoreUnavailable
from relay.models import (
    Author,
    Event,
    HeldChanged,
    MessageAdded,
    ReadMoved,
    SignedOut,
    StatusChanged,
    ThreadDeleted,
    ThreadStatus,
    Typing,
)
from relay.store import bridge
from relay.store.base import Store
from relay.store.engine import (
    BatchFailed,
    Listeners,
    Outcome,
    StoreEvent,
    WriteOp,
    run_batch,
)
from relay.store.migrate import apply_pg_migrations
from relay.store.outbox_rows import DeliveryQueued
from relay.store.pg_connection import PgConnection
from relay.store.planned import insert_planned
from relay.store.rows import Db, message_from_row

log = logging.getLogger("porch.store")
T = TypeVar("T")

# Notifications are per database, not per schema: the channel names the schema, so
# that installations side by side in one database (or tests) never hear each other.
CHANNEL = "porch:{schema}"
READERS = 4  # connections for reads; a read is short, and asyncpg pipelines nothing
CONNECT_TIMEOUT = 3.0  # seconds: a request waits no longer for a database that is down
# Seconds one statement may take: a server that stopped answering (a network cut with no
# reset) fails requests with 503 instead of holding them forever.
COMMAND_TIMEOUT = 15.0
EPHEMERAL = ("t", "p")  # typing and presence notes: never stored, from one process
PAYLOAD_BYTES = 7000  # NOTIFY payloads must stay under 8000 bytes
CATCH_UP_PAGE = 1000
LISTEN_RETRY_MAX = 5.0  # seconds between attempts to listen again
# What an erasure deletes from (relay/store/privacy.py). A deleted row stays in its page
# as a dead version until VACUUM, and autovacuum waits until a fifth of a table is dead:
# the relay vacuums these itself after an erasure. And a GIN index never drops a key,
# even once no row has it: the search index is rebuilt (README: Erasure).
ERASED_TABLES = "messages, threads, visitors, outbox, reply_tags"
SEARCH_INDEX = "messages_search"
ERASURE_LOCK_RETRY = 0.5  # seconds between tries for the lock another relay's clean-up holds
VACUUM_TIMEOUT = 120.0  # seconds; a store that closes waits this long for one to finish

# What says the database, not the statement, failed: the connection is gone, or the
# server is shutting down or starting (SQLSTATE classes 08 and 57).
UNREACHABLE = (OSError, asyncio.TimeoutError, asyncpg.InterfaceError)


async def _clean_after_erasure(conn: asyncpg.Connection) -> None:
    """VACUUM the erased-from tables, then rebuild the search index. One relay at a time
    (a lock of the database's: two concurrent rebuilds deadlock each other), waiting its
    turn rather than skipping it, since the other may have started before this erasure.
    A rebuild that failed (a timeout, a deadlock) leaves an invalid copy that every
    insert still updates: dropped first, without a lock that would stop the relays."""
    # A session lock: it goes with the connection, however this ends. Tried, not waited
    # for: a session blocked in pg_advisory_lock() holds a snapshot, and the holder's
    # REINDEX CONCURRENTLY waits for every snapshot to end: a deadlock.
    while not await conn.fetchval(  # noqa: ASYNC110 - another process's lock: no event
        "SELECT pg_try_advisory_lock(hashtext('porch erasure ' || current_schema()))"
    ):
        await asyncio.sleep(ERASURE_LOCK_RETRY)
    await conn.execute(f"VACUUM {ERASED_TABLES}", timeout=VACUUM_TIMEOUT)
    leftovers = await conn.fetch(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE NOT i.indisvalid AND c.relname LIKE $1"
        " AND c.relnamespace = current_schema()::regnamespace",
        f"{SEARCH_INDEX}_ccnew%",
    )
    for leftover in leftovers:
        await conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{leftover[0]}"')
    # CONCURRENTLY: searches and writes go on while it builds.
    await conn.execute(f"REINDEX INDEX CONCURRENTLY {SEARCH_INDEX}", timeout=VACUUM_TIMEOUT)


def shown_url(url: str) -> str:
    """A database URL fit to print: host and port, never the password."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or ""
    return parts._replace(netloc=host, query="").geturl()


def unreachable(error: BaseException) -> bool:
    if isinstance(error, UNREACHABLE):
        return True
    state = getattr(error, "sqlstate", None) or ""
    return isinstance(error, asyncpg.PostgresError) and state[:2] in ("08", "57")


class PostgresStore(Store):
    shared = True

    def __init__(self, url: str, listeners: Listeners | None = None) -> None:
        super().__init__(listeners)
        self.url = url
        self.process = uuid.uuid4().hex[:12]  # names this process in notifications
        self.channel = CHANNEL.format(schema="public")  # set by open()
        self._writer: PgConnection | None = None  # lives on the writer's own loop
        self._writer_loop: LoopThread | None = None
        self._readers: asyncio.Queue[PgConnection | None] = asyncio.Queue()
        self._listener_task: asyncio.Task[None] | None = None
        self._heard: asyncio.Queue[list[Any] | None] = asyncio.Queue()
        self._published_seq = 0  # every message up to here was published
        self.listening = asyncio.Event()  # set while notifications arrive
        self.listens = 0  # times listening started: each reconnection adds one
        self._vacuum: asyncio.Task[None] | None = None
        self._vacuum_again = False  # another erasure came while it ran

    def __str__(self) -> str:
        return shown_url(self.url)

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        self._writer_loop = LoopThread()
        try:
            self.channel, self._published_seq = await self._writer_loop.run(self._open_writer())
        except BaseException:  # e.g. a migration that failed: nothing left behind
            await self._writer_loop.run(_close(self._writer))
            self._writer_loop.stop()
            self._writer = self._writer_loop = None
            raise
        for _ in range(READERS):
            self._readers.put_nowait(None)  # connected on first use
        self._listener_task = asyncio.create_task(self._listen(), name="porch-pg-listener")
        self._start_writer()

    async def _open_writer(self) -> tuple[str, int]:
        """On the writer's loop: connect, migrate; the channel and the last seq."""
        self._writer = await self._connect()
        await apply_pg_migrations(self._writer.conn)
        schema = await self._writer.conn.fetchval("SELECT current_schema()")
        seq = await self._writer.conn.fetchval("SELECT seq FROM message_seq WHERE id = 1")
        return CHANNEL.format(schema=schema), int(seq)

    async def _connect(self) -> PgConnection:
        try:
            conn = await asyncpg.connect(
                self.url, timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT
            )
        except Exception as error:
            if unreachable(error) or isinstance(error, asyncpg.PostgresError):
                raise StoreUnavailable(f"cannot reach PostgreSQL at {self}: {error}") from None
            raise
        return PgConnection(conn)

    async def _disconnect(self) -> None:
        if self._vacuum is not None:  # an erasure is finished only once it is cleaned up
            try:
                await asyncio.wait_for(self._vacuum, VACUUM_TIMEOUT)
            except TimeoutError:
                log.warning("stopped waiting for the clean-up after an erasure")
        if self._listener_task is not None:
            self._listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener_task
        readers = []
        while not self._readers.empty():
            readers.append(self._readers.get_nowait())
        for db in readers:
            await _close(db)
        if self._writer_loop is not None:
            await self._writer_loop.run(_close(self._writer))
            self._writer_loop.stop()
        self._writer = self._writer_loop = None

    async def _scrub(self) -> None:
        """VACUUM what an erasure deleted from and rebuild the search index, in the
        background (neither blocks reads or writes), on a connection of their own; one
        at a time, erasures that come meanwhile sharing the next."""
        if self._vacuum is not None and not self._vacuum.done():
            self._vacuum_again = True
            return
        self._vacuum = asyncio.create_task(self._vacuum_erased(), name="porch-pg-vacuum")

    async def _vacuum_erased(self) -> None:
        while True:
            self._vacuum_again = False
            try:
                conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
                try:
                    await _clean_after_erasure(conn)
                finally:
                    await conn.close()
            except Exception as error:  # the erasure stands; the next one tries again
                log.warning("cleaning up after an erasure failed: %r", error)
            if not self._vacuum_again:
                return

    # -- running the shared statements -------------------------------------------

    async def _run_batch(self, ops: list[WriteOp[Any]]) -> list[Outcome]:
        assert self._writer_loop is not None
        return await self._writer_loop.run(self._write_batch(ops))

    async def _write_batch(self, ops: list[WriteOp[Any]]) -> list[Outcome]:
        """On the writer's loop. Every statement is a round trip: a batch first runs
        without a savepoint per op, and again isolated only if an op fails."""
        if self._writer is None or self._writer.closed:
            self._writer = await self._connect()
        try:
            try:
                outcomes = await bridge.run(
                    partial(run_batch, isolated=False, ahead=insert_planned),
                    self._writer,
                    ops,
                    self._notify,
                )
            except BatchFailed:
                outcomes = await bridge.run(run_batch, self._writer, ops, self._notify)
            # Another relay inserted the same row meanwhile (a retried start or send that
            # reached two relays): run those ops again, and they find it.
            again = [i for i, (ok, error) in enumerate(outcomes) if not ok and _conflict(error)]
            if again:
                retried = await bridge.run(
                    run_batch, self._writer, [ops[i] for i in again], self._notify
                )
                for i, outcome in zip(again, retried, strict=True):
                    outcomes[i] = outcome
            return outcomes
        except Exception as error:
            if not unreachable(error):
                raise
            await _discard(self._writer)
            raise StoreUnavailable() from error

    async def _read(self, fn: Callable[[Db], T]) -> T:
        db = await self._readers.get()
        try:
            if db is None or db.closed:
                db = None
                db = await self._connect()
            return await bridge.run(fn, db)
        except Exception as error:
            if not unreachable(error):
                raise
            await _discard(db)
            db = None
            raise StoreUnavailable() from error
        finally:
            self._readers.put_nowait(db)

    def _notify(self, db: Db, events: list[StoreEvent]) -> None:
        """Inside the batch's transaction, sent with its COMMIT: PostgreSQL delivers it
        if it commits."""
        assert isinstance(db, PgConnection)
        refs = [ref for ref in map(_ref, events) if ref is not None]
        chunk: list[Any] = []
        for ref in refs:
            chunk.append(ref)
            if len(json.dumps(chunk)) > PAYLOAD_BYTES:
                db.notify_at_commit(self.channel, json.dumps(chunk[:-1]))
                chunk = [ref]
        if chunk:
            db.notify_at_commit(self.channel, json.dumps(chunk))

    def _publish(self, event: StoreEvent) -> None:
        if isinstance(event, DeliveryQueued):  # the events themselves come back by NOTIFY
            super()._publish(event)

    # -- hearing every process's commits -------------------------------------------

    async def _listen(self) -> None:
        """Listen, publish in order; when the connection drops, listen again and catch
        up from the store."""
        consumer = asyncio.create_task(self._consume(), name="porch-pg-publisher")
        delay = 0.1
        try:
            while True:
                conn = None
                lost = asyncio.Event()
                try:
                    conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
                    conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                    await conn.add_listener(self.channel, self._on_notification)
                    delay = 0.1
                    self.listens += 1
                    self.listening.set()
                    self._heard.put_nowait(None)  # catch up with what came while deaf
                    await lost.wait()
                    log.warning("lost the listening connection to PostgreSQL")
                except Exception as error:
                    log.warning("cannot listen for changes (%s); retrying", error)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, LISTEN_RETRY_MAX)
                finally:
                    self.listening.clear()
                    if conn is not None and not conn.is_closed():
                        with contextlib.suppress(Exception):
                            await conn.close(timeout=1)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            refs = json.loads(payload)
        except ValueError:
            log.warning("ignoring a notification that is not JSON: %.80r", payload)
            return
        self._heard.put_nowait(refs)

    async def _consume(self) -> None:
        while True:
            refs = await self._heard.get()
            try:
                if refs is None:
                    await self._catch_up(None)
                    continue
                for ref in refs:
                    if ref[0] == "m":
                        await self._catch_up(int(ref[1]))
                    elif ref[0] in EPHEMERAL:
                        self._heard_note(ref)
                    else:
                        self._deliver(_event(ref))
            except StoreUnavailable:  # the next notification or reconnect catches up
                log.warning("cannot read new messages now; will catch up")
            except Exception:
                log.exception("publishing notification %r failed", refs)

    # -- what is said, not stored: typing, an owner at the inbox ---------------------

    async def share_typing(self, event: Typing) -> None:
        await self._announce(["t", self.process, event.site, event.thread, event.author.value])

    async def share_presence(self, site: str, online: bool) -> None:
        await self._announce(["p", self.process, site, online])

    async def _announce(self, ref: list[Any]) -> None:
        try:
            await self._read(partial(_notify, channel=self.channel, payload=json.dumps([ref])))
        except StoreUnavailable:  # nothing to keep: the next one will do
            log.debug("could not share %r", ref)

    def _heard_note(self, ref: list[Any]) -> None:
        kind, process, site, *rest = ref
        if process == self.process:  # this process's sockets had it at once
            return
        if kind == "t":
            self._deliver(Typing(site, rest[0], Author(rest[1])))
        else:
            self.listeners.presence(process, site, bool(rest[0]))

    async def _catch_up(self, upto: int | None) -> None:
        """Publish every message after the last one published, up to `upto` (all)."""
        while upto is None or self._published_seq < upto:
            rows = await self._read(partial(_messages_after, after=self._published_seq))
            for row in rows:
                if row["seq"] > self._published_seq:
                    self._published_seq = row["seq"]
                    self._deliver(MessageAdded(row["site_id"], message_from_row(row)))
            if len(rows) < CATCH_UP_PAGE:
                if upto is not None:  # erased meanwhile, or never committed: move on
                    self._published_seq = max(self._published_seq, upto)
                return

    def _deliver(self, event: Event) -> None:
        super()._publish(event)


def _conflict(error: BaseException) -> bool:
    return isinstance(error, asyncpg.UniqueViolationError)


def _ref(event: StoreEvent) -> list[Any] | None:
    """An event as ids, for a notification."""
    if isinstance(event, MessageAdded):
        return ["m", event.message.seq]
    if isinstance(event, ReadMoved):
        return ["r", event.site, event.thread, event.author.value, event.seq]
    if isinstance(event, StatusChanged):
        return ["s", event.site, event.thread, event.status.value]
    if isinstance(event, SignedOut):
        return ["o", event.site, event.thread, event.epoch]
    if isinstance(event, ThreadDeleted):
        return ["d", event.site, event.thread]
    if isinstance(event, HeldChanged):
        return ["h", event.site, event.thread]
    return None  # DeliveryQueued: for this process's own outbox worker


def _event(ref: list[Any]) -> Event:
    kind, site, thread, *rest = ref
    if kind == "r":
        return ReadMoved(site, thread, Author(rest[0]), int(rest[1]))
    if kind == "s":
        return StatusChanged(site, thread, ThreadStatus(rest[0]))
    if kind == "o":
        return SignedOut(site, thread, int(rest[0]))
    if kind == "d":
        return ThreadDeleted(site, thread)
    if kind == "h":
        return HeldChanged(site, thread)
    raise ValueError(f"unknown notification {ref!r}")


def _notify(db: Db, channel: str, payload: str) -> None:
    db.execute("SELECT pg_notify(?, ?)", (channel, payload))


def _messages_after(db: Db, after: int) -> list[Any]:
    return db.execute(
        "SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", (after, CATCH_UP_PAGE)
    ).fetchall()


class LoopThread:
    """An event loop on a thread of its own. The writer connection lives on one: a
    batch's round trips then do not wait, each, behind every socket the main loop
    serves (p99 at 1,000 msg/s: hundreds of ms on the main loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="porch-pg-writer", daemon=True
        )
        self._thread.start()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


async def _close(db: PgConnection | None) -> None:
    if db is not None and not db.closed:
        with contextlib.suppress(Exception):
            await db.conn.close(timeout=2)


async def _discard(db: PgConnection | None) -> None:
    if db is not None:
        with contextlib.suppress(Exception):
            db.conn.terminate()
