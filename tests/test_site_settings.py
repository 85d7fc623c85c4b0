"""Changing a site's settings: every field cleaned or refused by name, all or nothing,
and the identity secret never shown nor changed (relay/site_settings.py)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest

from relay.errors import UnprocessableRequest
from relay.models import Site
from relay.sites.settings import DEFAULTS, apply_changes, public_settings

SECRET = "s3cret-identity-key-s3cret-identity-key"
SITE = Site(
    id="shop",
    name="Shop",
    owner_emails=("owner@shop.example",),
    origins=("https://shop.example",),
    settings={
        "greeting": "Hi",
        "greetings": {"fr": "Salut"},
        "language": "en",
        "color": "#2f6f4e",
        "identity_secret": SECRET,
        "reply_aliases": ["me@home.example"],
        "retention_days": 30,
    },
    created_at="2026-01-01T00:00:00.000Z",
)
WEEKDAYS = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
CLOSED_WEEKEND = {**WEEKDAYS, "sat": [], "sun": []}

# field, what is sent, what is kept (column or setting)
GOOD: list[tuple[str, Any, Any]] = [
    ("name", "  Boulangerie   Dupont ", "Boulangerie Dupont"),
    (
        "origins",
        ["https://Shop.example:443/", "https://shop.example", "http://localhost:8080"],
        ("https://shop.example", "http://localhost:8080"),
    ),
    (
        "owner_emails",
        ["Ann@Shop.example", "ann@shop.example", "bob@shop.example"],
        ("ann@shop.example", "bob@shop.example"),
    ),
    ("timezone", "Europe/Paris", "Europe/Paris"),
    ("timezone", "America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ("hours", WEEKDAYS, CLOSED_WEEKEND),
    ("hours", {"mon": "9:00-12:00, 14:00-18:00"}, None),  # checked in its own test
    ("hours", ["mon-fri 09:00-18:00", "sat closed"], CLOSED_WEEKEND),
    ("hours", {}, {}),
    ("hours", None, {}),
    ("closed_days", ["2026-12-25", "2026-01-01", "2026-12-25"], ["2026-01-01", "2026-12-25"]),
    ("closed_days", [], []),
    ("greeting", "  Hello!\r\nAsk away. ", "Hello!\nAsk away."),
    ("greeting", "", ""),
    ("greetings", {"fr": "Bonjour !", "en": ""}, {"fr": "Bonjour !"}),
    ("away_text", "x" * 500, "x" * 500),
    ("away_texts", {"fr": "Nous revenons lundi."}, {"fr": "Nous revenons lundi."}),
    ("reply_time_minutes", 1, 1),
    ("reply_time_minutes", 10080, 10080),
    ("color", "#ABCDEF", "#abcdef"),
    ("language", "fr", "fr"),
]

BAD: list[tuple[str, Any, str]] = [
    ("name", "", "''"),
    ("name", "x" * 101, "xxxx"),
    ("name", 42, "42"),
    ("origins", [], "at least one"),
    ("origins", "https://shop.example", "'https://shop.example'"),
    ("origins", ["shop.example"], "'shop.example'"),
    ("origins", ["https://shop.example/path"], "'https://shop.example/path'"),
    ("owner_emails", [], "at least one"),
    ("owner_emails", ["not-an-address"], "'not-an-address'"),
    ("owner_emails", ["a@b.example", 7], "7"),
    ("timezone", "Mars/Olympus_Mons", "'Mars/Olympus_Mons'"),
    ("timezone", "../../etc/passwd", "'../../etc/passwd'"),
    ("timezone", "", "''"),
    ("timezone", "localtime", "'localtime'"),  # the server's zone, whatever it is
    ("timezone", "posix/Europe/Paris", "'posix/Europe/Paris'"),
    ("timezone", "europe/paris", "'europe/paris'"),
    ("timezone", None, "None"),
    ("hours", {"mon": "22:00-02:00"}, "22:00-02:00"),
    ("hours", {"lundi": []}, "'lundi'"),
    ("hours", {"mon": [["9", "18"]]}, "'9'"),
    ("hours", ["weekdays 9-6"], "'weekdays'"),
    ("hours", "mon-fri 09:00-18:00", "expected an object"),
    ("closed_days", ["2026-02-30"], "'2026-02-30'"),
    ("closed_days", ["20261225"], "'20261225'"),
    ("closed_days", "2026-12-25", "'2026-12-25'"),
    ("greeting", "x" * 501, "got 501"),
    ("greeting", ["Hello"], "['Hello']"),
    ("greetings", {"de": "Hallo"}, "'de'"),
    ("greetings", "Bonjour", "'Bonjour'"),
    ("away_text", "y" * 501, "got 501"),
    ("away_texts", {"fr": "z" * 501}, "got 501"),
    ("reply_time_minutes", 0, "0"),
    ("reply_time_minutes", 10081, "10081"),
    ("reply_time_minutes", "30", "'30'"),
    ("reply_time_minutes", True, "True"),
    ("reply_time_minutes", 1.5, "1.5"),
    ("color", "red", "'red'"),
    ("color", "#12345", "'#12345'"),
    ("color", None, "None"),
    ("language", "de", "'de'"),
    ("language", None, "None"),
]


def kept(site: Site, field: str) -> Any:
    return (
        getattr(site, field)
        if field in ("name", "origins", "owner_emails")
        else site.settings[field]
    )


@pytest.mark.parametrize(("field", "sent", "expected"), GOOD)
def test_good_values_are_cleaned_and_applied(field: str, sent: Any, expected: Any) -> None:
    before = copy.deepcopy(SITE)
    changed = apply_changes(SITE, {field: sent})
    if expected is not None:
        assert kept(changed, field) == expected
    assert before == SITE  # a new Site; the old one is untouched
    assert changed.settings["identity_secret"] == SECRET
    assert changed.settings["reply_aliases"] == ["me@home.example"]
    assert changed.id == SITE.id and changed.created_at == SITE.created_at


@pytest.mark.parametrize(("field", "sent", "shown"), BAD)
def test_bad_values_are_refused_naming_field_and_value(field: str, sent: Any, shown: str) -> None:
    with pytest.raises(UnprocessableRequest) as refused:
        apply_changes(SITE, {field: sent})
    assert refused.value.status == 422
    assert f"'{field}'" in refused.value.message and shown in refused.value.message
    assert refused.value.reason == field  # the form can point at the field


def test_per_day_string_form_of_hours() -> None:
    changed = apply_changes(SITE, {"hours": {"mon": "9:00-12:00, 14:00-18:00"}})
    assert changed.settings["hours"]["mon"] == [["09:00", "12:00"], ["14:00", "18:00"]]
    assert changed.settings["hours"]["tue"] == []


def test_the_overnight_refusal_says_how_to_write_it() -> None:
    with pytest.raises(UnprocessableRequest) as refused:
        apply_changes(SITE, {"hours": {"fri": "22:00-02:00"}})
    assert "'mon 22:00-24:00' and 'tue 00:00-02:00'" in refused.value.message


def test_one_bad_field_changes_nothing() -> None:
    before = copy.deepcopy(SITE)
    with pytest.raises(UnprocessableRequest) as refused:
        apply_changes(
            SITE,
            {"name": "New name", "timezone": "Europe/Paris", "color": "blue", "language": "fr"},
        )
    assert "'color'" in refused.value.message and "'blue'" in refused.value.message
    assert before == SITE


@pytest.mark.parametrize("key", ["identity_secret", "reply_aliases", "availability", "id"])
def test_unknown_and_protected_keys_are_refused(key: str) -> None:
    with pytest.raises(UnprocessableRequest) as refused:
        apply_changes(SITE, {key: "attacker"})
    assert f"'{key}' is not a setting" in refused.value.message
    assert "timezone" in refused.value.message  # it lists what is accepted


def test_many_changes_at_once() -> None:
    changed = apply_changes(
        SITE,
        {
            "name": "Dupont",
            "timezone": "Europe/Paris",
            "hours": {"sat": "09:00-12:00"},
            "closed_days": ["2026-12-25"],
            "away_text": "Closed today.",
            "reply_time_minutes": 30,
            "language": "fr",
        },
    )
    assert changed.name == "Dupont"
    assert changed.settings["timezone"] == "Europe/Paris"
    assert changed.settings["hours"]["sat"] == [["09:00", "12:00"]]
    assert changed.settings["reply_time_minutes"] == 30
    assert changed.settings["greeting"] == "Hi"  # untouched fields stay
    cleared = apply_changes(changed, {"reply_time_minutes": None, "greetings": None})
    assert "reply_time_minutes" not in cleared.settings and cleared.settings["greetings"] == {}


def test_public_settings_fill_defaults_and_never_show_secrets() -> None:
    shown = public_settings(SITE)
    assert "identity_secret" not in shown and "reply_aliases" not in shown
    assert SECRET not in json.dumps(shown) and "me@home.example" not in json.dumps(shown)
    assert shown["greeting"] == "Hi" and shown["retention_days"] == 30
    assert shown["timezone"] == "UTC" and shown["hours"] == {} and shown["closed_days"] == []
    assert shown["reply_time_minutes"] is None
    assert set(DEFAULTS) <= set(shown)
    # It is a copy: editing it does not edit the site.
    shown["color"] = "#000000"
    assert SITE.settings["color"] == "#2f6f4e"
    bare = replace(SITE, settings={})
    assert public_settings(bare) == DEFAULTS
