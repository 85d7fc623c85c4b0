"""`porch copy-db`: move a SQLite installation to PostgreSQL, every row as it is.

Seqs, ids and times are copied, not renumbered: visitors' widgets resume from the seq
they saw, and reply addresses stay valid. The copy is one transaction on an empty
target (migrated first), checked table by table before it commits. Stop the relay
first: what it writes after the copy started would not be in it.

The photos and files the rows name come along, from the installation's blobs/ into
PostgreSQL's blob tables (relay/store/blobs.py), each checked against its digest, in
the same transaction: a file missing or damaged refuses the whole copy, by digest.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from relay.attachments.blobs import DIGEST
from relay.store.backup import human_size
from relay.store.blobs import BlobMismatch, put_blob
from relay.store.migrate import apply_migrations, apply_pg_migrations

# Parents before children (foreign keys). Search indexes are rebuilt, not copied.
# A table of the source that is neither here nor in NOT_COPIED refuses the copy.
TABLES = (
    "sites",
    "answers",
    "answer_revisions",
    "site_origins",
    "visitors",
    "unconfirmed_sends",
    "threads",
    "app_channels",
    "chats",
    "link_codes",
    "messages",
    "attachments",
    "outbox",
    "reply_tags",
    "inbound",
    "held_mail",  # replies held until an owner decides: the mail itself included
    "refusal_notices",
    "suppressed",
    "resume_uses",
    "owners",
    "owner_sessions",
    "login_uses",
    "installation_secrets",  # the VAPID key: devices subscribed with it keep working
    "push_subscriptions",
)


# Each engine's own machinery, never copied: the schema's history, SQLite's search index
# (PostgreSQL indexes by expression) and its progress.
NOT_COPIED = frozenset({"schema_migrations", "search_indexed", "sqlite_sequence"})


class CopyError(Exception):
    """Why the copy was refused or failed; nothing was written."""


@dataclass(frozen=True)
class Copied:
    rows: dict[str, int]
    last_seq: int
    files: int = 0
    files_size: int = 0  # bytes

    def summary(self, source: Path, target: str) -> str:
        counts = ", ".join(f"{count} {table}" for table, count in self.rows.items() if count)
        return (
            f"Copied {source} to {target}: {counts or 'nothing'}; {self.files} files "
            f"({human_size(self.files_size)}); last seq {self.last_seq}."
        )


async def copy_sqlite_to_postgres(source: Path, url: str, blobs: Path | None = None) -> Copied:
    """Copy the database `source` and the blobs it names, from `blobs` (by default
    blobs/ beside it, as in a data dir); the caller checked that `source` is a file
    (sqlite3 would make one)."""
    db = sqlite3.connect(source)
    try:
        apply_migrations(db)  # an older installation is brought up to date first
        files = _blob_files(db, blobs if blobs is not None else source.parent / "blobs")
        conn = await asyncpg.connect(url, timeout=10)
    except (sqlite3.Error, OSError, asyncpg.PostgresError) as error:
        db.close()
        raise CopyError(str(error)) from None
    except CopyError:
        db.close()
        raise
    try:
        await apply_pg_migrations(conn)
        return await _copy(db, conn, files)
    finally:
        db.close()
        await conn.close()


def _blob_files(db: sqlite3.Connection, blobs: Path) -> dict[str, Path]:
    """The file of every blob the rows name, by digest; CopyError, before anything is
    written, naming those that are not there."""
    digests = [row[0] for row in db.execute("SELECT DISTINCT digest FROM attachments ORDER BY 1")]
    files = {digest: blobs / digest[:2] / digest for digest in digests}
    missing = [d for d, path in files.items() if not DIGEST.fullmatch(d) or not path.is_file()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CopyError(
            f"{len(missing)} file(s) the attachments name are not in {blobs}: "
            f"{', '.join(missing[:5])}{more}"
            " (--blobs DIR says where the installation's blobs are)"
        )
    return files


async def _copy(db: sqlite3.Connection, conn: asyncpg.Connection, files: dict[str, Path]) -> Copied:
    rows: dict[str, int] = {}
    async with conn.transaction():
        for table in ("sites", "messages", "owners"):
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
                raise CopyError(f"the PostgreSQL database is not empty (its {table} has rows)")
        plan = await _columns_to_copy(db, conn)
        # Threads come with their cursors: the trigger that keeps them would rewrite them.
        await conn.execute("ALTER TABLE messages DISABLE TRIGGER messages_bookkeeping")
        for table, columns in plan.items():
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
        for table, column in (("outbox", "id"), ("answers", "num"), ("held_mail", "id")):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                f" (SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}), false)"
            )
        size = 0
        for digest, path in files.items():
            try:
                size += await put_blob(conn, path, digest)
            except BlobMismatch:
                raise CopyError(f"{path} does not hold the bytes of blob {digest}") from None
            except OSError as error:
                raise CopyError(f"cannot read {path}: {error.strerror}") from None
    return Copied(rows, last_seq, len(files), size)


async def _columns_to_copy(
    db: sqlite3.Connection, conn: asyncpg.Connection
) -> dict[str, list[str]]:
    """Each table's columns, in TABLES order; CopyError, before anything is written, for
    a table or column of the source the target lacks (it would be lost) or a column the
    target requires that the source has no value for."""
    source_tables = {
        row[0]
        for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        # SQLite's own (sqlite_stat1 after ANALYZE) and the search index are not data.
        if not row[0].startswith(("messages_fts", "answers_fts", "sqlite_"))
    }
    unknown = sorted(source_tables - set(TABLES) - NOT_COPIED)
    if unknown:
        raise CopyError(f"copy-db cannot carry the table(s) {', '.join(unknown)}: nothing copied")
    plan: dict[str, list[str]] = {}
    for table in TABLES:
        target = {
            row[0]: (row[1] == "NO" and row[2] is None)
            for row in await conn.fetch(
                "SELECT column_name, is_nullable, column_default FROM information_schema.columns"
                " WHERE table_name = $1 AND table_schema = current_schema()",
                table,
            )
        }
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        missing = [column for column in columns if column not in target]
        if missing:
            raise CopyError(
                f"the PostgreSQL database has no column {table}.{missing[0]}: copy-db cannot"
                " carry it (nothing copied; is one of the two installations a different version?)"
            )
        required = [c for c, needed in target.items() if needed and c not in columns]
        if required:
            raise CopyError(
                f"the PostgreSQL database requires {table}.{required[0]}, which the SQLite"
                " database has no value for (nothing copied)"
            )
        plan[table] = columns
    return plan
