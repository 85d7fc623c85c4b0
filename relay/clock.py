"""The relay's sense of the time of day: business hours, next opening, digests.

Real time by default. PORCH_CLOCK_START sets where it starts (it runs on from there),
so tests and demos can be "on a Saturday night" without waiting or faking a syscall.
Stored timestamps always use the real time: only decisions about hours use this.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self._offset = start - datetime.now(UTC) if start is not None else timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def seconds_until(self, moment: datetime) -> float:
        """How long, in real seconds, until this clock shows `moment`."""
        return max(0.0, (moment - self.now()).total_seconds())


def parse_instant(text: str) -> datetime:
    """ISO-8601 with a zone ('Z' or an offset); ValueError otherwise."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z or an offset like +01:00")
    return moment.astimezone(UTC)
