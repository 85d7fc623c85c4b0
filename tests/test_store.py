"""The store: group commit, idempotency and what it creates, on both engines; SQLite's
own migrations and search index."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.conversations import Actor
from relay.errors import NotFound
from relay.models import Author, Event, MessageAdded, Via
from relay.store import Listeners, SQLiteStore, Store
from relay.store.inbox import hit_text
from relay.store.migrate import _statements, migrations
from relay.store.postgres import PostgresStore
from tests.pg import BOTH_ENGINES, connect, make_store
from tests.support import ALPHA, talk

LISTEN_TIMEOUT = 5.0  # seconds for a PostgreSQL store to start listening
EVENT_TIMEOUT = 10.0  # seconds for notifications of committed writes to come back
POLL_INTERVAL = 0.01  # seconds between looks at what was published


@pytest.fixture
def published() -> list[Event]:
    """What the store published, in order (its listener, given when it is built)."""
    return []


@pytest.fixture
async def store(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, published: list[Event]
) -> AsyncIterator[Store]:
    store = make_store(engine, tmp_path, request, Listeners(committed=published.append))
    await store.open()
    try:
        if isinstance(store, PostgresStore):  # its own commits come back by NOTIFY
            await asyncio.wait_for(store.listening.wait(), LISTEN_TIMEOUT)
        await store.add_site(ALPHA)
        yield store
    finally:
        await store.close()


def added_seqs(events: list[Event]) -> list[int]:
    return [e.message.seq for e in events if isinstance(e, MessageAdded)]


@BOTH_ENGINES
async def test_concurrent_writes_commit_in_seq_order_and_publish_each_once_in_order(
    store: Store, published: list[Event]
) -> None:
    started = await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    notified = isinstance(store, PostgresStore)  # published after the ack, by NOTIFY

    async def send(i: int) -> int:
        message, _ = await talk(store).post(
            started.thread.id, Actor(Author.VISITOR, Via.WIDGET), f"m{i}", f"c{i}"
        )
        if not notified:  # published before the caller hears back: a socket never lags an ack
            assert message.seq in added_seqs(published)
        return message.seq

    seqs = await asyncio.gather(*(send(i) for i in range(200)))
    assert len(set(seqs)) == 200
    try:
        async with asyncio.timeout(EVENT_TIMEOUT):
            while not set(seqs) <= set(added_seqs(published)):
                await asyncio.sleep(POLL_INTERVAL)
    except TimeoutError:
        missing = sorted(set(seqs) - set(added_seqs(published)))
        raise AssertionError(
            f"{len(missing)} acked messages not published within {EVENT_TIMEOUT} s,"
            f" the first seqs {missing[:5]}"
        ) from None
    published_seqs = added_seqs(published)
    assert published_seqs == sorted(set(published_seqs))  # in seq order, each once
    history = await store.thread_messages(started.thread.id, 0, 1000)
    assert [m.seq for m in history] == sorted(seqs + [started.message.seq])


@BOTH_ENGINES
async def test_failing_write_does_not_undo_its_batch(store: Store) -> None:
    started = await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    good = talk(store).post(started.thread.id, Actor(Author.OWNER, Via.INBOX), "ok", None)
    bad = talk(store).post("t_missing", Actor(Author.OWNER, Via.INBOX), "no", None)
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert isinstance(results[1], NotFound)
    assert [m.body for m in await store.thread_messages(started.thread.id, 0, 10)] == ["hi", "ok"]


@BOTH_ENGINES
async def test_unknown_site_creates_nothing(store: Store) -> None:
    with pytest.raises(NotFound):
        await talk(store).start("nope", body="hi", client_id=None, name=None, page=None)
    with connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM visitors").fetchone()[0] == 0


async def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    for _ in range(2):  # a second start applies nothing again
        store = SQLiteStore(tmp_path / "m.sqlite3")
        await store.open()
        await store.close()
    with sqlite3.connect(tmp_path / "m.sqlite3") as db:
        versions = [r[0] for r in db.execute("SELECT version FROM schema_migrations")]
    assert versions == [v for v, _, _ in migrations()]


async def test_close_finishes_queued_writes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.sqlite3")
    await store.open()
    await store.add_site(ALPHA)
    started = await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    pending = [
        asyncio.ensure_future(
            talk(store).post(started.thread.id, Actor(Author.VISITOR, Via.WIDGET), str(i), None)
        )
        for i in range(50)
    ]
    await asyncio.sleep(0)  # let them queue (no event exists for "queued")
    await store.close()
    assert all(p.done() and not p.exception() for p in pending)
    with sqlite3.connect(tmp_path / "c.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 51


async def test_the_inbox_migration_keeps_mail_and_indexes_old_messages(tmp_path: Path) -> None:
    """A database made before 0004 (with a queued email and messages) upgrades in place:
    the outbox rows survive its rebuild and search finds the old messages."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name, applied_at)")
    for version, name, sql in migrations():
        if version < 4:
            for statement in _statements(sql):
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, 'then')", (version, name))
    now = "2026-01-01T00:00:00.000Z"
    db.execute("INSERT INTO sites VALUES ('s', 'S', '[\"o@s.example\"]', '[]', '{}', ?)", (now,))
    db.execute(
        "INSERT INTO visitors (id, site_id, created_at, last_seen_at) VALUES ('v', 's', ?, ?)",
        (now, now),
    )
    db.execute(
        "INSERT INTO threads (id, site_id, visitor_id, created_at, updated_at)"
        " VALUES ('t', 's', 'v', ?, ?)",
        (now, now),
    )
    db.execute(
        "INSERT INTO messages (thread_id, site_id, author, body, via, created_at)"
        " VALUES ('t', 's', 'visitor', 'Deux éclairs au café', 'widget', ?)",
        (now,),
    )
    db.execute(
        "INSERT INTO outbox (kind, thread_id, recipient, not_before, created_at, updated_at)"
        " VALUES ('owner_notify', 't', 'o@s.example', ?, ?, ?)",
        (now, now, now),
    )
    db.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        found = (await store.inbox_threads(["s"], None, "eclair")).threads
        assert [summary.thread.id for summary in found] == ["t"]
        assert [item.recipient for item in await store.due_deliveries("email")] == ["o@s.example"]
    finally:
        await store.close()


