"""PostgreSQL's writer: NOTIFY sent in the COMMIT's round trip and a lookup read once per
transaction (relay/store/pg_connection.py), and a closing store runs every write already
queued (relay/store/postgres.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import asyncpg
import pytest

from relay.store import bridge
from relay.store.contacts import owner_devices
from relay.store.outbox_rows import is_suppressed, mailbox_key, notify_mode
from relay.store.pg_connection import PgConnection, literal, once_per_transaction
from relay.store.postgres import PostgresStore
from relay.store.rows import Db

# What a payload may hold that quoting must survive: quotes, backslashes, JSON escapes.
AWKWARD = "it's \"quoted\" \\ back\\\\slashes \\u00e9 \\n and é, $$ and E'x'"
CHANNEL = "porch:test writer"
OWNER = "owner@alpha.example"
NOW = "2026-12-07T10:00:00.000Z"
NOTIFY_LIMIT = 8000  # bytes PostgreSQL takes in one payload


async def _listen(url: str) -> tuple[asyncpg.Connection, asyncio.Queue[str]]:
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(url)
    await conn.add_listener(CHANNEL, lambda *args: heard.put_nowait(args[-1]))
    return conn, heard


def _transaction(db: PgConnection, payloads: list[str], end: str, value: int) -> None:
    db.execute("BEGIN")
    db.execute("INSERT INTO t (n) VALUES (?)", (value,))
    for payload in payloads:
        db.notify_at_commit(CHANNEL, payload)
    db.execute(end)


async def test_a_notification_sent_with_commit_arrives_intact_and_only_if_committed(
    pg_url: str,
) -> None:
    listener, heard = await _listen(pg_url)
    db = PgConnection(await asyncpg.connect(pg_url))
    try:
        await db.conn.execute("CREATE TABLE t (n INT)")
        await bridge.run(_transaction, db, ["rolled back"], "ROLLBACK", 1)
        await bridge.run(_transaction, db, [AWKWARD, "second"], "COMMIT", 2)
        # Delivered at COMMIT, in order; the rolled-back transaction's never.
        assert await asyncio.wait_for(heard.get(), 10) == AWKWARD
        assert await asyncio.wait_for(heard.get(), 10) == "second"
        assert await db.conn.fetch("SELECT n FROM t") == [(2,)]
        assert heard.empty()
    finally:
        await db.conn.close()
        await listener.close()


async def test_a_notification_that_fails_at_commit_leaves_nothing_committed(
    pg_url: str,
) -> None:
    listener, heard = await _listen(pg_url)
    db = PgConnection(await asyncpg.connect(pg_url))
    try:
        await db.conn.execute("CREATE TABLE t (n INT)")
        with pytest.raises(asyncpg.InvalidParameterValueError, match="payload string too long"):
            await bridge.run(_transaction, db, ["x" * NOTIFY_LIMIT], "COMMIT", 1)
        assert db.in_transaction  # the COMMIT never ran: the transaction is to roll back
        await bridge.run(lambda db: db.execute("ROLLBACK"), db)
        # The connection goes on, and nothing was left waiting for the next COMMIT.
        await bridge.run(_transaction, db, ["after"], "COMMIT", 2)
        assert await asyncio.wait_for(heard.get(), 10) == "after"
        assert await db.conn.fetch("SELECT n FROM t") == [(2,)]
    finally:
        await db.conn.close()
        await listener.close()


def test_literal_refuses_what_postgresql_text_cannot_hold() -> None:
    with pytest.raises(ValueError, match="NUL"):
        literal("a\0b")


async def test_closing_runs_every_write_already_queued(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    await store.write(lambda db: (db.execute("CREATE TABLE t (n INT)"), []))

    def insert(n: int) -> Any:
        def op(db: Db) -> tuple[int, list[Any]]:
            db.execute("INSERT INTO t (n) VALUES (?)", (n,))
            return n, []

        return op

    writes = [asyncio.ensure_future(store.write(insert(n))) for n in range(300)]
    await asyncio.sleep(0)  # every write queued, none yet answered
    await store.close()
    assert [write.result() for write in writes] == list(range(300))
    with pytest.raises(RuntimeError, match="closing"):
        await store.write(insert(300))
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM t") == 300
    finally:
        await conn.close()


def _lookups(db: Any, reads: list[int]) -> None:
    """A transaction's lookups of t, with what each statement in between lets them keep."""

    def numbers() -> list[int]:
        reads.append(1)
        return [row[0] for row in db.execute("SELECT n FROM t ORDER BY n")]

    def look() -> list[int]:
        return once_per_transaction(db, ("t",), frozenset({"t"}), numbers)

    db.execute("BEGIN")
    assert look() == [] and look() == []
    assert len(reads) == 1  # read once
    db.execute("INSERT INTO other (n) VALUES (1)")  # another table: kept
    db.execute("SELECT n FROM t")
    assert look() == [] and len(reads) == 1
    db.execute("INSERT INTO t (n) VALUES (1)")  # its own table, whatever the case
    assert look() == [1] and len(reads) == 2
    db.execute("update T set n = 2")
    assert look() == [2] and len(reads) == 3
    db.execute("SAVEPOINT op")  # a savepoint's bounds: a rollback to it undoes writes
    assert look() == [2] and len(reads) == 4
    db.execute("DELETE FROM t")
    assert look() == [] and len(reads) == 5
    db.execute("ROLLBACK TO op")
    assert look() == [2] and len(reads) == 6
    db.execute("CREATE TABLE x (n INT)")  # a statement not recognised: nothing kept
    assert look() == [2] and len(reads) == 7
    db.execute("COMMIT")
    db.execute("BEGIN")  # the next transaction reads afresh
    assert look() == [2] and len(reads) == 8
    db.execute("COMMIT")


