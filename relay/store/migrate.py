"""Numbered SQL files in relay/migrations, applied once each, in order, at start-up."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration file, by version."""
    found = []
    for entry in resources.files("relay.migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def apply_migrations(db: sqlite3.Connection) -> list[str]:
    """Apply what is missing, each file in its own transaction; returns the names applied."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
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
