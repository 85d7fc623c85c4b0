"""Changing a site's settings (the inbox's settings form, `porch site set`).

Every field is checked before anything is applied: one bad value, nothing changes.
The identity secret and the legacy reply aliases are never shown or changed here.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from datetime import date
from typing import Any
from zoneinfo import available_timezones

from relay.catalogue import LANGUAGES
from relay.errors import UnprocessableRequest
from relay.inputs import EMAIL, MAX_EMAIL_CHARS, clean_text, normalize_origin
from relay.models import DEFAULT_COLOR, Site
from relay.sites.availability import HoursError, check_hours, parse_week

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
MAX_SITE_NAME_CHARS = 100
MAX_TEXT_CHARS = 500  # a greeting or an away text: a few sentences in a small panel
MAX_LIST_ITEMS = 50  # origins or owner addresses of one site
MAX_CLOSED_DAYS = 400  # more than a year of closures, listed one by one
MAX_REPLY_MINUTES = 7 * 24 * 60  # a week: beyond that, the promise means little
HIDDEN = ("identity_secret", "reply_aliases")  # never in what the inbox reads
# What an owner sees for a setting never set.
DEFAULTS: dict[str, Any] = {
    "timezone": "UTC",
    "hours": {},
    "closed_days": [],
    "greeting": "",
    "greetings": {},
    "away_text": "",
    "away_texts": {},
    "reply_time_minutes": None,
    "color": DEFAULT_COLOR,
    "language": "en",
}


class BadValue(ValueError):
    """'expected X, got Y': the caller names the field (JSON key or CLI flag)."""


def bad(expected: str, got: Any) -> BadValue:
    shown = repr(got)
    return BadValue(f"expected {expected}, got {shown if len(shown) <= 80 else shown[:77] + '...'}")


# -- one checker per field: a clean value, or BadValue ----------------------------------


def name(value: Any) -> str:
    text = " ".join(clean_text(value).split()) if isinstance(value, str) else ""
    if not 0 < len(text) <= MAX_SITE_NAME_CHARS:
        raise bad(f"the business's name (1-{MAX_SITE_NAME_CHARS} characters)", value)
    return text


def origins(value: Any) -> list[str]:
    items = _strings(value, "a list of origins like ['https://shop.example']")
    try:
        return list(dict.fromkeys(normalize_origin(item) for item in items))
    except ValueError as error:  # normalize_origin says what it expected and got
        raise BadValue(str(error)) from None


def owner_emails(value: Any) -> list[str]:
    items = _strings(value, "a list of addresses like ['owner@shop.example']")
    for item in items:
        if len(item.strip()) > MAX_EMAIL_CHARS or not EMAIL.fullmatch(item.strip()):
            raise bad("addresses like owner@shop.example", item)
    return list(dict.fromkeys(item.strip().lower() for item in items))


def timezone(value: Any) -> str:
    if not isinstance(value, str) or value.strip() not in iana_zones():
        raise bad("an IANA time zone like Europe/Paris", value)
    return value.strip()


@functools.cache
def iana_zones() -> frozenset[str]:
    """The zone names browsers know too (Intl), not every file beside them in the
    database: 'localtime' would be the server's zone, 'posix/...' duplicates."""
    return frozenset(available_timezones() - {"localtime", "posixrules", "Factory"})


def hours(value: Any) -> dict[str, list[list[str]]]:
    """The settings form ({day: [[start, end]] or 'HH:MM-HH:MM, ...'}), or the CLI's
    weekly lines (['mon-fri 09:00-18:00', 'sun closed']); null or {}: no hours."""
    try:
        if value is None:
            return {}
        if isinstance(value, list) and all(isinstance(line, str) for line in value):
            return parse_week(value)
        return check_hours(value)
    except HoursError as error:
        raise BadValue(str(error)) from None


