"""PostgreSQL for tests: a schema of its own per test on the machine's server, a
synchronous connection for assertions that takes the same SQL as sqlite3, and a
server of the test's own to crash and restart.

The server is PORCH_TEST_PG (default: 127.0.0.1:5432, database test, trust auth). A
test that needs it is skipped, saying why, where none answers.
"""

from __future__ import annotations

import asyncio
import functools
import glob
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import asyncpg
import pytest

from relay.store import Listeners, SQLiteStore, Store
from relay.store.pg_connection import Cursor, translate
from relay.store.postgres import LoopThread, PostgresStore

T = TypeVar("T")
# Modules whose behaviour must hold on both engines: `pytestmark = BOTH_ENGINES`
# (their tests take relays from make_relay; tests/conftest.py's `engine` fixture).
BOTH_ENGINES = pytest.mark.parametrize("engine", ["sqlite", "postgres"], indirect=True)
SERVER = os.environ.get("PORCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


class Loop(LoopThread):
    """The relay's loop thread, for sync test code to run coroutines on."""

    def call(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)


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

    _admin_loop().call(run())


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
        self._conn: asyncpg.Connection = self._loop.call(asyncpg.connect(url, timeout=5))

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> Cursor:
        async def run() -> Cursor:
            statement = await self._conn.prepare(translate(sql))
            rows = await statement.fetch(*parameters)
            status = statement.get_statusmsg() or ""
            count = status.rsplit(" ", 1)[-1]
            return Cursor(rows, int(count) if count.isdigit() else -1)

        return self._loop.call(run())

    def commit(self) -> None:  # autocommit: every statement is its own transaction
        pass

    def close(self) -> None:
        if not self._conn.is_closed():
            self._loop.call(self._conn.close())
            self._loop.stop()

    def __enter__(self) -> PgTestConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_store(
    engine: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    listeners: Listeners | None = None,
) -> Store:
    """A store of the test's engine, not yet opened: a SQLite file in tmp_path, or
    PostgreSQL in a schema of the test's own (skipped where there is none)."""
    if engine == "postgres":
        # pg_url probes the server with asyncio.run(), which cannot run inside the loop of
        # an async test or fixture: probe on a thread of its own first (the answer is cached).
        with ThreadPoolExecutor(1) as pool:
            pool.submit(unavailable).result()
        return PostgresStore(request.getfixturevalue("pg_url"), listeners)
    return SQLiteStore(tmp_path / "s.sqlite3", listeners=listeners)


class _SQLiteTestConnection(sqlite3.Connection):
    """sqlite3's `with` only commits; this one also closes, like PgTestConnection."""

    def __exit__(self, *exc: Any) -> Any:
        try:
            return super().__exit__(*exc)
        finally:
            self.close()


def open_database(url: str | None, path: Path) -> sqlite3.Connection | PgTestConnection:
    """A separate connection for assertions to PostgreSQL at `url`, else to the SQLite
    file at `path`: rows by name, every statement committed at once, and closed at the
    end of `with open_database(...) as db:`."""
    if url:
        return PgTestConnection(url)
    db = sqlite3.connect(path, isolation_level=None, factory=_SQLiteTestConnection)
    db.row_factory = sqlite3.Row
    return db


def connect(store: Store) -> sqlite3.Connection | PgTestConnection:
    """open_database() for a store of either engine."""
    if isinstance(store, PostgresStore):
        return open_database(store.url, Path())
    assert isinstance(store, SQLiteStore), f"expected a SQLite or PostgreSQL store, got {store!r}"
    return open_database(None, store.path)


# -- a PostgreSQL server of the test's own, to crash and restart -----------------------


class Postgres:
    """A throwaway PostgreSQL cluster on a free port."""

    def __init__(self, base: Path, port: int, bin_dir: Path, as_user: list[str]) -> None:
        self.base, self.port, self.bin_dir, self.as_user = base, port, bin_dir, as_user
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.base / "data"), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("-w", "-l", str(self.base / "log"), "-o", options, "start")

    def crash(self) -> None:
        self.ctl("-m", "immediate", "stop")  # no checkpoint: recovery replays the WAL


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A throwaway server (Debian's initdb and pg_ctl) on a free port."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("no initdb here (Debian's postgresql package) to run a private server")
    bin_dir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="porch-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser to start PostgreSQL as postgres")
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(base / "data"), "-A", "trust"]
        + ["-U", "postgres", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from tests.support import free_port

    server = Postgres(base, free_port(), bin_dir, as_user)
    server.start()
    yield server
    subprocess.run(
        [*as_user, str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "stop"],
        capture_output=True,
        timeout=60,
    )
    shutil.rmtree(base, ignore_errors=True)
