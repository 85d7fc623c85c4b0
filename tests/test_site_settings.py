"""A site's settings (relay/sites/settings.py): every field cleaned or refused by name,
all or nothing, the identity secret never shown nor changed; and the one table they are
declared in agrees with everything derived from it or written by hand (README, CLI,
the inbox's form and its catalogue, the public config, the code that reads them)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from relay.catalogue import catalogue
from relay.cli.main import build_parser
from relay.errors import UnprocessableRequest
from relay.models import Site
from relay.sites import settings as site_settings
from relay.sites.settings import (
    AWAY_TEXT,
    DEFAULTS,
    GREETING,
    IDENTITY_SECRET,
    REPLY_TIME_MINUTES,
    SETTINGS,
    TIMEZONE,
    Setting,
    apply_changes,
    form_fields,
    public_config,
    public_settings,
)
from relay.web.openapi import document

ROOT = Path(__file__).resolve().parent.parent

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


# -- reading, with the declared defaults -------------------------------------------------


def test_settings_are_read_with_their_declared_defaults() -> None:
    bare = replace(SITE, settings={})
    assert TIMEZONE.of(bare) == "UTC" and TIMEZONE.of({"timezone": "Europe/Paris"}) == (
        "Europe/Paris"
    )
    assert REPLY_TIME_MINUTES.of(bare) is None and IDENTITY_SECRET.of(SITE) == SECRET
    assert site_settings.HOURS.of(bare) == {} and site_settings.COLOR.of(bare) == "#2f6f4e"
    assert site_settings.NAME.of(SITE) == "Shop"  # a column: the Site's own field
    # A default is a fresh copy: changing what was read changes no other read.
    site_settings.CLOSED_DAYS.of(bare).append("2026-12-25")
    assert site_settings.CLOSED_DAYS.of(bare) == []
    # Per language: that language's text, else the setting's own.
    assert GREETING.in_language(SITE, "fr") == "Salut" and GREETING.in_language(SITE, "en") == "Hi"
    assert AWAY_TEXT.in_language(bare, "fr") == "" and AWAY_TEXT.texts(bare) == {}


def test_the_public_config_holds_the_public_settings_only() -> None:
    config = public_config(SITE, {"open": True})
    assert config == {
        "site": "shop",
        "name": "Shop",
        "language": "en",
        "color": "#2f6f4e",
        "greeting": "Hi",
        "greetings": {"fr": "Salut"},
        "max_file_mb": 10,  # the widget refuses a bigger file before sending it
        "max_message_mb": 25,
        "file_types": ["images", "pdf", "text", "office"],  # the file chooser's `accept`
        "availability": {"open": True},
    }
    bare = public_config(replace(SITE, settings={}), {})
    assert (bare["greeting"], bare["greetings"], bare["language"]) == ("", {}, "en")


def test_secret_settings_are_in_no_form_no_view_and_no_schema() -> None:
    secret = {s.key for s in SETTINGS if s.secret}
    assert secret == {"identity_secret", "reply_aliases"}
    assert not secret & set(site_settings.FORM)
    assert not secret & {field["key"] for field in form_fields()}
    assert not secret & set(DEFAULTS)
    schemas = document()["components"]["schemas"]
    for name in ("SiteSettings", "SiteChanges", "SiteConfig"):
        assert not secret & set(schemas[name]["properties"]), name


# -- the table agrees with what is derived from it or written by hand --------------------


def test_every_setting_is_well_formed() -> None:
    texts = catalogue()
    for setting in SETTINGS:
        assert setting.help.endswith(".") and setting.key.isidentifier(), setting.key
        assert not (setting.public and setting.secret), setting.key
        assert (
            setting.secret or setting.column or setting.check(setting.default) == (setting.default)
        ), f"{setting.key}: its default does not pass its own checker"
        if setting.flag is not None:
            assert setting.flag.name.startswith("--"), setting.key
        if setting.form is not None:
            form = setting.form
            assert form.control in site_settings.CONTROLS and form.section in site_settings.SECTIONS
    for field in form_fields():  # every text the form shows, in every language
        keys = [field["label"], field["hint"], field["invalid"], f"site.section_{field['section']}"]
        keys += [language["label"] for language in field.get("texts", {}).get("languages", [])]
        keys += [f"{field['options']}{value}" for value in field["schema"].get("enum", [])]
        for key in filter(None, keys):
            for language, catalogue_texts in texts.items():
                assert f"inbox.{key}" in catalogue_texts, f"inbox.{key} missing in {language}"
    assert set(site_settings.LANGUAGE_NAMES) >= set(site_settings.VARIANT_LANGUAGES)


def readme_row(setting: Setting[Any]) -> str:
    """The README's line for a setting: paste it from a failure here."""
    keys = f"`{setting.key}`" + (f", `{setting.texts_key}`" if setting.per_language else "")
    every = [*site_settings.flags("add"), *site_settings.flags("set")]
    flags = dict.fromkeys(name for name, declared, _ in every if declared is setting)
    shown_flags = ", ".join(f"`{name}`" for name in flags) or "—"
    default = "required" if setting.column else f"`{json.dumps(setting.default)}`"
    notes = [setting.help]
    if setting.public:
        notes.append("Public.")
    if setting.secret:
        notes.append("Secret.")
    elif setting.form is None:
        notes.append("Not in the inbox's form.")
    return f"| {keys} | {shown_flags} | {default} | {' '.join(notes)} |"


def test_every_setting_is_in_the_readme_table() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Site settings", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    expected = [readme_row(setting) for setting in SETTINGS]
    missing = [row for row in expected if row not in rows]
    assert not missing, "README's Site settings table lacks or differs:\n" + "\n".join(missing)
    assert len(rows) == len(expected), "README documents a setting that is not declared"


def help_of(*command: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    return " ".join(out.getvalue().split())


@pytest.mark.parametrize("command", ["add", "set"])
def test_every_setting_flag_is_in_the_cli_help(command: str) -> None:
    shown = help_of("site", command)
    for flag_name, setting, _ in site_settings.flags(command):
        assert flag_name in shown, f"porch site {command} --help lacks {flag_name}"
        assert " ".join(setting.help.split()) in shown, f"{flag_name}: its help is missing"
    declared = {s.key for s in SETTINGS if s.flag is not None and command in s.flag.commands}
    assert declared >= {"name", "origins", "owner_emails", "greeting", "language", "color"}


# A read of a stored setting by its key: settings.get("x"), settings["x"], and the same
# on json.loads(...) of the column.
RAW_READ = re.compile(r"""settings\)?\s*(?:\.get\(\s*|\[\s*)["'](\w+)["']""")
# Being rewritten by another change; these reads move to SETTING.of(site) there.
RAW_READS_ALLOWED = ("relay/store/",)


def test_every_setting_read_is_declared_and_goes_through_the_table() -> None:
    declared = set(site_settings.checkers(SETTINGS))
    undeclared, raw = [], []
    for path in sorted((ROOT / "relay").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for key in RAW_READ.findall(line):
                if key not in declared:
                    undeclared.append(f"{name}:{number}: {key!r}")
                if not name.startswith(RAW_READS_ALLOWED):
                    raw.append(f"{name}:{number}: read {key!r} with {key.upper()}.of(site)")
    assert not undeclared, "settings read but not declared in relay/sites/settings.py:\n" + (
        "\n".join(undeclared)
    )
    assert not raw, "\n".join(raw)


def test_the_read_check_sees_reads() -> None:
    found = RAW_READ.findall(
        'a = site.settings.get("x") or s.settings["y"]; z = json.loads(settings).get("w")'
    )
    assert found == ["x", "y", "w"]
