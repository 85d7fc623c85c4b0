"""When a site answers: business hours, the next opening, the typical reply time.

Pure functions, no I/O: the caller passes the time (Services.clock) and the rows.

Hours are wall-clock ranges in the site's time zone, per weekday:
    {"mon": [["09:00", "12:00"], ["14:00", "18:00"]], ..., "sun": []}
No "hours" (or {}) means no business hours: always open. A range ends after it
starts on the same day; "24:00" may end one. Overnight ranges ("22:00-02:00") are
refused with a message saying how to write them: "mon 22:00-24:00" and
"tue 00:00-02:00". One rule (a range belongs to one day) keeps closed days and
DST transitions unambiguous.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relay.clock import parse_instant

if TYPE_CHECKING:
    from relay.models import Site

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
# How far ahead the next opening is looked for: five weeks covers a summer closure.
SEARCH_DAYS = 35
# A median of fewer replies says more about chance than about the owner.
MIN_REPLY_SAMPLES = 3
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


def site_zone(settings: dict[str, Any]) -> ZoneInfo:
    """The site's zone; UTC if unset (or, defensively, unknown: it was checked on save)."""
    try:
        return ZoneInfo(str(settings.get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# -- opening hours -----------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    has_hours: bool  # False: no business hours were set, the site is always open
    open_now: bool
    next_open: datetime | None  # UTC; None when open now, or not open in SEARCH_DAYS


def opening(settings: dict[str, Any], now: datetime) -> Opening:
    hours = settings.get("hours") or {}
    if not hours:
        return Opening(has_hours=False, open_now=True, next_open=None)
    zone = site_zone(settings)
    closed = set(settings.get("closed_days") or ())
    today = now.astimezone(zone).date()
    now = now.astimezone(UTC)
    for offset in range(SEARCH_DAYS + 1):
        day = today + timedelta(days=offset)
        if day.isoformat() in closed:
            continue
        for start, end in hours.get(DAYS[day.weekday()], ()):
            opens, closes = _instant(day, start, zone), _instant(day, end, zone)
            if opens <= now < closes:
                return Opening(has_hours=True, open_now=True, next_open=None)
            if opens > now:
                return Opening(has_hours=True, open_now=False, next_open=opens)
    return Opening(has_hours=True, open_now=False, next_open=None)


def _instant(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a local date, in UTC. A time skipped by a DST change
    (02:30 on the spring-forward night) lands one hour later, as clocks show it;
    a repeated one (autumn) is its first occurrence."""
    if hhmm == "24:00":
        day, hhmm = day + timedelta(days=1), "00:00"
    local = datetime.combine(day, time.fromisoformat(hhmm), tzinfo=zone)
    return local.astimezone(UTC)


# -- reply times -------------------------------------------------------------------


def reply_delays(rows: Iterable[Sequence[str]]) -> list[float]:
    """Seconds owners took to answer. Rows are (thread_id, author, created_at ISO) in
    thread then seq order; a delay runs from the first visitor message after the
    previous owner message (or the thread's start) to the next owner message.
    System messages (automatic replies) are not answers and are skipped."""
    delays: list[float] = []
    thread: str | None = None
    waiting_since: datetime | None = None
    for thread_id, author, created_at in rows:
        if thread_id != thread:
            thread, waiting_since = thread_id, None
        if author == "visitor" and waiting_since is None:
            waiting_since = parse_instant(created_at)
        elif author == "owner" and waiting_since is not None:
            delays.append(max(0.0, (parse_instant(created_at) - waiting_since).total_seconds()))
            waiting_since = None
    return delays


def typical_reply_seconds(samples: Sequence[float]) -> float | None:
    """The median: one reply a week later does not make the owner look slow."""
    return float(statistics.median(samples)) if len(samples) >= MIN_REPLY_SAMPLES else None


# -- what visitors see ---------------------------------------------------------------


def public_availability(
    site: Site, now: datetime, online: bool, typical: float | None
) -> dict[str, Any]:
    settings = site.settings
    state = opening(settings, now)
    promised = settings.get("reply_time_minutes")
    if typical is not None:
        reply_seconds, source = round(typical), "measured"
    elif isinstance(promised, int) and promised > 0:
        reply_seconds, source = promised * 60, "promised"
    else:
        reply_seconds, source = None, None
    return {
        "online": online,
        "open": state.open_now,
        "has_hours": state.has_hours,
        "next_open": iso_utc(state.next_open) if state.next_open else None,
        "reply_seconds": reply_seconds,
        "reply_source": source,
        "away_text": settings.get("away_text") or "",
        "away_texts": settings.get("away_texts") or {},
        "timezone": settings.get("timezone") or "UTC",
    }


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
