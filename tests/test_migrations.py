"""The two migration trees (relay/migrations and relay/migrations/postgres) make the same
schema, and `porch copy-db` refuses what it could not carry instead of dropping it."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import asyncpg
import pytest

from relay.store.copy import TABLES, CopyError, copy_sqlite_to_postgres
from relay.store.migrate import POSTGRES, SQLITE, apply_migrations, apply_pg_migrations, migrations
from tests.pg import SERVER, unavailable

# table -> column -> NOT NULL
Schema = dict[str, dict[str, bool]]

# Each engine's own machinery, not data: FTS5's tables and the index's progress on
# SQLite (PostgreSQL indexes by expression), PostgreSQL's commit-ordered seq counter.
ENGINE_ONLY = {
    "sqlite": {
        "messages_fts",
        "messages_fts_config",
        "messages_fts_data",
        "messages_fts_docsize",
        "messages_fts_idx",
        "search_indexed",
        "sqlite_sequence",
        "answers_fts",
        "answers_fts_config",
        "answers_fts_data",
        "answers_fts_docsize",
        "answers_fts_idx",
    },
    "postgres": {"message_seq", "blobs", "blob_parts"},  # PostgreSQL keeps the files' bytes
}
# Columns only one engine has: PostgreSQL's full-text vector of the answers (SQLite's
# is the answers_fts table).
ENGINE_ONLY_COLUMNS = {"postgres": {("answers", "search")}}
NOT_COPIED = {"schema_migrations"}  # each database keeps its own


def sqlite_schema(db: sqlite3.Connection) -> Schema:
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {
        table: {
            # A primary key column is NOT NULL in effect (SQLite's PRAGMA does not say so).
            row[1]: bool(row[3]) or bool(row[5])
            for row in db.execute(f"PRAGMA table_info({table})")
        }
        for table in tables
        if table not in ENGINE_ONLY["sqlite"]
    }


async def postgres_schema(conn: asyncpg.Connection) -> Schema:
    rows = await conn.fetch(
        "SELECT table_name, column_name, is_nullable FROM information_schema.columns"
        " WHERE table_schema = current_schema()"
    )
    schema: Schema = {}
    for table, column, nullable in rows:
        if (
            table not in ENGINE_ONLY["postgres"]
            and (table, column) not in ENGINE_ONLY_COLUMNS["postgres"]
        ):
            schema.setdefault(table, {})[column] = nullable == "NO"
    return schema


def differences(sqlite: Schema, postgres: Schema) -> list[str]:
    found = [f"table {t} only on SQLite" for t in sorted(set(sqlite) - set(postgres))]
    found += [f"table {t} only on PostgreSQL" for t in sorted(set(postgres) - set(sqlite))]
    for table in sorted(set(sqlite) & set(postgres)):
        left, right = sqlite[table], postgres[table]
        found += [f"{table}.{c} only on SQLite" for c in sorted(set(left) - set(right))]
        found += [f"{table}.{c} only on PostgreSQL" for c in sorted(set(right) - set(left))]
        found += [
            f"{table}.{c} is NOT NULL on {'SQLite' if left[c] else 'PostgreSQL'} only"
            for c in sorted(set(left) & set(right))
            if left[c] != right[c]
        ]
    return found


@pytest.fixture
def pg_schema() -> str:
    if reason := unavailable():
        pytest.skip(reason)
    return f"parity_{uuid.uuid4().hex[:10]}"


async def migrated_postgres(schema: str) -> Schema:
    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}; SET search_path TO {schema}")
        await apply_pg_migrations(conn)
        return await postgres_schema(conn)
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def test_both_trees_have_the_same_versions() -> None:
    assert [v for v, _, _ in migrations(SQLITE)] == [v for v, _, _ in migrations(POSTGRES)]
    assert [n for _, n, _ in migrations(SQLITE)] == [n for _, n, _ in migrations(POSTGRES)]


async def test_both_trees_make_the_same_tables_columns_and_not_nulls(pg_schema: str) -> None:
    db = sqlite3.connect(":memory:")
    apply_migrations(db)
    sqlite = sqlite_schema(db)
    postgres = await migrated_postgres(pg_schema)
    assert differences(sqlite, postgres) == []
    # copy-db names every table that holds data (a new table must be added there too).
    assert set(sqlite) - NOT_COPIED == set(TABLES)


def test_the_comparison_sees_a_column_added_to_one_tree_only() -> None:
    db = sqlite3.connect(":memory:")
    apply_migrations(db)
    sqlite = sqlite_schema(db)
    mirrored = {table: dict(columns) for table, columns in sqlite.items()}
    db.execute("ALTER TABLE outbox ADD COLUMN channel_hint TEXT")
    db.execute("CREATE TABLE stray (id INTEGER PRIMARY KEY)")
    assert differences(sqlite_schema(db), mirrored) == [
        "table stray only on SQLite",
        "outbox.channel_hint only on SQLite",
    ]
    mirrored["visitors"]["name"] = True
    assert "visitors.name is NOT NULL on PostgreSQL only" in differences(sqlite, mirrored)


# -- copy-db refuses what it cannot carry ---------------------------------------------


async def empty_target(schema: str) -> str:
    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    separator = "&" if "?" in SERVER else "?"
    return f"{SERVER}{separator}search_path={schema}"


async def drop(schema: str) -> None:
    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


def source_with(tmp_path: Path, *statements: str) -> Path:
    path = tmp_path / "porch.sqlite3"
    db = sqlite3.connect(path)
    apply_migrations(db)
    db.execute(
        "INSERT INTO sites (id, name, owner_emails, origins, settings, created_at)"
        " VALUES ('alpha', 'Alpha', '[]', '[]', '{}', '2026-01-01T00:00:00.000Z')"
    )
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()
    return path


async def rows_in(url: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(f"SELECT COUNT(*) FROM {table}"))
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("ALTER TABLE sites ADD COLUMN motto TEXT", "sites.motto"),
        ("CREATE TABLE coupons (code TEXT PRIMARY KEY)", "coupons"),
    ],
)
async def test_copy_db_refuses_a_column_or_table_it_cannot_carry(
    pg_schema: str, tmp_path: Path, statement: str, named: str
) -> None:
    source = source_with(tmp_path, statement)
    url = await empty_target(pg_schema)
    try:
        with pytest.raises(CopyError, match=named.replace(".", r"\.")):
            await copy_sqlite_to_postgres(source, url)
        assert await rows_in(url, "sites") == 0  # nothing was written
        # Without it, the same database copies.
        db = sqlite3.connect(source)
        if statement.startswith("ALTER"):
            db.execute("ALTER TABLE sites DROP COLUMN motto")
        else:
            db.execute("DROP TABLE coupons")
        db.commit()
        db.close()
        copied = await copy_sqlite_to_postgres(source, url)
        assert copied.rows["sites"] == 1
    finally:
        await drop(pg_schema)


async def test_copy_db_refuses_when_the_target_needs_a_value_the_source_lacks(
    pg_schema: str, tmp_path: Path
) -> None:
    source = source_with(tmp_path)
    url = await empty_target(pg_schema)
    try:
        conn = await asyncpg.connect(url)
        try:
            await apply_pg_migrations(conn)
            await conn.execute("ALTER TABLE sites ADD COLUMN plan TEXT NOT NULL")
        finally:
            await conn.close()
        with pytest.raises(CopyError, match=r"sites\.plan"):
            await copy_sqlite_to_postgres(source, url)
        assert await rows_in(url, "sites") == 0
    finally:
        await drop(pg_schema)


# -- upgrading a database of the release before channels (schema version 6) -------------

RELEASE = 6  # the last version before relay/migrations/0007_channels.sql
ROWS_AT_RELEASE = [
    "INSERT INTO sites (id, name, owner_emails, origins, settings, created_at) VALUES"
    " ('alpha', 'Alpha', '[\"o@alpha.example\"]', '[]', '{}', '2026-01-01T00:00:00.000Z')",
    "INSERT INTO visitors (id, site_id, name, email, created_at, last_seen_at) VALUES"
    " ('v_1', 'alpha', 'Ann', 'ann@x.example', '2026-01-01T00:00:00.000Z',"
    " '2026-01-01T00:00:00.000Z')",
    "INSERT INTO threads (id, site_id, visitor_id, created_at, updated_at) VALUES"
    " ('t_1', 'alpha', 'v_1', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
    "INSERT INTO messages (thread_id, site_id, author, body, via, client_id, created_at)"
    " VALUES ('t_1', 'alpha', 'visitor', 'hello', 'widget', 'c1', '2026-01-01T00:00:01.000Z')",
    "INSERT INTO messages (thread_id, site_id, author, body, via, client_id, created_at)"
    " VALUES ('t_1', 'alpha', 'owner', 'hi', 'email', 'mail.x', '2026-01-01T00:00:02.000Z')",
    "INSERT INTO reply_tags (tag, thread_id, recipient, created_at) VALUES"
    " ('abc123', 't_1', 'o@alpha.example', '2026-01-01T00:00:00.000Z')",
    "INSERT INTO outbox (kind, thread_id, recipient, not_before, status, created_at,"
    " updated_at) VALUES ('visitor_notify', 't_1', 'ann@x.example',"
    " '2026-01-01T00:05:00.000Z', 'pending', '2026-01-01T00:00:00.000Z',"
    " '2026-01-01T00:00:00.000Z')",
    "INSERT INTO outbox (kind, thread_id, recipient, not_before, status, upto_seq,"
    " created_at, updated_at) VALUES ('owner_notify', 't_1', 'o@alpha.example',"
    " '2026-01-01T00:00:00.000Z', 'sent', 1, '2026-01-01T00:00:00.000Z',"
    " '2026-01-01T00:00:00.000Z')",
    "INSERT INTO inbound (message_id, verdict, thread_id, received_at) VALUES"
    " ('<r1@mail.example>', 'posted', 't_1', '2026-01-01T00:00:02.000Z')",
]
KEPT = {
    "messages": "SELECT seq, thread_id, author, body, via, client_id FROM messages ORDER BY seq",
    "reply_tags": "SELECT tag, thread_id, recipient FROM reply_tags",
    "outbox": "SELECT id, kind, thread_id, recipient, status, upto_seq FROM outbox ORDER BY id",
    "threads": "SELECT id, last_seq, owner_read_seq FROM threads",
}


def test_a_sqlite_database_of_the_release_upgrades_with_everything_kept(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "old.sqlite3")
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
               " applied_at TEXT NOT NULL)")  # fmt: skip
    for version, name, sql in migrations(SQLITE):
        if version <= RELEASE:
            db.executescript(sql)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, 'then')", (version, name))
    for statement in ROWS_AT_RELEASE:
        db.execute(statement)
    db.commit()
    before = {table: db.execute(query).fetchall() for table, query in KEPT.items()}

    assert apply_migrations(db) == [n for v, n, _ in migrations(SQLITE) if v > RELEASE]
    assert {table: db.execute(query).fetchall() for table, query in KEPT.items()} == before
    assert db.execute("SELECT DISTINCT channel FROM outbox").fetchall() == [("email",)]
    assert db.execute(
        "SELECT channel, external_id, verdict, thread_id FROM inbound"
    ).fetchall() == [("email", "<r1@mail.example>", "posted", "t_1")]


async def test_a_postgresql_database_of_the_release_upgrades_with_everything_kept(
    pg_schema: str,
) -> None:
    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f"CREATE SCHEMA {pg_schema}; SET search_path TO {pg_schema}")
        await conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        for version, name, sql in migrations(POSTGRES):
            if version <= RELEASE:
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, 'then')", version, name
                )
        for statement in ROWS_AT_RELEASE:
            await conn.execute(statement)
        before = {t: [tuple(r) for r in await conn.fetch(q)] for t, q in KEPT.items()}
        applied = await apply_pg_migrations(conn)
        assert applied == [n for v, n, _ in migrations(POSTGRES) if v > RELEASE]
        after = {t: [tuple(r) for r in await conn.fetch(q)] for t, q in KEPT.items()}
        assert after == before and len(after["messages"]) == 2
        inbound = await conn.fetch("SELECT channel, external_id, verdict, thread_id FROM inbound")
        assert [tuple(r) for r in inbound] == [("email", "<r1@mail.example>", "posted", "t_1")]
        assert (
            await conn.fetchval("SELECT string_agg(DISTINCT channel, ',') FROM outbox") == "email"
        )
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {pg_schema} CASCADE")
        await conn.close()


async def test_copy_db_carries_a_database_sqlite_has_analyzed(
    pg_schema: str, tmp_path: Path
) -> None:
    """sqlite_stat1 (ANALYZE, PRAGMA optimize) is SQLite's own, not data to refuse."""
    source = source_with(tmp_path, "ANALYZE")
    url = await empty_target(pg_schema)
    try:
        assert (await copy_sqlite_to_postgres(source, url)).rows["sites"] == 1
    finally:
        await drop(pg_schema)