async def test_search_index_catches_up_after_a_crash_and_survives_erasure(tmp_path: Path) -> None:
    """Messages are indexed in batches after they commit: a crash in between leaves them
    to the next start; erasing one never indexed leaves the index whole."""
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    await store.add_site(ALPHA)
    kept = await talk(store).start(
        "alpha", body="Une tarte aux pommes", client_id=None, name=None, page=None
    )
    gone = await talk(store).start(
        "alpha", body="Un éclair au café", client_id=None, name=None, page=None
    )
    await store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('delete-all')")
    db.execute("UPDATE search_indexed SET seq = 0")  # as if it died before indexing
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("DELETE FROM threads WHERE id = ?", (gone.thread.id,))  # erased meanwhile
    db.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        found = (await store.inbox_threads(["alpha"], None, "pomme")).threads
        assert [s.thread.id for s in found] == [kept.thread.id]
        assert (await store.inbox_threads(["alpha"], None, "eclair")).threads == []
        await talk(store).post(
            kept.thread.id, Actor(Author.VISITOR, Via.WIDGET), "et un éclair", None
        )
        await store.delete_visitor(kept.visitor)  # right after writing: maybe not indexed yet
    finally:
        await store.close()
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')"
    )  # raises if not
    assert (
        db.execute(
            "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'eclair'"
        ).fetchone()[0]
        == 0
    )
    db.close()


def test_a_search_hit_is_cut_around_its_first_term_and_marks_every_term() -> None:
    body = "one two three four five six seven eight Une crème brûlée, merci ! " + "more " * 10
    text = hit_text(body, ["creme", "BRUL".lower()])
    assert text.startswith("…") and "\x02crème\x03 \x02brûlée\x03" in text
    assert "one" not in text.split() and text.endswith("…")
    assert hit_text("no term here", ["creme"]) == "no term here"
