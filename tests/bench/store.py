"""Durable insert rate: the store's group commit versus what a naive app does.

Ours: SQLiteStore.add_message from WRITERS concurrent coroutines, so writes that
arrive during a commit share the next one. Baseline: plain sqlite3 with the store's
pragmas (WAL, synchronous=FULL) and schema, writing the same rows (the message, the
thread's last_seq, the visitor's last_seen_at), one transaction and commit per
message, from one thread. Both count a message only once its COMMIT has returned.

Each run gets a fresh database in a temp dir on the same file system; the best of
ROUNDS is kept, as the noise (other processes, the disk) only ever slows a run down.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from relay.conversations import Actor, Conversations
from relay.models import Author, Site, Via, utc_now
from relay.store import SQLiteStore, Store
from relay.store.migrate import apply_migrations
from relay.store.rows import new_id
from relay.store.sqlite import BUSY_TIMEOUT_MS
from tests.bench.harness import Row, at_least_ratio, log
from tests.bench.servers import ORIGIN, SITE

WRITERS = 64
THREADS = WRITERS  # one conversation per writer, as with real visitors
CONCURRENT_MESSAGES = 64 * 100
RAW_MESSAGES = 4000
SEQUENTIAL_MESSAGES = 1500
ROUNDS = 2


def body(i: int) -> str:
    return f"benchmark message number {i}, about the size of a short chat line"


async def seed(store: Store) -> list[str]:
    """The site and THREADS conversations in an open store; the threads' ids."""
    site = Site(id=SITE, name="Bench", owner_emails=("o@bench.example",), origins=(ORIGIN,))
    await store.add_site(site, replace=True)  # a PostgreSQL database may have it already
    threads = []
    for n in range(THREADS):
        started = await Conversations(store).start(
            SITE, body=body(-1), client_id=f"start-{n}", name=None, page=None
        )
        threads.append(started.thread.id)
    return threads


async def write(store: Store, threads: list[str], messages: int, writers: int) -> float:
    """Messages per second through store.add_message from `writers` coroutines."""

    conversations = Conversations(store)
    visitor = Actor(Author.VISITOR, Via.WIDGET)

    async def writer(w: int) -> None:
        for i in range(w, messages, writers):
            await conversations.post(threads[i % THREADS], visitor, body(i), f"m-{i}")

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for w in range(writers):
            group.create_task(writer(w))
    return messages / (time.perf_counter() - started)


async def store_rate(messages: int, writers: int) -> float:
    """Messages per second through SQLiteStore.add_message from `writers` coroutines."""
    with tempfile.TemporaryDirectory(prefix="porch-bench-") as tmp:
        store = SQLiteStore(Path(tmp) / "porch.sqlite3")
        await store.open()
        try:
            return await write(store, await seed(store), messages, writers)
        finally:
            await store.close()


def raw_rate(messages: int) -> float:
    """Messages per second with sqlite3 and one commit per message (blocking: run in a thread)."""
    with tempfile.TemporaryDirectory(prefix="porch-bench-") as tmp:
        db = sqlite3.connect(Path(tmp) / "raw.sqlite3", isolation_level=None)
        try:
            # The store's pragmas, in the store's order (relay/store/sqlite.py _connect).
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            apply_migrations(db)
            threads = raw_setup(db)
            started = time.perf_counter()
            for i in range(messages):
                thread, visitor = threads[i % THREADS]
                now = utc_now()
                db.execute("BEGIN IMMEDIATE")
                seq = db.execute(
                    "INSERT INTO messages (thread_id, site_id, author, body, via, client_id,"
                    " created_at) VALUES (?, ?, 'visitor', ?, 'widget', ?, ?)",
                    (thread, SITE, body(i), f"m-{i}", now),
                ).lastrowid
                db.execute(
                    "UPDATE threads SET last_seq = ?, updated_at = ?, visitor_read_seq = ?"
                    " WHERE id = ?",
                    (seq, now, seq, thread),
                )
                db.execute("UPDATE visitors SET last_seen_at = ? WHERE id = ?", (now, visitor))
                db.execute("COMMIT")
            return messages / (time.perf_counter() - started)
        finally:
            db.close()


def raw_setup(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """The site and THREADS (thread, visitor) pairs, as the store would have them."""
    now = utc_now()
    db.execute(
        "INSERT INTO sites (id, name, owner_emails, origins, created_at)"
        " VALUES (?, 'Bench', '[]', '[]', ?)",
        (SITE, now),
    )
    pairs = [(new_id("t"), new_id("v")) for _ in range(THREADS)]
    db.execute("BEGIN")
    for thread, visitor in pairs:
        db.execute(
            "INSERT INTO visitors (id, site_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
            (visitor, SITE, now, now),
        )
        db.execute(
            "INSERT INTO threads (id, site_id, visitor_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (thread, SITE, visitor, now, now),
        )
    db.execute("COMMIT")
    return pairs


async def best(name: str, run: Callable[[], Awaitable[float]]) -> float:
    rates = [await run() for _ in range(ROUNDS)]
    log(f"  {name}: " + ", ".join(f"{rate:,.0f}" for rate in rates) + " msg/s")
    return max(rates)


async def run() -> list[Row]:
    log(f"store: {WRITERS} writers x {CONCURRENT_MESSAGES // WRITERS} messages; best of {ROUNDS}")
    baseline = await best("raw sqlite3", lambda: asyncio.to_thread(raw_rate, RAW_MESSAGES))
    ours = await best(f"store, {WRITERS} writers", lambda: store_rate(CONCURRENT_MESSAGES, WRITERS))
    sequential = await best("store, 1 writer", lambda: store_rate(SEQUENTIAL_MESSAGES, 1))
    return [
        Row("durable inserts (msg/s)", ours, "msg/s", baseline, at_least_ratio(0.5, "sqlite3")),
        Row("  same, 1 sequential writer", sequential, "msg/s", baseline),
    ]
