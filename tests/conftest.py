"""Shared fixtures: a real relay (uvicorn on a free loopback port, SQLite file in tmp)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.mail.smtp_sink import SinkServer
from tests.support import (
    ALPHA,
    BETA,
    RunningRelay,
    free_port,
    relay_config,
    seed_sites,
    start_relay,
)


@pytest.fixture
def make_relay(tmp_path: Any) -> Iterator[Callable[..., RunningRelay]]:
    """Start relays with setting overrides; all are stopped after the test."""
    started: list[RunningRelay] = []

    def make(**overrides: Any) -> RunningRelay:
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