def closed_days(value: Any) -> list[str]:
    days = _strings(value, "a list of dates like ['2026-12-25']", allow_empty=True)
    if len(days) > MAX_CLOSED_DAYS:
        raise BadValue(f"expected at most {MAX_CLOSED_DAYS} dates, got {len(days)}")
    for day in days:
        try:
            if not DATE.fullmatch(day):
                raise ValueError
            date.fromisoformat(day)
        except ValueError:
            raise bad("dates like 2026-12-25", day) from None
    return sorted(set(days))


def text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad("text", value)
    cleaned = clean_text(value)
    if len(cleaned) > MAX_TEXT_CHARS:
        raise BadValue(f"expected at most {MAX_TEXT_CHARS} characters, got {len(cleaned)}")
    return cleaned


def texts(value: Any) -> dict[str, str]:
    """Per language ({'fr': '...'}); an empty text removes that language's."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad("an object like {'fr': '...'}", value)
    for language in value:
        if language not in LANGUAGES:
            raise bad(f"languages among {', '.join(LANGUAGES)}", language)
    cleaned = {language: text(given) for language, given in value.items()}
    return {language: given for language, given in cleaned.items() if given}


def reply_time_minutes(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPLY_MINUTES:
        raise bad(f"a whole number of minutes from 1 to {MAX_REPLY_MINUTES}", value)
    return value


def color(value: Any) -> str:
    if not isinstance(value, str) or not COLOR.fullmatch(value):
        raise bad("a colour like #2f6f4e", value)
    return value.lower()


def language(value: Any) -> str:
    if value not in LANGUAGES:
        raise bad(" or ".join(LANGUAGES), value)
    return str(value)


FIELDS: dict[str, Callable[[Any], Any]] = {
    "name": name,
    "origins": origins,
    "owner_emails": owner_emails,
    "timezone": timezone,
    "hours": hours,
    "closed_days": closed_days,
    "greeting": text,
    "greetings": texts,
    "away_text": text,
    "away_texts": texts,
    "reply_time_minutes": reply_time_minutes,
    "color": color,
    "language": language,
}
SITE_COLUMNS = ("name", "origins", "owner_emails")  # the rest lives in site.settings


# -- applying ------------------------------------------------------------------------


def check_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Every change checked and cleaned; the first bad one raises UnprocessableRequest
    with reason = the field, so a form can point at it."""
    for key in changes:
        if key not in FIELDS:
            raise UnprocessableRequest(
                f"{key!r} is not a setting; expected some of {', '.join(FIELDS)}", reason=key
            )
    cleaned = {}
    for key, value in changes.items():
        try:
            cleaned[key] = FIELDS[key](value)
        except BadValue as error:
            raise UnprocessableRequest(f"{key!r}: {error}", reason=key) from None
    return cleaned


def apply_changes(site: Site, changes: dict[str, Any]) -> Site:
    """A copy of `site` with the changes (see FIELDS); the site itself is untouched."""
    cleaned = check_changes(changes)
    columns = {key: cleaned.pop(key) for key in SITE_COLUMNS if key in cleaned}
    if "origins" in columns:
        columns["origins"] = tuple(columns["origins"])
    if "owner_emails" in columns:
        columns["owner_emails"] = tuple(columns["owner_emails"])
    settings = {**site.settings, **cleaned}
    if settings.get("reply_time_minutes") is None:
        settings.pop("reply_time_minutes", None)
    return dataclasses.replace(site, settings=settings, **columns)


def public_settings(site: Site) -> dict[str, Any]:
    """What the inbox shows an owner: every setting, defaults filled in, no secrets."""
    shown = {**DEFAULTS, **site.settings}
    for key in HIDDEN:
        shown.pop(key, None)
    return shown


def _strings(value: Any, expected: str, *, allow_empty: bool = False) -> list[str]:
    if value is None and allow_empty:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad(expected, value)
    if not value and not allow_empty:
        raise bad(f"{expected}, at least one", value)
    if len(value) > MAX_LIST_ITEMS and not allow_empty:
        raise BadValue(f"expected at most {MAX_LIST_ITEMS}, got {len(value)}")
    return value
