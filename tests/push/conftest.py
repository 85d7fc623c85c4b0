"""What the push tests share: a fake push service, and the origin allowed for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.push_service import FakePushService


@pytest.fixture
def push_service() -> Iterator[FakePushService]:
    with FakePushService() as service:
        yield service


@pytest.fixture
def allow(push_service: FakePushService) -> frozenset[str]:
    """PORCH_PUSH_ENDPOINT_ALLOW for the fake: plain http on loopback."""
    return frozenset({push_service.origin})
