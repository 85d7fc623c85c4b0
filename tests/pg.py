"""PostgreSQL for tests: a schema of its own per test on the machine's server, and a
synchronous connection for assertions that takes the same SQL as sqlite3.

The server is PORCH_TEST_PG (default: 127.0.0.1:5432, database test, trust auth). A
test that needs it is skipped, saying why, where none answers.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import uuid
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlencode

import asyncpg
import pytest

from relay.store.pg_connection import Cursor, translate

T = TypeVar("T")
# Modules whose behaviour must hold on both engines: `pytestmark = BOTH_ENGINES`
# (their tests take relays from make_relay; tests/conftest.py's `engine` fixture).
BOTH_ENGINES = pytest.mark.parametrize("engine", ["sqlite", "postgres"], indirect=True)
SERVER = os.environ.get("PORCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


class Loop:
    """An event loop on a thread of its own, for sync code to run coroutines on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@functools.cache
def unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""

    async def probe() -> None:
        conn = await asyncpg.connect(SERVER, timeout=3)
        try:  # folding accents for search needs it; it lives in public for every schema
            await conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
        finally:
            await conn.close()

    try:
        asyncio.run(probe())
    except Exception as error:
        return f"no PostgreSQL at {SERVER} ({type(error).__name__}: {error})"
    return None


def skip_without_postgres() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)


@functools.cache
def _admin_loop() -> Loop:
    return Loop()


def _admin(statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(SERVER, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    _admin_loop().run(run())


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database URL whose tables live in a new schema, dropped after the test."""
    skip_without_postgres()
    schema = "porch_test_" + uuid.uuid4().hex[:12]
    _admin(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in SERVER else "?"
    yield SERVER + separator + urlencode({"search_path": f"{schema},public"})
    _admin(f"DROP SCHEMA {schema} CASCADE")


class PgTestConnection:
    """Like sqlite3.connect(...) with row_factory = Row, for a PostgreSQL URL."""

    def __init__(self, url: str) -> None:
        self._loop = Loop()
        self._conn: asyncpg.Connection = self._loop.run(asyncpg.connect(url, timeout=5))

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> Cursor:
        async def run() -> Cursor:
            statement = await self._conn.prepare(translate(sql))
            rows = await statement.fetch(*parameters)
            status = statement.get_statusmsg() or ""
            count = status.rsplit(" ", 1)[-1]
            return Cursor(rows, int(count) if count.isdigit() else -1)

        return self._loop.run(run())

    def commit(self) -> None:  # autocommit: every statement is its own transaction
        pass

    def close(self) -> None:
        if not self._conn.is_closed():
            self._loop.run(self._conn.close())
            self._loop.close()

    def __enter__(self) -> PgTestConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
