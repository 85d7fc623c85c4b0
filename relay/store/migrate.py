"""Numbered SQL files in relay/migrations (SQLite) and relay/migrations/postgres, the
same versions for both engines, applied once each, in order, at start-up and by
`porch migrate`."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from typing import Any

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


SQLITE = "relay.migrations"
POSTGRES = "relay.migrations.postgres"
SCHEMA_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


def migrations(package: str = SQLITE) -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration file, by version."""
    found = []
    for entry in resources.files(package).iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def apply_migrations(db: sqlite3.Connection) -> list[str]:
    """Apply what is missing, each file in its own transaction; returns the names applied."""
    db.execute(SCHEMA_TABLE)
    applied = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
    done = []
    for version, name, sql in migrations():
        if version in applied:
            continue
        # executescript would COMMIT on its own; run the statements inside our transaction.
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process (a second relay, the CLI) may have applied it meanwhile.
            if db.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone():
                db.execute("ROLLBACK")
                continue
            for statement in _statements(sql):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ'))",
                (version, name),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        done.append(name)
    return done


def _statements(sql: str) -> list[str]:
    """Split a migration into statements; a trigger's BEGIN … END holds several ';'."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    statements, pending = [], ""
    for part in "\n".join(lines).split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    return statements


async def apply_pg_migrations(conn: Any) -> list[str]:
    """PostgreSQL: what is missing, in one transaction (DDL is transactional there),
    under a lock so that relays starting together apply each file once."""
    done = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('porch schema_migrations'))")
        await conn.execute(SCHEMA_TABLE)
        applied = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations(POSTGRES):
            if version in applied:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES ($1, $2, strftime('%Y-%m-%dT%H:%M:%fZ'))",
                version,
                name,
            )
            done.append(name)
    return done
