"""The store's engine: one writer, reads, and who hears of what it commits.

Every write is a plain function run inside one transaction on the store's single
writer connection. Writes that arrive while a commit is in flight are batched into
the next transaction (group commit: one fsync for many messages), each in its own
SAVEPOINT so one failing write does not undo the others. A caller's await returns
only after COMMIT, and the store publishes the events of a batch, in seq order,
before it wakes the callers: acknowledged means committed, and committed means
published.

The engines (sqlite.py, postgres.py) differ in how a function reaches a connection,
in search, and in how other processes hear of a commit. Each part of the store
(mail.py, digest.py, ...) is a subclass of Engine adding the statements of one concern.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from relay.models import Event, Typing
from relay.store.outbox_rows import DeliveryQueued
from relay.store.rows import Db

log = logging.getLogger("porch.store")

T = TypeVar("T")
# A write: runs inside the open transaction, returns its result and the events to
# publish once the transaction has committed.
StoreEvent = Event | DeliveryQueued
WriteOp = Callable[[Db], tuple[T, list[StoreEvent]]]
# Each op's outcome in a batch: (True, (result, events)) or (False, the exception).
Outcome = tuple[bool, Any]
# Called with a batch's events just before its COMMIT (PostgreSQL's NOTIFY).
BeforeCommit = Callable[[Db, list[StoreEvent]], None]
# Called with a batch's ops before they run (PostgreSQL's planned inserts, planned.py):
# what it returns is called once they have, and raises if what it did went unused.
Ahead = Callable[[Db, list[WriteOp[Any]]], Callable[[], None]]

# Enough to amortise one fsync over a burst, small enough that one batch never
# holds the write lock for long.
MAX_BATCH = 256


def _nobody(*args: object) -> None:
    """A listener that hears nothing (a store used by the CLI or a test)."""


@dataclass(frozen=True)
class Listeners:
    """Who hears of what the store commits, given when the store is built."""

    # A committed event, in seq order: the live fan-out (relay.conversations.bus).
    committed: Callable[[Event], None] = _nobody
    # A delivery was queued on this channel: its worker wakes up.
    queued: Callable[[str], None] = _nobody
    # (process, site, online): what another relay process said of its owners' presence.
    presence: Callable[[str, str, bool], None] = _nobody


class Engine:
    shared = False  # whether several relay processes use this database at once

    def __init__(self, listeners: Listeners | None = None) -> None:
        self.listeners = listeners or Listeners()
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

    async def write(self, op: WriteOp[T]) -> T:
        """Run `op` in a transaction of the writer; its result once committed."""
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
        try:
            if isinstance(event, DeliveryQueued):
                self.listeners.queued(event.channel)
            else:
                self.listeners.committed(event)
        except Exception:  # a broken listener must not fail a committed write
            log.exception("publishing %r failed", event)


# -- plain functions run inside the writer's transaction -------------------------


class BatchFailed(Exception):
    """An op of an optimistic batch failed: the batch was rolled back, run it isolated."""


def run_batch(
    db: Db,
    ops: list[WriteOp[Any]],
    before_commit: BeforeCommit | None = None,
    *,
    isolated: bool = True,
    ahead: Ahead | None = None,
) -> list[Outcome]:
    """Run ops in one transaction. `isolated`: each op in a savepoint when there are
    several, so that one failing op undoes only itself. Not isolated (two statements
    fewer per op, which count where each is a round trip, and `ahead` first): the first
    failure rolls everything back and raises BatchFailed."""
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
            try:
                done = ahead(db, ops) if ahead is not None else None
                for op in ops:
                    outcomes.append((True, op(db)))
                if done is not None:
                    done()
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
