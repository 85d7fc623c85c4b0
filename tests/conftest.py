"""Shared fixtures: a real relay (uvicorn on a free loopback port, SQLite file in tmp)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from relay.store import Store
from tests.apps_support import app_relay, fakes  # noqa: F401 - fixtures
from tests.mail.smtp_sink import SinkServer
from tests.pg import make_store, pg_url, postgres  # noqa: F401 - fixtures
from tests.support import (
    ALPHA,
    BETA,
    RunningRelay,
    free_port,
    relay_config,
    seed_sites,
    start_relay,
)


@pytest.fixture(autouse=True)  # so that a whole module can be parametrized by engine
def engine(request: pytest.FixtureRequest) -> str:
    """The store relays of this test use: SQLite unless the test is parametrized."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(engine: str, request: pytest.FixtureRequest) -> str | None:
    """PostgreSQL (a schema of the test's own) for engine "postgres", else None."""
    return request.getfixturevalue("pg_url") if engine == "postgres" else None


@pytest.fixture
async def store(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Store]:
    """A store of the test's engine, opened, with the site alpha (no relay around it)."""
    store = make_store(engine, tmp_path, request)
    await store.open()
    await store.add_site(ALPHA)
    yield store
    await store.close()


@pytest.fixture
def make_relay(tmp_path: Any, database_url: str | None) -> Iterator[Callable[..., RunningRelay]]:
    """Start relays with setting overrides; all are stopped after the test."""
    started: list[RunningRelay] = []

    def make(**overrides: Any) -> RunningRelay:
        if database_url:
            overrides.setdefault("database_url", database_url)
        config = relay_config(tmp_path, **overrides)
        seed_sites(config, [ALPHA, BETA])
        relay = start_relay(config)
        started.append(relay)
        return relay

    yield make
    for relay in started:
        relay.stop()


@pytest.fixture
def relay(make_relay: Callable[..., RunningRelay]) -> RunningRelay:
    return make_relay()


@pytest.fixture
def sink() -> Iterator[SinkServer]:
    """A real SMTP server (aiosmtpd) on a free port, keeping what it receives."""
    server = SinkServer(free_port()).start()
    yield server
    server.stop()
