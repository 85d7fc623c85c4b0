"""The SQLite store: one write connection with group commit, one read connection.

aiosqlite runs each connection's work on its own thread; a write batch or a read is
one plain function handed to that thread whole. Search is FTS5, indexed in batches
right after commits rather than by a trigger per insert.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from relay.models import MessageAdded
from relay.store.base import Store
from relay.store.engine import Listeners, Outcome, WriteOp, log, run_batch
from relay.store.inbox import fold
from relay.store.migrate import apply_migrations
from relay.store.rows import Db

T = TypeVar("T")

# How long another process (the CLI) may hold the write lock before we give up.
BUSY_TIMEOUT_MS = 5000
# Messages added to the search index in one go: a batch costs a fifth as much per
# message as a trigger per insert, and one of this size holds the lock ~5 ms.
INDEX_BATCH = 1000
# From this version FTS5 can delete an entry's words from the index itself (its
# secure-delete option); before, a delete only adds a marker, and the words stay in the
# index's segments until they are merged: erasing then merges the whole index.
FTS5_SECURE_DELETE = (3, 44, 0)


class SQLiteStore(Store):
    def __init__(
        self, path: Path, *, synchronous: str = "FULL", listeners: Listeners | None = None
    ) -> None:
        super().__init__(listeners)
        self.path = path
        self.synchronous = synchronous.upper()
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._unindexed = 0  # messages committed since the search index last caught up

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        await _in_thread(self._writer, apply_migrations)
        if sqlite3.sqlite_version_info >= FTS5_SECURE_DELETE:
            await _in_thread(self._writer, secure_search_deletes)
        while await _in_thread(self._writer, index_search):  # what a crash left unindexed
            pass
        self._reader = await self._connect()
        self._start_writer()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        await conn.execute("PRAGMA foreign_keys = ON")
        # What is deleted is overwritten with zeros, in its page and when a page is freed:
        # an erased conversation leaves no words in the file (see _scrub).
        await conn.execute("PRAGMA secure_delete = ON")
        await conn.create_function("fold", 1, fold, deterministic=True)
        return conn

    async def _disconnect(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def _run_batch(self, ops: list[WriteOp[Any]]) -> list[Outcome]:
        assert self._writer is not None
        outcomes = await _in_thread(self._writer, partial(run_batch, ops=ops))
        self._unindexed += sum(
            isinstance(event, MessageAdded) for ok, value in outcomes if ok for event in value[1]
        )
        return outcomes

    async def _scrub(self) -> None:
        assert self._writer is not None
        merge = sqlite3.sqlite_version_info < FTS5_SECURE_DELETE
        await _in_thread(self._writer, partial(scrub, merge_search_index=merge))

    async def _read(self, fn: Callable[[Db], T]) -> T:
        if self._reader is None:
            raise RuntimeError("the store is not open")
        return await _in_thread(self._reader, fn)

    # -- search ------------------------------------------------------------------

    async def _between_batches(self) -> None:
        if self._unindexed >= INDEX_BATCH:  # under sustained load, between batches
            await self._index_search()

    async def _idle(self) -> None:
        if self._unindexed:  # idle again: index what was just written, in one go
            await self._index_search()

    async def _index_search(self) -> None:
        assert self._writer is not None
        self._unindexed = 0
        try:
            await _in_thread(self._writer, index_search)
        except Exception:  # search lags; messages are safe. The next write tries again.
            log.exception("indexing messages for search failed")

    async def catch_up_search(self) -> None:
        """Index every committed message now (a search must find what was just said)."""
        await self.write(
            lambda db: (index_search(cast(sqlite3.Connection, db), in_transaction=True), [])
        )


async def _in_thread(conn: aiosqlite.Connection, fn: Callable[[Any], T]) -> T:
    # aiosqlite runs every call on the connection's own thread. Handing it one whole
    # function (its documented-internal `_execute`) makes a unit of work one thread
    # hop instead of one per statement: ~10x fewer hops on the hot path.
    return await conn._execute(lambda: fn(conn._conn))  # type: ignore[no-untyped-call,no-any-return]


def index_search(db: sqlite3.Connection, *, in_transaction: bool = False) -> int:
    """Add the next messages to the search index (up to INDEX_BATCH); how many."""
    if not in_transaction:
        db.execute("BEGIN IMMEDIATE")
    try:
        done = db.execute("SELECT seq FROM search_indexed").fetchone()[0]
        upto, count = db.execute(
            "SELECT MAX(seq), COUNT(*) FROM"
            " (SELECT seq FROM messages WHERE seq > ? ORDER BY seq LIMIT ?)",
            (done, INDEX_BATCH if not in_transaction else -1),
        ).fetchone()
        if count:
            db.execute(
                "INSERT INTO messages_fts (rowid, body)"
                " SELECT seq, body FROM messages WHERE seq > ? AND seq <= ?",
                (done, upto),
            )
            db.execute("UPDATE search_indexed SET seq = ?", (upto,))
        if not in_transaction:
            db.execute("COMMIT")
        return int(count)
    except BaseException:
        if not in_transaction and db.in_transaction:
            db.execute("ROLLBACK")
        raise


def secure_search_deletes(db: sqlite3.Connection) -> None:
    """FTS5 removes a deleted message's words from the index (SQLite 3.44+). Kept in the
    index's config: the index can no longer be written by an older SQLite."""
    db.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1)")


def scrub(db: sqlite3.Connection, *, merge_search_index: bool) -> None:
    """After an erasure: nothing of what was deleted stays in the database's files.
    secure_delete zeroed the rows in their pages; without FTS5's secure-delete the
    index still holds the words in older segments until they are merged (all of them:
    'optimize' rewrites the index, ~1 s for a million messages). Then the WAL, which
    still holds the pages as they were written, is copied back and emptied."""
    if merge_search_index:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:  # a reader of another process held it past busy_timeout: the next one will
        log.warning("erasure: the WAL could not be emptied now (a reader held it)")
