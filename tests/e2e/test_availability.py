"""What the widget's header says about availability, in real Chromium: closed until
Monday on a Saturday night (the relay's clock and the browser's both moved there),
in English and in French, the default line, and "Online now" while an owner has the
inbox open."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.sync.client import ClientConnection, connect

from tests.e2e.conftest import Stage, running_stage, screenshot
from tests.support import ALPHA, seed_sites

LAUNCHER = "porch-chat .launcher"
STATUS = "porch-chat .availability"
INPUT = "porch-chat textarea"
PARIS_WEEKDAYS = {
    "timezone": "Europe/Paris",
    "hours": {
        **{day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        "sat": [],
        "sun": [],
    },
    "away_texts": {"fr": "Laissez-nous un mot, nous lisons tout le lundi matin."},
}
SATURDAY_NIGHT = "2026-11-28T22:00:00Z"  # 23:00 in Paris
SUNDAY_EVENING = "2026-11-29T20:00:00Z"  # 21:00 in Paris
MONDAY_9_IN_PARIS = "2026-11-30T08:00:00Z"
DEFAULT_AWAY = "Leave a message and your email: we will answer as soon as we are back."
DEFAULT_LINE = (
    "We usually reply within a few hours. You can leave and come back: the conversation stays here."
)


@contextmanager
def stage_at(tmp_path: Path, clock: str, settings: dict[str, Any]) -> Iterator[Stage]:
    with running_stage(tmp_path, clock_start=clock) as stage:
        site = replace(ALPHA, origins=(stage.pages,), settings={**ALPHA.settings, **settings})
        seed_sites(stage.relay.config, [site])
        yield stage


def visitor_page(browser: Browser, locale: str, clock: str) -> Page:
    """A visitor in Paris whose computer shows the same time as the relay's clock."""
    context = browser.new_context(locale=locale, timezone_id="Europe/Paris")
    page = context.new_page()
    page.clock.set_fixed_time(clock)  # Date is frozen there; timers still run
    return page


def open_status(page: Page, url: str) -> str:
    page.goto(url)
    page.locator(LAUNCHER).click()
    expect(page.locator(STATUS)).not_to_be_empty()
    return page.locator(STATUS).inner_text()


def browser_day_and_time(page: Page, iso: str) -> tuple[str, str]:
    """How this browser's Intl writes the weekday and time of `iso` in its own zone."""
    day, time = page.evaluate(
        """(iso) => {
          const date = new Date(iso);
          return [
            new Intl.DateTimeFormat(navigator.language, { weekday: 'long' }).format(date),
            new Intl.DateTimeFormat(navigator.language, { hour: '2-digit', minute: '2-digit' })
              .format(date),
          ];
        }""",
        iso,
    )
    return str(day), str(time)


@pytest.mark.parametrize(
    ("clock", "back"),
    [(SATURDAY_NIGHT, "Back {day} at {time}."), (SUNDAY_EVENING, "Back tomorrow at {time}.")],
)
def test_closed_on_the_weekend_says_when_we_are_back(
    tmp_path: Path, browser: Browser, clock: str, back: str
) -> None:
    with stage_at(tmp_path, clock, PARIS_WEEKDAYS) as stage:
        config = httpx.get(f"{stage.relay.url}/v1/sites/alpha/config").json()
        assert config["availability"]["next_open"] == MONDAY_9_IN_PARIS
        page = visitor_page(browser, "en-GB", clock)
        status = open_status(page, stage.url("/"))
        day, time = browser_day_and_time(page, MONDAY_9_IN_PARIS)
        assert (day, time) == ("Monday", "09:00")  # Paris is where the visitor is too
        assert status == f"Closed now. {back.format(day=day, time=time)} {DEFAULT_AWAY}"
        assert "online" not in (page.locator(STATUS).get_attribute("class") or "")
        screenshot(page, "availability-closed")
        page.context.close()


def test_closed_in_french_with_the_sites_french_away_text(tmp_path: Path, browser: Browser) -> None:
    with stage_at(tmp_path, SATURDAY_NIGHT, PARIS_WEEKDAYS) as stage:
        page = visitor_page(browser, "fr-FR", SATURDAY_NIGHT)
        status = open_status(page, stage.url("/fr"))
        day, time = browser_day_and_time(page, MONDAY_9_IN_PARIS)
        assert (day, time) == ("lundi", "09:00")
        away = PARIS_WEEKDAYS["away_texts"]["fr"]
        assert status == f"Fermé pour le moment. De retour {day} à {time}. {away}"
        page.context.close()


