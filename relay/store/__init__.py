"""Where conversations are kept. Routes never see SQL: they call a Store.

open_store(config) picks the engine: PostgreSQL when PORCH_DATABASE_URL is set,
else the SQLite file in the data directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.store.base import Store
from relay.store.engine import Listeners
from relay.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from relay.config import Config

__all__ = ["Listeners", "SQLiteStore", "Store", "open_store"]


def open_store(config: Config, listeners: Listeners | None = None) -> Store:
    """The configured store, not yet opened; `listeners` hear of what it commits."""
    if config.database_url:
        from relay.store.postgres import PostgresStore  # asyncpg only when it is used

        return PostgresStore(config.database_url, listeners)
    return SQLiteStore(
        config.database_path, synchronous=config.sqlite_synchronous, listeners=listeners
    )
