"""Outside business hours, a visitor's message gets one automatic reply saying when
the business opens again, once per closed period and thread (not once per message).

Written in the visitor's message's own transaction (the store calls reply_for), so it
is stored exactly once and reaches the visitor right after their message.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from relay.catalogue import language_or_default, text
from relay.clock import Clock
from relay.conversations.presence import Presence
from relay.models import Author, Message
from relay.sites.availability import opening, site_zone, zone_names
from relay.sites.settings import AWAY_TEXT, LANGUAGE
from relay.store.rows import Db

SETTINGS_TTL = 30.0  # seconds
CLIENT_ID_PREFIX = "away:"  # + the next opening: one reply per closed period per thread


@dataclass(frozen=True)
class AwayReply:
    body: str
    client_id: str


@dataclass
class AwayReplies:
    clock: Clock
    presence: Presence
    # Site settings as last read: every visitor message asks, most while open.
    _settings: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def reply_for(self, db: Db, message: Message, site: str) -> AwayReply | None:
        if message.author is not Author.VISITOR or self.presence.online(site):
            return None  # someone is at the inbox: no need to say nobody is
        settings = self._site_settings(db, site)
        now = self.clock.now()
        state = opening(settings, now)
        if not state.has_hours or state.open_now:
            return None
        visitor = db.execute(
            "SELECT v.language, v.email FROM threads t JOIN visitors v ON v.id = t.visitor_id"
            " WHERE t.id = ?",
            (message.thread,),
        ).fetchone()
        language = language_or_default(visitor[0] or LANGUAGE.of(settings))
        next_open = state.next_open
        key = next_open.isoformat() if next_open else "closed"
        if next_open is None:
            body = text("server.away.reply_later", language)
        else:
            body = text(
                "server.away.reply",
                language,
                when=_when(next_open, now, site_zone(settings), language),
            )
        if not visitor[1]:  # no address yet: say how the answer can still reach them
            body += " " + text("server.away.invite", language)
        custom = AWAY_TEXT.in_language(settings, language)
        if custom:
            body += "\n\n" + custom
        return AwayReply(body, CLIENT_ID_PREFIX + key)

    def forget(self, site: str) -> None:
        """The site's settings changed (in this process)."""
        self._settings.pop(site, None)

    def _site_settings(self, db: Db, site: str) -> dict[str, Any]:
        cached = self._settings.get(site)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        row = db.execute("SELECT settings FROM sites WHERE id = ?", (site,)).fetchone()
        settings: dict[str, Any] = json.loads(row[0]) if row else {}
        # Changes made by another process (porch site set) are seen within this long.
        self._settings[site] = (time.monotonic() + SETTINGS_TTL, settings)
        return settings


def _when(moment: datetime, now: datetime, zone: ZoneInfo, language: str) -> str:
    """ "Monday at 09:00 (France Time)", with the date when it is a week or more away."""
    far = moment - now >= timedelta(days=6)
    pattern = "EEEE d MMMM" if far else "EEEE"
    return text(
        "server.away.when",
        language,
        day=format_datetime(moment, pattern, tzinfo=zone, locale=language),
        time=format_datetime(moment, "HH:mm", tzinfo=zone, locale=language),
        zone=zone_names(zone.key)[language],
    )
