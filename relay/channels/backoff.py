"""Waits between retries: "equal jitter" (half the ceiling, plus up to as much again),
so that senders that failed together do not all retry together."""

from __future__ import annotations

import random

# A generator of our own: the process-wide one belongs to whoever else seeds it (tests,
# libraries), and drawing from it would change their sequence.
_draws = random.Random()


def equal_jitter(ceiling: float) -> float:
    """Seconds in [ceiling / 2, ceiling]."""
    return _draws.uniform(ceiling / 2, ceiling)
