"""The store's SQL, written for SQLite, run on PostgreSQL through asyncpg.

The statements are SQLite's, and mostly standard SQL. What differs is bridged in two
places: here (placeholders `?`/`?N` become `$N`, `x IS ?` becomes IS NOT DISTINCT
FROM, `BEGIN IMMEDIATE` becomes BEGIN) and in the PostgreSQL migrations, which define
the few SQLite functions the statements call (json_each, strftime, scalar max/min,
fold). What cannot be bridged (full-text search) asks `dialect(db)`.

A PgConnection is used from plain code running under bridge.run(), like a
sqlite3.Connection: execute() returns a cursor with the rows and the row count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from relay.store import bridge

if TYPE_CHECKING:  # annotations only: a SQLite installation never loads asyncpg
    import asyncpg

# Statements without parameters that asyncpg should not prepare.
CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
# Prepared statements kept per connection: the store's statements are a fixed set.
STATEMENT_CACHE = 512
# The table a write statement changes, as the store names them: a plain name (a
# qualified or quoted one is not recognised, and every kept lookup is then forgotten).
WRITES = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)(?=[\s(])", re.IGNORECASE)

T = TypeVar("T")


class Cursor:
    """What a statement returned: its rows, and how many rows it touched."""

    def __init__(self, rows: list[asyncpg.Record], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> asyncpg.Record | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[asyncpg.Record]:
        return self._rows

    def __iter__(self) -> Iterator[asyncpg.Record]:
        return iter(self._rows)


class PgConnection:
    dialect = "postgres"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._prepared: dict[str, asyncpg.prepared_stmt.PreparedStatement] = {}
        self._at_commit: list[str] = []  # statements sent with the next COMMIT
        # once_per_transaction's lookups: key -> (tables read, value)
        self._memo: dict[tuple[Any, ...], tuple[frozenset[str], Any]] = {}
        # Messages inserted ahead of their ops (planned.py): thread id -> (plan, row)
        self.ahead: dict[str, tuple[Any, Any]] = {}

    @property
    def closed(self) -> bool:
        return bool(self.conn.is_closed())

    @property
    def in_transaction(self) -> bool:
        return bool(self.conn.is_in_transaction())

    def execute(self, sql: str, parameters: Iterable[Any] = (), /) -> Cursor:
        query = translate(sql)
        if self._memo:
            self._forget_read_from(query)
        if CONTROL.match(query):
            ends = query.upper()
            if ends == "COMMIT" and self._at_commit:
                # One simple-protocol message, one round trip: a statement that fails
                # leaves the rest (the COMMIT) unrun and the transaction to roll back.
                query = "; ".join((*self._at_commit, query))
            if ends in ("BEGIN", "COMMIT", "ROLLBACK"):
                self._at_commit.clear()
                self.ahead.clear()
            bridge.wait(self.conn.execute(query))
            return Cursor([], 0)
        statement = self._prepared.get(query)
        if statement is None:
            if len(self._prepared) >= STATEMENT_CACHE:
                self._prepared.clear()
            statement = self._prepared[query] = bridge.wait(self.conn.prepare(query))
        rows = bridge.wait(statement.fetch(*parameters))
        return Cursor(rows, _count(statement.get_statusmsg()))

    def executemany(self, sql: str, parameters: Iterable[Iterable[Any]], /) -> Cursor:
        self._memo.clear()  # rare (copy-db, imports): no lookup is kept across it
        bridge.wait(self.conn.executemany(translate(sql), list(parameters)))
        return Cursor([], -1)

    def _forget_read_from(self, query: str) -> None:
        """Lookups the statement may change: all at a transaction's bounds (and a
        savepoint's), those of the table it writes, and all for a write not recognised."""
        if query.lstrip()[:6].upper() == "SELECT":
            return
        written = WRITES.match(query)
        if written is None:
            self._memo.clear()
            return
        table = written.group(1).lower()
        for key in [key for key, (tables, _) in self._memo.items() if table in tables]:
            del self._memo[key]

    def notify_at_commit(self, channel: str, payload: str) -> None:
        """NOTIFY in the open transaction, sent with its COMMIT: no round trip of its own."""
        self._at_commit.append(f"SELECT pg_notify({literal(channel)}, {literal(payload)})")


def once_per_transaction(
    db: Any, key: tuple[Any, ...], tables: frozenset[str], read: Callable[[], T]
) -> T:
    """read(), on PostgreSQL kept for the rest of the transaction unless a statement
    writes to one of `tables` (which read() reads): each message of a write batch asks
    for the same site's devices, and each ask would be a round trip of the batch's one
    writer. Another process's commit meanwhile is seen at the next transaction, as if
    this one had started a moment later. SQLite asks each time: it costs no round trip."""
    if not isinstance(db, PgConnection):
        return read()
    kept = db._memo.get(key)
    if kept is None:
        kept = db._memo[key] = (tables, read())
    return kept[1]


def dialect(db: Any) -> str:
    """ "postgres" for a PgConnection, "sqlite" for a sqlite3.Connection."""
    return str(getattr(db, "dialect", "sqlite"))


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """A statement in SQLite's dialect, as PostgreSQL takes it."""
    if sql.lstrip().upper().startswith("BEGIN"):
        return "BEGIN"
    out: list[str] = []
    highest = 0
    quote: str | None = None
    i = 0
    while i < len(sql):
        char = sql[i]
        if quote is not None:
            out.append(char)
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            digits = re.match(r"\d+", sql[i + 1 :])
            if digits:
                number = int(digits.group())
                i += len(digits.group())
            else:
                number = highest + 1  # SQLite: one more than the largest so far
            highest = max(highest, number)
            out.append(f"${number}")
        else:
            out.append(char)
        i += 1
    query = "".join(out)
    query = re.sub(r"\bIS NOT (\$\d+)", r"IS DISTINCT FROM \1", query)
    return re.sub(r"\bIS (\$\d+)", r"IS NOT DISTINCT FROM \1", query)


def literal(text: str) -> str:
    """`text` as a string constant. An escape string (E'...'), so the quoting does not
    depend on the server's standard_conforming_strings; NUL cannot be sent at all."""
    if "\0" in text:
        raise ValueError("PostgreSQL text cannot hold NUL")
    return "E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _count(status: str | None) -> int:
    """The row count in a command tag: "UPDATE 3", "INSERT 0 1", "SELECT 2"."""
    last = (status or "").rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1
