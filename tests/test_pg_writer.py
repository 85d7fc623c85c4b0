"""PostgreSQL's writer: NOTIFY sent in the COMMIT's round trip (relay/store/pg_connection.py),
and a closing store runs every write already queued (relay/store/postgres.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from relay.store import bridge
from relay.store.pg_connection import PgConnection, literal
from relay.store.postgres import PostgresStore
from relay.store.rows import Db

# What a payload may hold that quoting must survive: quotes, backslashes, JSON escapes.
AWKWARD = "it's \"quoted\" \\ back\\\\slashes \\u00e9 \\n and é, $$ and E'x'"
CHANNEL = "porch:test writer"
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
