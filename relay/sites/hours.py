"""The grammar of business hours: what the settings form, the CLI and the stored
settings say about a week, read and checked. relay/sites/availability.py says what it
means now (open? opening next when?).

    {"mon": [["09:00", "12:00"], ["14:00", "18:00"]], ..., "sun": []}

A range ends after it starts on the same day; "24:00" may end one. Overnight ranges
("22:00-02:00") are refused with a message saying how to write them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
DAY_NAMES = "mon, tue, wed, thu, fri, sat, sun"
ALWAYS_OPEN = ("always", "none")  # a weekly spec that removes business hours

Hours = dict[str, list[list[str]]]


class HoursError(ValueError):
    """Hours that cannot be read; the message says what was expected and what came."""


# -- parsing -----------------------------------------------------------------------


def parse_time(text: str, *, end: bool = False) -> str:
    """'9:00' -> '09:00'. '24:00' only as the end of a range."""
    match = TIME.match(text.strip())
    hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
    if (hour, minute) == (24, 0) and end:
        return "24:00"
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise HoursError(f"expected a time like 09:00 (00:00-23:59, or 24:00 to end), got {text!r}")
    return f"{hour:02d}:{minute:02d}"


def parse_ranges(text: str) -> list[list[str]]:
    """'09:00-12:00, 14:00-18:00' -> [['09:00', '12:00'], ['14:00', '18:00']].
    '' or 'closed' -> [] (closed all day)."""
    text = text.strip()
    if text.lower() in ("", "closed"):
        return []
    ranges = []
    for part in text.split(","):
        start, dash, end = part.partition("-")
        if not dash:
            raise HoursError(f"expected a range like 09:00-18:00, got {part.strip()!r}")
        ranges.append([parse_time(start), parse_time(end, end=True)])
    return check_ranges(ranges)


def check_ranges(ranges: Iterable[Sequence[str]]) -> list[list[str]]:
    """One day's ranges, sorted; refused if one is empty, overnight or overlaps another."""
    cleaned = sorted([parse_time(start), parse_time(end, end=True)] for start, end in ranges)
    for start, end in cleaned:
        if end <= start:
            hint = (
                f": a range stays within one day; write it as two, e.g. "
                f"'mon {start}-24:00' and 'tue 00:00-{end}'"
                if end < start
                else ""
            )
            raise HoursError(f"{start}-{end} does not end after it starts{hint}")
    for (_, end), (start, later_end) in zip(cleaned, cleaned[1:], strict=False):
        if start < end:
            raise HoursError(f"{start}-{later_end} overlaps the range that ends at {end}")
    return cleaned


def parse_days(text: str) -> list[str]:
    """'mon-fri' -> the five days; 'sat,sun'; 'fri-mon' wraps round the week."""
    days: list[str] = []
    for part in text.lower().split(","):
        first, dash, last = part.strip().partition("-")
        if first not in DAYS or (dash and last not in DAYS):
            raise HoursError(f"expected days like mon-fri or sat,sun ({DAY_NAMES}), got {text!r}")
        i, j = DAYS.index(first), DAYS.index(last if dash else first)
        days += [DAYS[(i + k) % 7] for k in range((j - i) % 7 + 1)]
    return days


def parse_week(specs: Iterable[str]) -> Hours:
    """['mon-fri 09:00-18:00', 'sat 09:00-12:00', 'sun closed'] -> the hours of every
    day; a day no spec names is closed, a later spec overrides an earlier one.
    ['always'] -> {} (no business hours: always open)."""
    specs = list(specs)
    if len(specs) == 1 and specs[0].strip().lower() in ALWAYS_OPEN:
        return {}
    week: Hours = {day: [] for day in DAYS}
    for spec in specs:
        days, _, ranges = spec.strip().partition(" ")
        if not ranges.strip():
            raise HoursError(
                f"expected days then hours, like 'mon-fri 09:00-18:00' or 'sun closed', "
                f"got {spec!r}"
            )
        named = parse_days(days)
        parsed = parse_ranges(ranges)
        for day in named:
            week[day] = parsed
    return week


def check_hours(value: Any) -> Hours:
    """The settings form: {day: [[start, end], ...] or 'HH:MM-HH:MM, ...'}. Days left
    out are closed; {} means no business hours."""
    if not isinstance(value, dict):
        raise HoursError(f"expected an object like {{'mon': [['09:00', '18:00']]}}, got {value!r}")
    if not value:
        return {}
    unknown = [day for day in value if day not in DAYS]
    if unknown:
        raise HoursError(f"expected days among {DAY_NAMES}, got {unknown[0]!r}")
    week: Hours = {}
    for day in DAYS:
        given = value.get(day, [])
        try:
            if isinstance(given, str):
                week[day] = parse_ranges(given)
            elif isinstance(given, list) and all(_is_pair(pair) for pair in given):
                week[day] = check_ranges(given)
            else:
                raise HoursError(
                    f"expected [['09:00', '18:00'], ...] or '09:00-18:00', got {given!r}"
                )
        except HoursError as error:
            raise HoursError(f"{day}: {error}") from None
    return week


def _is_pair(pair: Any) -> bool:
    return isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)
