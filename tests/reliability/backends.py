"""Where the relay under test keeps its data, and relays started on it.

Every reliability test starts its relay through `launch_relay` (in this process) or
`serve_process` (`porch serve` as a child, to kill -9) and reads what was stored through
a `Backend`, never through a path of its own: the same test runs on SQLite or, given a
database URL (tests/conftest.py's `database_url`), on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.models import Site
from tests.pg import open_database
from tests.support import (
    ALPHA,
    BETA,
    PorchProcess,
    RunningRelay,
    porch_env,
    relay_config,
    seed_sites,
    start_relay,
)

# Rate limits out of the way: these tests are about faults, not floods (1,000,000 per
# minute or hour, far above anything a test sends).
UNLIMITED = 1_000_000
NO_RATE_LIMITS = {
    "visitor_messages_per_minute": UNLIMITED,
    "ip_messages_per_minute": UNLIMITED,
    "threads_per_ip_per_hour": UNLIMITED,
}
# Tables a refused request must leave as they were (everything a visitor or an email
# can cause to be written).
WRITTEN_TABLES = (
    "sites",
    "visitors",
    "threads",
    "messages",
    "outbox",
    "reply_tags",
    "inbound",
    "suppressed",
    "resume_uses",
)


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    thread: str
    author: str
    body: str
    client_id: str | None


@dataclass(frozen=True)
class Backend:
    """The relay's database: a SQLite file in `directory`, or PostgreSQL at `url`. Read
    with a connection of our own (SQLite in WAL mode: readers never block the relay)."""

    directory: Path
    url: str | None = None

    def settings(self) -> dict[str, Any]:
        """Config overrides that point a relay here."""
        if self.url:
            return {"database_url": self.url}
        return {"database": self.directory / "porch.sqlite3"}

    def connect(self) -> Any:
        return open_database(self.url, self.directory / "porch.sqlite3")

    def rows(self, sql: str, parameters: Iterable[Any] = ()) -> list[Any]:
        """Rows by name and by position (sqlite3.Row, asyncpg.Record); `?` placeholders."""
        with self.connect() as db:
            return list(db.execute(sql, tuple(parameters)).fetchall())

    def counts(self) -> dict[str, int]:
        """Rows per table of WRITTEN_TABLES, in one statement."""
        union = " UNION ALL ".join(
            f"SELECT '{table}' AS name, COUNT(*) AS n FROM {table}" for table in WRITTEN_TABLES
        )
        return {row["name"]: row["n"] for row in self.rows(union)}

    def messages(self) -> list[StoredMessage]:
        return [
            StoredMessage(
                row["seq"], row["thread_id"], row["author"], row["body"], row["client_id"]
            )
            for row in self.rows(
                "SELECT seq, thread_id, author, body, client_id FROM messages ORDER BY seq"
            )
        ]

    def outbox(self) -> list[Any]:
        return self.rows("SELECT * FROM outbox ORDER BY id")


def launch_relay(
    backend: Backend, sites: Iterable[Site] = (ALPHA, BETA), **overrides: Any
) -> RunningRelay:
    """A relay in a thread of this process (uvicorn on a free port), its sites seeded,
    rate limits off unless `overrides` set them. The caller stops it."""
    settings = {**NO_RATE_LIMITS, **backend.settings(), **overrides}
    config = relay_config(backend.directory, **settings)
    seed_sites(config, sites)
    return start_relay(config)


def seed_for_process(backend: Backend, sites: Iterable[Site] = (ALPHA,)) -> None:
    """Sites for relays that `serve_process` starts on this backend."""
    seed_sites(relay_config(backend.directory, **backend.settings()), sites)


async def serve_process(backend: Backend, port: int) -> PorchProcess:
    """`porch serve` on `port` as a child process (to kill -9), rate limits off."""
    settings = {**NO_RATE_LIMITS, **backend.settings()}
    env = porch_env(backend.directory, **{name: str(value) for name, value in settings.items()})
    return await PorchProcess.start(env, port)
