"""`porch copy-db`: move a SQLite installation to PostgreSQL, every row as it is.

Seqs, ids and times are copied, not renumbered: visitors' widgets resume from the seq
they saw, and reply addresses stay valid. The copy is one transaction on an empty
target (migrated first), checked table by table before it commits. Stop the relay
first: what it writes after the copy started would not be in it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from relay.store.migrate import apply_migrations, apply_pg_migrations

# Parents before children (foreign keys). Search indexes are rebuilt, not copied.
TABLES = (
    "sites",
    "site_origins",
    "visitors",
    "unconfirmed_sends",
    "threads",
    "messages",
    "outbox",
    "reply_tags",
    "inbound",
    "suppressed",
    "resume_uses",
    "owners",
    "owner_sessions",
    "login_uses",
)


class CopyError(Exception):
    """Why the copy was refused or failed; nothing was written."""


@dataclass(frozen=True)
class Copied:
    rows: dict[str, int]
    last_seq: int

    def summary(self, source: Path, target: str) -> str:
        counts = ", ".join(f"{count} {table}" for table, count in self.rows.items() if count)
        return f"Copied {source} to {target}: {counts or 'nothing'}; last seq {self.last_seq}."


async def copy_sqlite_to_postgres(source: Path, url: str) -> Copied:
    """Copy; the caller checked that `source` is a file (sqlite3 would make one)."""
    db = sqlite3.connect(source)
    try:
        apply_migrations(db)  # an older installation is brought up to date first
        conn = await asyncpg.connect(url, timeout=10)
    except (sqlite3.Error, OSError, asyncpg.PostgresError) as error:
        db.close()
        raise CopyError(str(error)) from None
    try:
        await apply_pg_migrations(conn)
        return await _copy(db, conn)
    finally:
        db.close()
        await conn.close()


async def _copy(db: sqlite3.Connection, conn: asyncpg.Connection) -> Copied:
    rows: dict[str, int] = {}
    async with conn.transaction():
        for table in ("sites", "messages", "owners"):
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
                raise CopyError(f"the PostgreSQL database is not empty (its {table} has rows)")
        # Threads come with their cursors: the trigger that keeps them would rewrite them.
        await conn.execute("ALTER TABLE messages DISABLE TRIGGER messages_bookkeeping")
        for table in TABLES:
            target = {
                row[0]
                for row in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = $1 AND table_schema = current_schema()",
                    table,
                )
            }
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            columns = [column for column in columns if column in target]
            records = db.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            if records:
                await conn.copy_records_to_table(table, records=records, columns=columns)
            copied = await conn.fetchval(f"SELECT COUNT(*) FROM {table}")
            if copied != len(records):
                raise CopyError(f"{table}: {len(records)} rows read, {copied} written")
            rows[table] = copied
        await conn.execute("ALTER TABLE messages ENABLE TRIGGER messages_bookkeeping")
        # New rows continue after the copied ones.
        last_seq = await conn.fetchval("SELECT COALESCE(MAX(seq), 0) FROM messages")
        await conn.execute("UPDATE message_seq SET seq = $1 WHERE id = 1", last_seq)
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('outbox', 'id'),"
            " (SELECT COALESCE(MAX(id), 0) + 1 FROM outbox), false)"
        )
    return Copied(rows, last_seq)
