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

import functools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relay.catalogue import LANGUAGES
from relay.clock import parse_instant

# The grammar of hours lives in relay/sites/hours.py; these names stay importable here.
from relay.sites.hours import DAYS
from relay.sites.hours import Hours as Hours
from relay.sites.hours import HoursError as HoursError
from relay.sites.hours import check_hours as check_hours
from relay.sites.hours import parse_ranges as parse_ranges
from relay.sites.hours import parse_week as parse_week
from relay.sites.settings import AWAY_TEXT, CLOSED_DAYS, HOURS, REPLY_TIME_MINUTES, TIMEZONE

if TYPE_CHECKING:
    from relay.models import Site

# How far ahead the next opening is looked for: five weeks covers a summer closure.
SEARCH_DAYS = 35
# A median of fewer replies says more about chance than about the owner.
MIN_REPLY_SAMPLES = 3


def site_zone(settings: dict[str, Any]) -> ZoneInfo:
    """The site's zone; UTC if unset (or, defensively, unknown: it was checked on save)."""
    try:
        return ZoneInfo(str(TIMEZONE.of(settings)))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# -- opening hours -----------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    has_hours: bool  # False: no business hours were set, the site is always open
    open_now: bool
    next_open: datetime | None  # UTC; None when open now, or not open in SEARCH_DAYS


def opening(settings: dict[str, Any], now: datetime) -> Opening:
    hours = HOURS.of(settings)
    if not hours:
        return Opening(has_hours=False, open_now=True, next_open=None)
    zone = site_zone(settings)
    closed = set(CLOSED_DAYS.of(settings))
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
    promised = REPLY_TIME_MINUTES.of(site)
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
        "away_text": AWAY_TEXT.of(site),
        "away_texts": AWAY_TEXT.texts(site),
        "timezone": site_zone(settings).key,
        # The zone as the automatic reply names it: the widget says it the same way.
        "zone_names": zone_names(site_zone(settings).key),
    }


@functools.cache
def zone_names(zone: str) -> dict[str, str]:
    """The zone in words per language, as babel says it ("France Time")."""
    # Imported here: the store loads this module, and CLI commands need no babel.
    from babel.dates import get_timezone_location

    if zone in ("UTC", "Etc/UTC"):  # babel would say "Unknown Region (UTC) Time"
        return dict.fromkeys(LANGUAGES, "UTC")
    return {
        language: get_timezone_location(ZoneInfo(zone), locale=language) for language in LANGUAGES
    }


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
