"""Business hours, the next opening, typical reply times (relay/availability.py), and
what GET /v1/sites/{site}/config tells visitors about them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from relay.sites.availability import (
    HoursError,
    check_hours,
    iso_utc,
    opening,
    parse_ranges,
    parse_week,
    public_availability,
    reply_delays,
    typical_reply_seconds,
)
from tests.support import ALPHA, NO_AVAILABILITY, RunningRelay, bearer, seed_sites, start_thread

WEEKDAYS_9_TO_6 = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
PARIS_WEEK = {"timezone": "Europe/Paris", "hours": WEEKDAYS_9_TO_6}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- parsing -----------------------------------------------------------------------


def test_day_ranges_are_read_sorted_and_normalised() -> None:
    assert parse_ranges("14:00-18:00, 9:00-12:00") == [["09:00", "12:00"], ["14:00", "18:00"]]
    assert parse_ranges(" 18:00 - 24:00 ") == [["18:00", "24:00"]]
    assert parse_ranges("") == parse_ranges("closed") == []


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("22:00-02:00", "write it as two, e.g. 'mon 22:00-24:00' and 'tue 00:00-02:00'"),
        ("09:00-09:00", "does not end after it starts"),
        ("09:00-12:00, 11:00-13:00", "11:00-13:00 overlaps the range that ends at 12:00"),
        ("9h-12h", "expected a time like 09:00"),
        ("25:00-26:00", "got '25:00'"),
        ("24:00-24:00", "got '24:00'"),  # 24:00 only ends a day
        ("09:00", "expected a range like 09:00-18:00, got '09:00'"),
    ],
)
def test_bad_ranges_are_refused_with_the_reason(spec: str, says: str) -> None:
    with pytest.raises(HoursError, match=".*") as refused:
        parse_ranges(spec)
    assert says in str(refused.value)


def test_weekly_lines_make_every_day() -> None:
    week = parse_week(["mon-fri 09:00-18:00", "sat 09:00-12:00", "sun closed"])
    assert week == {**WEEKDAYS_9_TO_6, "sat": [["09:00", "12:00"]], "sun": []}
    # A later line overrides; days nobody names are closed; ranges wrap round the week.
    assert parse_week(["mon-sat 10:00-16:00", "sat 10:00-12:00"])["sat"] == [["10:00", "12:00"]]
    assert parse_week(["fri-mon 10:00-11:00"]) == {
        "mon": [["10:00", "11:00"]],
        "tue": [],
        "wed": [],
        "thu": [],
        "fri": [["10:00", "11:00"]],
        "sat": [["10:00", "11:00"]],
        "sun": [["10:00", "11:00"]],
    }
    assert parse_week(["sat,sun 10:00-12:00"])["sun"] == [["10:00", "12:00"]]
    assert parse_week(["always"]) == {}


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        (["mon-fri"], "expected days then hours"),
        (["monday 09:00-18:00"], "expected days like mon-fri or sat,sun"),
        (["mon-xyz 09:00-18:00"], "got 'mon-xyz'"),
        (["mon 22:00-02:00"], "'mon 22:00-24:00' and 'tue 00:00-02:00'"),
    ],
)
def test_bad_weekly_lines_are_refused(lines: list[str], says: str) -> None:
    with pytest.raises(HoursError) as refused:
        parse_week(lines)
    assert says in str(refused.value)


def test_settings_form_accepts_pairs_or_strings_and_names_the_bad_day() -> None:
    assert check_hours({"mon": "9:00-12:00", "tue": [["14:00", "18:00"]]}) == {
        "mon": [["09:00", "12:00"]],
        "tue": [["14:00", "18:00"]],
        **{day: [] for day in ("wed", "thu", "fri", "sat", "sun")},
    }
    assert check_hours({}) == {}
    for bad, says in [
        ({"mon": [["09:00"]]}, "mon: expected [['09:00', '18:00'], ...]"),
        ({"wed": "22:00-01:00"}, "wed: 22:00-01:00 does not end after it starts"),
        ({"lundi": []}, "got 'lundi'"),
        ([["09:00", "18:00"]], "expected an object"),
    ]:
        with pytest.raises(HoursError) as refused:
            check_hours(bad)
        assert says in str(refused.value)


# -- opening -------------------------------------------------------------------------


def test_no_hours_means_always_open() -> None:
    for settings in ({}, {"hours": {}}, {"timezone": "Asia/Tokyo"}):
        assert opening(settings, utc("2026-11-28T22:00:00")) == (
            opening({}, utc("2026-01-01T00:00:00"))
        )
        state = opening(settings, utc("2026-11-28T22:00:00"))
        assert state.has_hours is False and state.open_now is True and state.next_open is None


def test_edges_of_a_range() -> None:
    # Paris is UTC+1 in November: 09:00-18:00 local is 08:00-17:00 UTC.
    tuesday = "2026-11-24T"
    just_before = opening(PARIS_WEEK, utc(tuesday + "07:59:59"))
    assert not just_before.open_now and just_before.next_open == utc(tuesday + "08:00:00")
    assert opening(PARIS_WEEK, utc(tuesday + "08:00:00")).open_now
    assert opening(PARIS_WEEK, utc(tuesday + "16:59:59")).open_now
    at_closing = opening(PARIS_WEEK, utc(tuesday + "17:00:00"))
    assert not at_closing.open_now
    assert at_closing.next_open == utc("2026-11-25T08:00:00")  # Wednesday 09:00


def test_lunch_break_and_a_range_to_midnight() -> None:
    settings = {
        "timezone": "Europe/Paris",
        "hours": {"fri": [["09:00", "12:00"], ["14:00", "24:00"]]},
    }
    lunch = opening(settings, utc("2026-11-27T11:30:00"))  # 12:30 in Paris
    assert not lunch.open_now and lunch.next_open == utc("2026-11-27T13:00:00")
    assert opening(settings, utc("2026-11-27T22:59:59")).open_now  # 23:59:59 local
    after = opening(settings, utc("2026-11-27T23:00:00"))  # Saturday 00:00 local
    assert not after.open_now and after.next_open == utc("2026-12-04T08:00:00")


def test_saturday_night_opens_monday_morning_in_the_site_zone() -> None:
    state = opening(PARIS_WEEK, utc("2026-11-28T22:00:00"))
    assert state == type(state)(has_hours=True, open_now=False, next_open=utc("2026-11-30T08:00"))
    # The same instant for a site in New York (UTC-5): still Saturday 17:00 there.
    new_york = {**PARIS_WEEK, "timezone": "America/New_York"}
    assert opening(new_york, utc("2026-11-28T22:00:00")).next_open == utc("2026-11-30T14:00")


def test_closed_days_are_local_dates() -> None:
    settings = {**PARIS_WEEK, "closed_days": ["2026-11-30", "2026-12-01"]}
    state = opening(settings, utc("2026-11-28T22:00:00"))
    assert state.next_open == utc("2026-12-02T08:00:00")  # Wednesday
    assert not opening(settings, utc("2026-11-30T10:00:00")).open_now  # a closed Monday


def test_dst_spring_forward_weekend_in_paris() -> None:
    # 29 March 2026: Paris goes from UTC+1 to UTC+2 at 02:00.
    settings = {
        "timezone": "Europe/Paris",
        "hours": {
            "sat": [["09:00", "12:00"]],
            "sun": [["02:30", "04:00"]],  # 02:30 does not exist that night
            "mon": [["09:00", "18:00"]],
        },
    }
    saturday = opening(settings, utc("2026-03-28T12:00:00"))  # 13:00 CET, after hours
    assert saturday.next_open == utc("2026-03-29T01:30:00")  # = 03:30 CEST, as clocks show
    sunday = opening(settings, utc("2026-03-29T02:30:00"))  # 04:30 CEST
    assert not sunday.open_now and sunday.next_open == utc("2026-03-30T07:00:00")  # 09:00 CEST
    # The Friday before, next_open counts the change: 09:00 Monday is 07:00 UTC, not 08:00.
    friday = opening({**PARIS_WEEK}, utc("2026-03-27T18:00:00"))
    assert friday.next_open == utc("2026-03-30T07:00:00")


def test_dst_fall_back_weekend_in_paris() -> None:
    # 25 October 2026: Paris goes from UTC+2 back to UTC+1 at 03:00.
    friday_evening = opening(PARIS_WEEK, utc("2026-10-23T17:00:00"))  # 19:00 CEST
    assert friday_evening.next_open == utc("2026-10-26T08:00:00")  # 09:00 CET
    settings = {"timezone": "Europe/Paris", "hours": {"sun": [["02:30", "03:30"]]}}
    # 02:30 happens twice: the range opens at the first one (00:30 UTC), and runs to
    # 03:30 CET (02:30 UTC): two hours of wall time that night.
    assert opening(settings, utc("2026-10-25T00:00:00")).next_open == utc("2026-10-25T00:30")
    assert opening(settings, utc("2026-10-25T02:00:00")).open_now


def test_next_open_searched_across_weeks_and_none_when_never() -> None:
    # Only open on Sundays, three closed Sundays in a row: the fourth one.
    settings = {
        "timezone": "UTC",
        "hours": {"sun": [["10:00", "11:00"]]},
        "closed_days": ["2026-11-29", "2026-12-06", "2026-12-13"],
    }
    assert opening(settings, utc("2026-11-28T22:00:00")).next_open == utc("2026-12-20T10:00")
    never = opening({"hours": {day: [] for day in ("mon", "sun")}}, utc("2026-11-28T22:00"))
    assert never == type(never)(has_hours=True, open_now=False, next_open=None)


# -- reply times -------------------------------------------------------------------


def test_reply_delays_measure_from_the_first_unanswered_visitor_message() -> None:
    rows = [
        ("t1", "visitor", "2026-11-02T09:00:00.000Z"),
        ("t1", "visitor", "2026-11-02T09:01:00.000Z"),  # still waiting since 09:00
        ("t1", "system", "2026-11-02T09:00:01.000Z"),  # an automatic reply is no answer
        ("t1", "owner", "2026-11-02T09:05:00.000Z"),  # 5 minutes
        ("t1", "owner", "2026-11-02T09:06:00.000Z"),  # nothing was waiting
        ("t1", "visitor", "2026-11-02T10:00:00.000Z"),
        ("t1", "owner", "2026-11-02T12:00:00.000Z"),  # 2 hours
        ("t2", "owner", "2026-11-02T08:00:00.000Z"),  # the owner wrote first: no delay
        ("t2", "visitor", "2026-11-02T08:30:00Z"),
        ("t3", "owner", "2026-11-02T08:31:00Z"),  # another thread: t2's wait never ended
        ("t3", "visitor", "2026-11-02T08:32:00+00:00"),  # unanswered: no delay either
    ]
    assert reply_delays(rows) == [300.0, 7200.0]
    assert reply_delays([]) == []


def test_typical_reply_is_a_median_of_at_least_three() -> None:
    assert typical_reply_seconds([]) is None
    assert typical_reply_seconds([60.0, 120.0]) is None
    assert typical_reply_seconds([60.0, 120.0, 86400.0 * 7]) == 120.0
    assert typical_reply_seconds([60.0, 120.0, 180.0, 240.0]) == 150.0


# -- what visitors see -------------------------------------------------------------


def test_public_availability_shape_and_reply_source() -> None:
    site = replace(
        ALPHA,
        settings={
            **PARIS_WEEK,
            "reply_time_minutes": 45,
            "away_text": "Back soon.",
            "away_texts": {"fr": "Bientôt de retour."},
            "identity_secret": "never shown",
        },
    )
    saturday_night = utc("2026-11-28T22:00:00")
    assert public_availability(site, saturday_night, False, None) == {
        "online": False,
        "open": False,
        "has_hours": True,
        "next_open": "2026-11-30T08:00:00Z",
        "reply_seconds": 2700,
        "reply_source": "promised",
        "away_text": "Back soon.",
        "away_texts": {"fr": "Bientôt de retour."},
        "timezone": "Europe/Paris",
        "zone_names": {"en": "France Time", "fr": "heure : France"},
    }
    measured = public_availability(site, saturday_night, True, 299.6)
    assert measured["reply_seconds"] == 300 and measured["reply_source"] == "measured"
    assert measured["online"] is True
    bare = public_availability(ALPHA, saturday_night, False, None)
    assert bare == NO_AVAILABILITY
    assert iso_utc(utc("2026-11-30T08:00:00")) == "2026-11-30T08:00:00Z"


# -- over HTTP -----------------------------------------------------------------------


async def test_config_tells_closed_until_monday_on_a_saturday_night(
    make_relay: Callable[..., RunningRelay],
) -> None:
    relay = make_relay(clock_start="2026-11-28T22:00:00Z")
    seed_sites(relay.config, [replace(ALPHA, settings={**ALPHA.settings, **PARIS_WEEK})])
    async with relay.client() as client:
        response = await client.get("/v1/sites/alpha/config")
    assert response.status_code == 200
    availability = response.json()["availability"]
    assert availability["open"] is False and availability["online"] is False
    assert availability["next_open"] == "2026-11-30T08:00:00Z"
    assert availability["timezone"] == "Europe/Paris"
    # Presence and hours change by the minute: a page view must not keep an old answer.
    assert _max_age(response.headers["cache-control"]) <= 15


async def test_config_shows_the_owner_online_and_the_measured_reply_time(
    relay: RunningRelay,
) -> None:
    owner = bearer(relay.owner_token())
    async with relay.client() as client:
        for _ in range(3):
            started = await start_thread(client, "Any croissants left?")
            thread = started["thread"]["id"]
            reply = await client.post(
                f"/v1/owner/threads/{thread}/messages", json={"body": "Yes!"}, headers=owner
            )
            assert reply.status_code == 201, reply.text
        with relay.services.presence.inbox_open(("alpha",), "s_test", lambda: None):
            during = (await client.get("/v1/sites/alpha/config")).json()["availability"]
        after = (await client.get("/v1/sites/alpha/config")).json()["availability"]
    assert during["online"] is True and after["online"] is False
    # Three real replies within a second or two of their questions.
    assert during["reply_source"] == "measured"
    assert isinstance(during["reply_seconds"], int) and 0 <= during["reply_seconds"] <= 10


async def test_config_of_a_site_without_replies_or_hours(relay: RunningRelay) -> None:
    async with httpx.AsyncClient(base_url=relay.url) as client:
        availability = (await client.get("/v1/sites/beta/config")).json()["availability"]
    assert availability["open"] is True and availability["has_hours"] is False
    assert availability["reply_seconds"] is None and availability["reply_source"] is None


def _max_age(header: str) -> int:
    directives: dict[str, Any] = dict(
        (part.strip().partition("=")[::2]) for part in header.split(",")
    )
    if "no-cache" in directives or "no-store" in directives:
        return 0
    return int(directives["max-age"])
