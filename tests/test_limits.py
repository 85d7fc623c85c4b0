"""Token-bucket rate limits, on a fake clock."""

from __future__ import annotations

import pytest

from relay.errors import RateLimited
from relay.limits import RateLimiter, enforce


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limit_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(3, 60, clock=clock)
    assert [limiter.hit("k") for _ in range(3)] == [0, 0, 0]
    wait = limiter.hit("k")
    assert wait == pytest.approx(20)  # one token every 60/3 s
    clock.now += 20
    assert limiter.hit("k") == 0
    assert limiter.hit("other") == 0  # keys are independent


def test_enforce_refunds_earlier_limiters() -> None:
    clock = Clock()
    roomy, tight = RateLimiter(10, 60, clock=clock), RateLimiter(1, 60, clock=clock)
    enforce((roomy, "a", "things"), (tight, "a", "things"))
    with pytest.raises(RateLimited) as refused:
        enforce((roomy, "a", "things"), (tight, "a", "things"))
    assert refused.value.retry_after == 60
    assert "at most 1 per minute" in refused.value.message
    # roomy got its token back: 9 more fit, not 8.
    assert [roomy.hit("a") for _ in range(9)] == [0] * 9
    assert roomy.hit("a") > 0
