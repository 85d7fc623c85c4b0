"""One checker per kind of site setting: a clean value, or BadValue saying what was
expected and what came. relay/sites/settings.py names the field (a JSON key for the
inbox, a flag for the CLI) around the message."""

from __future__ import annotations

import functools
import re
from datetime import date
from typing import Any
from zoneinfo import available_timezones

from relay.attachments.kinds import FAMILIES
from relay.catalogue import LANGUAGES
from relay.inputs import EMAIL, MAX_EMAIL_CHARS, clean_text, normalize_origin
from relay.sites.hours import HoursError, check_hours, parse_week

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
MAX_SITE_NAME_CHARS = 100
MAX_TEXT_CHARS = 500  # a greeting or an away text: a few sentences in a small panel
MAX_LIST_ITEMS = 50  # origins or owner addresses of one site
MAX_CLOSED_DAYS = 400  # more than a year of closures, listed one by one
MAX_REPLY_MINUTES = 7 * 24 * 60  # a week: beyond that, the promise means little
MAX_RETENTION_DAYS = 100 * 366  # a century: "keep" is 0, not a big number
MAX_FILE_MB = 25  # an email carries ~25 MB at most: a file the owner could not forward
MAX_MESSAGE_MB = 100  # every file of one message together (a message has at most 10)
MAX_SYNONYM_GROUPS = 200  # lines of the synonyms setting
MAX_SYNONYMS = 20  # words of one line
MAX_SYNONYM_CHARS = 40  # a word or a short phrase
SYNONYM = re.compile(r"[^\W_]+(?:[ '’-][^\W_]+)*")  # words, with spaces, hyphens, apostrophes


class BadValue(ValueError):
    """'expected X, got Y': the caller names the field (JSON key or CLI flag)."""


def bad(expected: str, got: Any) -> BadValue:
    shown = repr(got)
    return BadValue(f"expected {expected}, got {shown if len(shown) <= 80 else shown[:77] + '...'}")


def name(value: Any) -> str:
    text = " ".join(clean_text(value).split()) if isinstance(value, str) else ""
    if not 0 < len(text) <= MAX_SITE_NAME_CHARS:
        raise bad(f"the business's name (1-{MAX_SITE_NAME_CHARS} characters)", value)
    return text


def origins(value: Any) -> tuple[str, ...]:
    items = _strings(value, "a list of origins like ['https://shop.example']")
    try:
        return tuple(dict.fromkeys(normalize_origin(item) for item in items))
    except ValueError as error:  # normalize_origin says what it expected and got
        raise BadValue(str(error)) from None


def owner_emails(value: Any) -> tuple[str, ...]:
    return _addresses(_strings(value, "a list of addresses like ['owner@shop.example']"))


def aliases(value: Any) -> list[str]:
    """Addresses the owners may also reply from; none is fine."""
    items = _strings(value, "a list of addresses like ['me@home.example']", allow_empty=True)
    if len(items) > MAX_LIST_ITEMS:
        raise BadValue(f"expected at most {MAX_LIST_ITEMS}, got {len(items)}")
    return list(_addresses(items))


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


def synonyms(value: Any) -> list[str]:
    """Groups of words that mean the same, one per line: "coeliac, celiac, gluten-free"."""
    lines = _strings(value, "a list of lines like ['coeliac, gluten-free']", allow_empty=True)
    if len(lines) > MAX_SYNONYM_GROUPS:
        raise BadValue(f"expected at most {MAX_SYNONYM_GROUPS} lines, got {len(lines)}")
    groups = []
    for line in lines:
        items = [" ".join(item.split()) for item in clean_text(line).split(",")]
        items = list(dict.fromkeys(item for item in items if item))
        if not items:
            continue  # a blank line
        if not 2 <= len(items) <= MAX_SYNONYMS:
            raise bad(f"2 to {MAX_SYNONYMS} words separated by commas on a line", line)
        for item in items:
            if len(item) > MAX_SYNONYM_CHARS or not SYNONYM.fullmatch(item):
                raise bad(f"words (at most {MAX_SYNONYM_CHARS} characters each)", item)
        groups.append(", ".join(items))
    return groups


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


def retention_days(value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_RETENTION_DAYS
    ):
        raise bad("0 or more days (0: keep every conversation)", value)
    return value


def file_mb(value: Any) -> int:
    return _megabytes(value, MAX_FILE_MB)


def message_mb(value: Any) -> int:
    return _megabytes(value, MAX_MESSAGE_MB)


def _megabytes(value: Any, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise bad(f"a whole number of megabytes from 1 to {most}", value)
    return value


def file_types(value: Any) -> list[str]:
    """Families of files a site takes (relay/attachments/kinds.py FAMILIES), at least one."""
    expected = f"a list of {', '.join(FAMILIES)}"
    items = _strings(value, expected)
    if not set(items) <= set(FAMILIES):
        raise bad(expected, value)
    return [family for family in FAMILIES if family in items]  # one order, no repeats


def color(value: Any) -> str:
    if not isinstance(value, str) or not COLOR.fullmatch(value):
        raise bad("a colour like #2f6f4e", value)
    return value.lower()


SENDER_CHECKS = ("dmarc", "strict", "off")  # relay/channels/email/authentication


def sender_checks(value: Any) -> str:
    if value not in SENDER_CHECKS:
        raise bad(" or ".join(SENDER_CHECKS), value)
    return str(value)


def language(value: Any) -> str:
    if value not in LANGUAGES:
        raise bad(" or ".join(LANGUAGES), value)
    return str(value)


def secret(value: Any) -> str | None:
    """The identity secret: made by `porch site secret`, never typed by anyone."""
    if value is None or (isinstance(value, str) and value):
        return value
    raise BadValue("expected a secret from `porch site secret`")  # never echoed


def _addresses(items: list[str]) -> tuple[str, ...]:
    for item in items:
        if len(item.strip()) > MAX_EMAIL_CHARS or not EMAIL.fullmatch(item.strip()):
            raise bad("addresses like owner@shop.example", item)
    return tuple(dict.fromkeys(item.strip().lower() for item in items))


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
