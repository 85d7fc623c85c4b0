"""Fixtures of the reliability tests: the backend a relay keeps its data in, relays on
it, and the hypothesis profile of the fuzz tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.reliability.backends import Backend, launch_relay
from tests.support import RunningRelay

# Reproducible in CI: the same examples on every run (derandomize), none of them failed
# for taking long (deadline: each one is an HTTP round trip to a relay in a thread, whose
# timing is the machine's business), and no example database left in the work tree.
settings.register_profile("reliability", derandomize=True, deadline=None, database=None)
settings.load_profile("reliability")


@pytest.fixture
def backend(tmp_path: Path, database_url: str | None) -> Backend:
    """SQLite in tmp_path, or PostgreSQL where the test is parametrized by engine
    (tests/pg.py BOTH_ENGINES)."""
    return Backend(tmp_path, database_url)


@pytest.fixture
def relay_on(backend: Backend) -> Iterator[Callable[..., RunningRelay]]:
    """Start in-process relays on `backend` with setting overrides; stopped after the test."""
    started: list[RunningRelay] = []

    def start(**overrides: Any) -> RunningRelay:
        relay = launch_relay(backend, **overrides)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.stop()