def test_a_visitor_elsewhere_reads_the_sites_time_with_its_zone_as_the_reply_says_it(
    tmp_path: Path, browser: Browser
) -> None:
    """One instant, one time: the header and the automatic reply both give the opening
    on the site's clock (09:00 in Paris, not 03:00 in New York), naming the zone."""
    with stage_at(tmp_path, SATURDAY_NIGHT, PARIS_WEEKDAYS) as stage:
        context = browser.new_context(locale="en-GB", timezone_id="America/New_York")
        page = context.new_page()
        page.clock.set_fixed_time(SATURDAY_NIGHT)
        status = open_status(page, stage.url("/"))
        assert status.startswith("Closed now. Back Monday at 09:00 (France Time).")
        page.locator(INPUT).fill("Open on Monday?")
        page.locator(INPUT).press("Enter")
        expect(page.locator("porch-chat .message.system")).to_contain_text(
            "Monday at 09:00 (France Time)"
        )
        context.close()


def test_a_visitor_in_the_sites_zone_reads_no_zone(tmp_path: Path, browser: Browser) -> None:
    with stage_at(tmp_path, SATURDAY_NIGHT, PARIS_WEEKDAYS) as stage:
        page = visitor_page(browser, "en-GB", SATURDAY_NIGHT)
        status = open_status(page, stage.url("/"))
        assert status.startswith("Closed now. Back Monday at 09:00.")
        page.context.close()


def test_open_with_a_promised_reply_time(tmp_path: Path, browser: Browser) -> None:
    tuesday_morning = "2026-12-01T09:00:00Z"  # 10:00 in Paris
    settings = {**PARIS_WEEKDAYS, "reply_time_minutes": 120}
    with stage_at(tmp_path, tuesday_morning, settings) as stage:
        page = visitor_page(browser, "en-GB", tuesday_morning)
        status = open_status(page, stage.url("/"))
        hours = page.evaluate(
            "new Intl.NumberFormat(navigator.language,"
            " { style: 'unit', unit: 'hour', unitDisplay: 'long' }).format(2)"
        )
        assert status == f"We typically reply in about {hours}."
        page.context.close()


def test_a_site_without_hours_shows_the_default_line(stage: Stage, page: Page) -> None:
    assert open_status(page, stage.url("/")) == DEFAULT_LINE


def test_online_while_an_owner_has_the_inbox_open(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/"))
    page.locator(LAUNCHER).click()
    page.locator(INPUT).fill("Is anyone there?")
    page.locator(INPUT).press("Enter")
    expect(page.locator("porch-chat .message.visitor:not(.pending)")).to_have_count(1)
    expect(page.locator(STATUS)).to_have_text(DEFAULT_LINE)
    with owner_at_the_inbox(stage):
        # Pushed over the visitor's socket: no reload, no polling.
        expect(page.locator(STATUS)).to_have_text("Online now. We usually reply in a few minutes.")
        expect(page.locator(STATUS)).to_have_class("availability online")
        screenshot(page, "availability-online")
    expect(page.locator(STATUS)).to_have_text(DEFAULT_LINE)
    expect(page.locator(STATUS)).to_have_class("availability")


@contextmanager
def owner_at_the_inbox(stage: Stage) -> Iterator[ClientConnection]:
    """The owner signs in (as the sign-in link would) and keeps the inbox socket open."""
    relay = stage.relay
    token = relay.tokens.login_token(ALPHA.owner_emails[0])
    signed_in = httpx.post(
        f"{relay.url}/inbox/api/session", json={"token": token}, headers={"origin": relay.url}
    )
    assert signed_in.status_code == 200, signed_in.text
    cookie = signed_in.cookies["porch_session"]
    url = relay.url.replace("http://", "ws://") + "/inbox/live"
    with connect(
        url,
        origin=relay.url,
        additional_headers={"cookie": f"porch_session={cookie}"},  # type: ignore[arg-type]
    ) as ws:
        ws.send(json.dumps({"type": "hello", "since": 0}))
        while json.loads(ws.recv(timeout=5))["type"] != "ready":
            pass
        yield ws


def test_outside_hours_the_widget_gets_one_automatic_reply_in_its_language(
    tmp_path: Path, browser: Browser
) -> None:
    with stage_at(tmp_path, SATURDAY_NIGHT, PARIS_WEEKDAYS) as stage:
        page = visitor_page(browser, "fr-FR", SATURDAY_NIGHT)
        page.goto(stage.url("/fr"))
        page.locator(LAUNCHER).click()
        for text in ("Bonsoir, vous livrez ?", "Et le dimanche ?"):
            page.locator(INPUT).fill(text)
            page.locator(INPUT).press("Enter")
        expect(page.locator("porch-chat .message.visitor:not(.pending)")).to_have_count(2)
        automatic = page.locator("porch-chat .message.system")
        expect(automatic).to_have_count(1)
        expect(automatic).to_contain_text("de retour lundi à 09:00")
        expect(automatic).to_contain_text(PARIS_WEEKDAYS["away_texts"]["fr"])
        page.context.close()
