"""The inbox's search and what its full-text index costs a write.

Search: SQLiteStore.inbox_threads(q=…) (FTS5 match, one snippet per thread, the
visitor name/email match, then the thread list with unread counts) over MESSAGES
messages in THREADS threads, against the bare FTS5 MATCH query on the same file:
how much the inbox adds to the index lookup itself. Median of ROUNDS runs.

Index cost: durable inserts (plain sqlite3, one commit per message, as in
tests/bench/store.py) followed by the store's batched indexing of them
(relay.store.sqlite.index_search), versus the same inserts with no index at all.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from relay.models import utc_now
from relay.store import SQLiteStore
from relay.store.migrate import apply_migrations
from relay.store.rows import new_id
from relay.store.sqlite import index_search
from tests.bench.harness import Row, at_least_ratio, at_most, log
from tests.bench.servers import SITE
from tests.bench.store import raw_setup

THREADS = 2000
MESSAGES = 40_000
ROUNDS = 15
INSERTS = 1500
WORDS = [
    "pain",
    "croissant",
    "baguette",
    "crème",
    "brûlée",
    "éclair",
    "tarte",
    "citron",
    "gâteau",
    "anniversaire",
    "commande",
    "livraison",
    "samedi",
    "dimanche",
    "matin",
    "sans",
    "gluten",
    "seigle",
    "levain",
    "chocolat",
    "amandes",
    "framboise",
]
QUERY = "creme brul"  # typed without accents, word prefixes


def sentence(i: int) -> str:
    picked = [WORDS[(i * 7 + k * 13) % len(WORDS)] for k in range(8)]
    return f"Bonjour, {' '.join(picked)} ? Merci ({i})"


def fill(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    apply_migrations(db)
    now = utc_now()
    db.execute(
        "INSERT INTO sites (id, name, owner_emails, origins, created_at)"
        " VALUES (?, 'Bench', '[\"o@bench.example\"]', '[]', ?)",
        (SITE, now),
    )
    db.execute("BEGIN")
    threads = []
    for n in range(THREADS):
        thread, visitor = new_id("t"), new_id("v")
        db.execute(
            "INSERT INTO visitors (id, site_id, name, created_at, last_seen_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (visitor, SITE, f"Visitor {n}", now, now),
        )
        db.execute(
            "INSERT INTO threads (id, site_id, visitor_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (thread, SITE, visitor, now, now),
        )
        threads.append(thread)
    for i in range(MESSAGES):
        seq = db.execute(
            "INSERT INTO messages (thread_id, site_id, author, body, via, created_at)"
            " VALUES (?, ?, 'visitor', ?, 'widget', ?)",
            (threads[i % THREADS], SITE, sentence(i), now),
        ).lastrowid
        db.execute("UPDATE threads SET last_seq = ? WHERE id = ?", (seq, threads[i % THREADS]))
    db.execute("COMMIT")
    while index_search(db):  # as the store does after commits
        pass
    db.close()


def bare_match(path: Path) -> float:
    """Median seconds of the FTS5 lookup alone (thread ids of the hits)."""
    db = sqlite3.connect(path)
    expression = '"creme"* "brul"*'
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        db.execute(
            "SELECT DISTINCT m.thread_id FROM messages_fts JOIN messages m"
            " ON m.seq = messages_fts.rowid WHERE messages_fts MATCH ?",
            (expression,),
        ).fetchall()
        times.append(time.perf_counter() - started)
    db.close()
    return statistics.median(times)


async def inbox_search(path: Path) -> tuple[float, int]:
    store = SQLiteStore(path)
    await store.open()
    try:
        times, found = [], 0
        for _ in range(ROUNDS):
            started = time.perf_counter()
            found = len((await store.inbox_threads([SITE], None, QUERY)).threads)
            times.append(time.perf_counter() - started)
        return statistics.median(times), found
    finally:
        await store.close()


def insert_rate(with_index: bool) -> float:
    """Messages per second: durable inserts, then (with_index) indexing them as the
    store does after commits, in batches."""
    with tempfile.TemporaryDirectory(prefix="porch-bench-") as tmp:
        db = sqlite3.connect(Path(tmp) / "raw.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        apply_migrations(db)
        pairs = raw_setup(db)
        started = time.perf_counter()
        for i in range(INSERTS):
            thread, _ = pairs[i % len(pairs)]
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO messages (thread_id, site_id, author, body, via, created_at)"
                " VALUES (?, ?, 'visitor', ?, 'widget', ?)",
                (thread, SITE, sentence(i), utc_now()),
            )
            db.execute("COMMIT")
        while with_index and index_search(db):
            pass
        rate = INSERTS / (time.perf_counter() - started)
        db.close()
        return rate


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="porch-bench-") as tmp:
        path = Path(tmp) / "search.sqlite3"
        log(f"search: filling {MESSAGES:,} messages in {THREADS:,} threads")
        await asyncio.to_thread(fill, path)
        bare = await asyncio.to_thread(bare_match, path)
        ours, found = await inbox_search(path)
        log(f"search: {found} threads found; inbox {ours * 1000:.1f} ms, bare {bare * 1000:.1f} ms")
    plain = max([await asyncio.to_thread(insert_rate, False) for _ in range(2)])
    indexed = max([await asyncio.to_thread(insert_rate, True) for _ in range(2)])
    return [
        Row(
            f"inbox search, {MESSAGES // 1000}k msgs (ms)",
            ours * 1000,
            "ms",
            baseline=bare * 1000,
            target=at_most(100, "ms"),
        ),
        Row(
            "durable insert + search indexing",
            indexed,
            "msg/s",
            baseline=plain,
            target=at_least_ratio(0.8, "no index"),
        ),
    ]