async def test_a_lookup_is_read_once_per_transaction_until_its_table_is_written(
    pg_url: str,
) -> None:
    db = PgConnection(await asyncpg.connect(pg_url))
    try:
        await db.conn.execute("CREATE TABLE t (n INT); CREATE TABLE other (n INT)")
        reads: list[int] = []
        await bridge.run(_lookups, db, reads)
        assert len(reads) == 8
    finally:
        await db.conn.close()


def test_sqlite_reads_a_lookup_each_time(tmp_path: Any) -> None:
    db = sqlite3.connect(tmp_path / "t.db")
    db.execute("CREATE TABLE t (n INT)")
    reads: list[int] = []

    def look() -> int:
        return once_per_transaction(db, ("t",), frozenset({"t"}), lambda: reads.append(1) or 0)

    assert look() == look() == 0
    assert len(reads) == 2  # no round trip to save: nothing kept that could go stale


async def _devices_around(pg_url: str, change: str) -> tuple[list[str], list[str]]:
    """owner_devices(alpha) after `change` (a statement that adds or removes an owner's
    device) in a transaction that read them before it; and what the table then holds."""
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    db = PgConnection(await asyncpg.connect(pg_url))
    try:
        schema = await db.conn.fetchval("SELECT current_schema()")
        await db.conn.execute(
            "INSERT INTO sites (id, name, owner_emails, origins, settings, created_at)"
            " VALUES ('alpha', 'Alpha', $1, '[]', '{}', $2)",
            f'["{OWNER}"]',
            NOW,
        )
        await db.conn.execute(
            "INSERT INTO owner_sessions (id, email, created_at, last_seen_at)"
            " VALUES ('s_gone', $1, $2, $2)",
            OWNER,
            NOW,
        )
        await db.conn.execute(
            "INSERT INTO push_subscriptions (id, site_id, endpoint, p256dh, auth, owner_email,"
            " session_id, created_at) VALUES ('push_old', 'alpha', 'https://push.example/old',"
            " 'k', 'a', $1, 's_gone', $2)",
            OWNER,
            NOW,
        )
        new_row = (
            "push_new",
            "alpha",
            "https://push.example/new",
            "k",
            "a",
            OWNER,
            NOW,
        )
        insert = (
            "INSERT INTO {table} (id, site_id, endpoint, p256dh, auth, owner_email, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )

        def run(db: Db) -> tuple[list[str], list[str]]:
            db.execute("BEGIN")
            assert owner_devices(db, "alpha")  # read, and kept for the transaction
            if change == "schema-qualified":
                db.execute(insert.format(table=f"{schema}.push_subscriptions"), new_row)
            elif change == "executemany":
                db.executemany(insert.format(table="push_subscriptions"), [new_row])
            elif change == "cascade":  # the session's device goes with it (ON DELETE CASCADE)
                db.execute("DELETE FROM owner_sessions WHERE id = 's_gone'")
            after = [device.address for device in owner_devices(db, "alpha")]
            fresh = db.execute(
                "SELECT id FROM push_subscriptions WHERE owner_email = ? ORDER BY id", (OWNER,)
            ).fetchall()
            db.execute("ROLLBACK")
            return sorted(after), [row[0] for row in fresh]

        return await bridge.run(run, db)
    finally:
        await db.conn.close()


@pytest.mark.parametrize("change", ["schema-qualified", "executemany", "cascade"])
async def test_a_kept_lookup_is_forgotten_when_its_table_changes_however_written(
    pg_url: str, change: str
) -> None:
    kept, fresh = await _devices_around(pg_url, change)
    assert kept == fresh  # what the transaction now holds, not what it held


async def test_a_suppression_or_a_new_notify_mode_is_seen_by_the_next_op_of_its_batch(
    pg_url: str,
) -> None:
    """is_suppressed and notify_mode are kept for a write batch: an op that suppresses
    an address or changes an owner's mode drops them for the ops after it."""
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    db = PgConnection(await asyncpg.connect(pg_url))

    def batch(db: Db) -> list[Any]:
        db.execute("BEGIN")
        seen = [is_suppressed(db, OWNER), notify_mode(db, OWNER)]
        db.execute(
            "INSERT INTO suppressed (address, mailbox, reason, created_at) VALUES (?, ?, ?, ?)",
            (OWNER, mailbox_key(OWNER), "unsubscribed", NOW),
        )
        db.execute(
            "INSERT INTO owners (email, notify, created_at) VALUES (?, 'daily', ?)", (OWNER, NOW)
        )
        seen += [is_suppressed(db, OWNER.upper()), notify_mode(db, OWNER)]
        db.execute("ROLLBACK")
        return seen

    try:
        assert await bridge.run(batch, db) == [False, "message", True, "daily"]
    finally:
        await db.conn.close()
