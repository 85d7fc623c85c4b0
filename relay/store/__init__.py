"""Where conversations are kept. Routes never see SQL: they call a Store."""

from __future__ import annotations

from relay.store.sqlite import SQLiteStore

Store = SQLiteStore

__all__ = ["SQLiteStore", "Store"]
