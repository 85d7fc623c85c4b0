"""Rate limits: token buckets in memory, keyed by visitor, IP or site.

In memory is enough for one relay process; the limits guard against floods,
not against a determined attacker with many addresses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from relay.errors import RateLimited

# Buckets untouched this long are full again and can be forgotten.
PRUNE_EVERY = 1024


class RateLimiter:
    """`limit` hits per `period` seconds per key, refilled continuously."""

    def __init__(
        self, limit: int, period: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.period = period
        self._rate = limit / period
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)
        self._hits = 0

    def hit(self, key: str) -> float:
        """Take one token; 0 if allowed, else seconds until one is available."""
        now = self._clock()
        tokens, updated = self._buckets.get(key, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - updated) * self._rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self._rate
        self._buckets[key] = (tokens - 1, now)
        self._hits += 1
        if self._hits % PRUNE_EVERY == 0:
            self._prune(now)
        return 0.0

    def refund(self, key: str) -> None:
        tokens, updated = self._buckets.get(key, (float(self.limit), self._clock()))
        self._buckets[key] = (min(float(self.limit), tokens + 1), updated)

    def _prune(self, now: float) -> None:
        self._buckets = {
            key: (tokens, updated)
            for key, (tokens, updated) in self._buckets.items()
            if now - updated < self.period
        }


Check = tuple[RateLimiter, str, str]  # (limiter, key, what is being counted)


def enforce(*checks: Check) -> list[Check]:
    """Hit every limiter; if any refuses, give the others their token back and raise.

    Returns the checks taken, so a request found to be a harmless retry can refund them.
    """
    taken: list[Check] = []
    for check in checks:
        limiter, key, what = check
        wait = limiter.hit(key)
        if wait:
            refund(taken)
            raise RateLimited(
                f"too many {what}: at most {limiter.limit} per {_period(limiter.period)}",
                retry_after=max(1, math.ceil(wait)),
            )
        taken.append(check)
    return taken


def refund(checks: list[Check]) -> None:
    for limiter, key, _ in checks:
        limiter.refund(key)


def _period(seconds: float) -> str:
    return {60: "minute", 3600: "hour"}.get(int(seconds), f"{seconds:g} seconds")
