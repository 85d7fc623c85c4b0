"""A site's settings, each declared once below: its key, default, checker, help, and
whether it is per language, public or secret. Everything else is derived from the table:
the flags of `porch site add` and `porch site set` (relay/cli/main.py), the inbox's
settings form (its field list comes with GET /inbox/api/session), the widget's public
config, the OpenAPI schema, and the defaults code reads (`TIMEZONE.of(site)`). The
README's table is checked against it by tests/test_site_settings.py.

Changing settings: every field is checked before anything is applied; one bad value,
nothing changes. The secret ones are never shown nor changed by the inbox.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from relay.attachments.kinds import FAMILIES
from relay.catalogue import DEFAULT_LANGUAGE, LANGUAGES
from relay.errors import UnprocessableRequest
from relay.sites import checks
from relay.sites.hours import DAYS, Hours

if TYPE_CHECKING:
    from relay.models import Site

T = TypeVar("T")
DEFAULT_COLOR = "#2f6f4e"  # the widget's accent colour when a site sets none
# Per-language variants (`--greeting-fr`, the form's "Greeting (French)"): every language
# but the default one, whose text is the setting itself.
VARIANT_LANGUAGES = tuple(language for language in LANGUAGES if language != DEFAULT_LANGUAGE)
LANGUAGE_NAMES = {"en": "English", "fr": "French"}  # for the CLI's help, in English


# What site_form.js knows how to draw, and its fieldsets, in order.
CONTROLS = ("text", "lines", "select", "color", "paragraph", "timezone", "hours", "minutes")
SECTIONS = ("site", "look", "hours", "answers")


@dataclass(frozen=True)
class Form:
    """How the inbox's settings form edits a setting (relay/web/inbox/static/site_form.js)."""

    control: str  # one of CONTROLS
    section: str  # one of SECTIONS
    label: str  # catalogue key under "inbox."; per language, + "_en", "_fr"
    hint: str | None = None
    invalid: str | None = None  # what the page says of a value it cannot read
    options: str | None = None  # a select's option labels: this catalogue prefix + value


def _as_given(value: Any) -> Any:
    return value


def _minutes(value: str) -> int | str | None:
    """'none' clears; a few ASCII digits become a number (checked next); anything else
    is refused by the checker, as it is ("²".isdigit() is true, int() refuses it)."""
    if value == "none":
        return None
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else value


def _days(value: str) -> int | str:
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else value


def _none_clears(values: list[str]) -> list[str]:
    return [] if values == ["none"] else values


@dataclass(frozen=True)
class Flag:
    """How `porch site add` and `porch site set` take a setting."""

    name: str  # --reply-time; a per-language setting also has --reply-time-fr
    metavar: str
    usage: str = ""  # the flag's own syntax, said after the setting's help
    repeatable: bool = False  # given several times: the list (set: replaces it)
    read: Callable[[Any], Any] = _as_given  # what argparse read -> what the checker takes
    commands: tuple[str, ...] = ("add", "set")
    required: bool = False  # on `porch site add`


@dataclass(frozen=True)
class Setting(Generic[T]):
    key: str  # in site.settings (JSON), the inbox API and the form; a Site field if column
    default: T  # what code reads, and the inbox shows, while it is not set
    check: Callable[[Any], T]  # a clean value, or checks.BadValue
    help: str
    schema: dict[str, Any]  # JSON Schema of the stored value (OpenAPI)
    per_language: bool = False  # + `<key>s`: {"fr": ...}, the texts of other languages
    public: bool = False  # in the widget's public config (GET /v1/sites/{site}/config)
    secret: bool = False  # never shown by the inbox, never changed through the form
    column: bool = False  # a field of Site (name, origins, owner_emails), not of settings
    on_add: bool = False  # `porch site add` stores it, its default unless given
    form: Form | None = None
    flag: Flag | None = None

    def of(self, source: Site | Mapping[str, Any]) -> T:
        """The setting of a site (or of its settings as stored); the default if unset."""
        if self.column:
            value = getattr(source, self.key)
        else:
            stored = source if isinstance(source, Mapping) else source.settings
            value = stored.get(self.key)
        return copy.deepcopy(self.default) if value is None else cast(T, value)

    @property
    def texts_key(self) -> str:
        return f"{self.key}s"  # greeting -> greetings, away_text -> away_texts

    def texts(self, source: Site | Mapping[str, Any]) -> dict[str, str]:
        """A per-language setting's texts by language ({"fr": ...}), without the default's."""
        stored = source if isinstance(source, Mapping) else source.settings
        texts = stored.get(self.texts_key)
        return dict(texts) if isinstance(texts, dict) else {}

    def in_language(self, source: Site | Mapping[str, Any], language: str) -> str:
        return self.texts(source).get(language) or str(self.of(source) or "")


_TEXT = {"type": "string", "maxLength": checks.MAX_TEXT_CHARS}
_ADDRESSES = {"type": "array", "items": {"type": "string"}, "maxItems": checks.MAX_LIST_ITEMS}

NAME: Setting[str] = Setting(
    "name", "", checks.name, "The business's name, shown in the widget.",
    {"type": "string", "minLength": 1, "maxLength": checks.MAX_SITE_NAME_CHARS},
    public=True, column=True,
    form=Form("text", "site", "site.name"),
    flag=Flag("--name", "NAME", required=True),
)  # fmt: skip
ORIGINS: Setting[tuple[str, ...]] = Setting(
    "origins", (), checks.origins,
    "Origins whose pages may show the widget, like https://shop.example.",
    {**_ADDRESSES, "minItems": 1}, column=True,
    form=Form("lines", "site", "site.origins", hint="site.origins_hint"),
    flag=Flag("--origin", "URL", repeatable=True, required=True),
)  # fmt: skip
OWNER_EMAILS: Setting[tuple[str, ...]] = Setting(
    "owner_emails", (), checks.owner_emails,
    "Addresses that receive and answer the messages (the inbox adds, only the CLI removes).",
    {**_ADDRESSES, "minItems": 1}, column=True,
    form=Form("lines", "site", "site.owners", hint="site.owners_hint"),
    flag=Flag("--owner-email", "EMAIL", repeatable=True, required=True),
)  # fmt: skip
CONTACT_ADDRESSES: Setting[list[str]] = Setting(
    "contact_addresses", [], checks.aliases,
    "The business's public addresses (hello@…) forwarded to the relay's mail ingress: "
    "an email to one starts a conversation, answered by email.",
    _ADDRESSES,
    form=Form("lines", "site", "site.contact_addresses", hint="site.contact_addresses_hint"),
    flag=Flag("--contact-address", "EMAIL", repeatable=True),
)  # fmt: skip
LANGUAGE: Setting[str] = Setting(
    "language", DEFAULT_LANGUAGE, checks.language,
    "Default language of the widget and of automatic replies: en or fr.",
    {"enum": list(LANGUAGES)}, public=True, on_add=True,
    form=Form("select", "site", "site.language", options="language."),
    flag=Flag("--language", "|".join(LANGUAGES)),
)  # fmt: skip
COLOR: Setting[str] = Setting(
    "color", DEFAULT_COLOR, checks.color, "Accent colour of the widget, #rrggbb.",
    {"type": "string", "pattern": checks.COLOR.pattern}, public=True, on_add=True,
    form=Form("color", "look", "site.color"),
    flag=Flag("--color", "#RRGGBB"),
)  # fmt: skip
GREETING: Setting[str] = Setting(
    "greeting", "", checks.text, "First line visitors see.",
    _TEXT, per_language=True, public=True, on_add=True,
    form=Form("paragraph", "look", "site.greeting"),
    flag=Flag("--greeting", "TEXT", usage="'' clears."),
)  # fmt: skip
TIMEZONE: Setting[str] = Setting(
    "timezone", "UTC", checks.timezone, "Time zone of the business hours, like Europe/Paris.",
    {"type": "string"},
    form=Form("timezone", "hours", "site.timezone"),
    flag=Flag("--timezone", "ZONE"),
)  # fmt: skip
HOURS: Setting[Hours] = Setting(
    "hours", {}, checks.hours, "Weekly business hours; none: always open.",
    {
        "type": "object",
        "propertyNames": {"enum": list(DAYS)},
        "additionalProperties": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
        },
    },
    form=Form("hours", "hours", "site.hours", hint="site.hours_hint"),
    flag=Flag(
        "--hours", "'DAYS HH:MM-HH:MM'", repeatable=True,
        usage="Like --hours 'mon-fri 09:00-18:00' --hours 'sat 09:00-12:00, 14:00-16:00': days "
        "not named are closed; 'always': no business hours. A range ends on its own day: "
        "'fri 22:00-24:00' 'sat 00:00-02:00'.",
    ),
)  # fmt: skip
CLOSED_DAYS: Setting[list[str]] = Setting(
    "closed_days", [], checks.closed_days, "Days closed, in the site's time zone.",
    {"type": "array", "items": {"type": "string", "format": "date"}},
    form=Form("lines", "hours", "site.closed_days", hint="site.closed_days_hint"),
    flag=Flag("--closed-day", "YYYY-MM-DD", repeatable=True, read=_none_clears,
              usage="'none' clears."),
)  # fmt: skip
REPLY_TIME_MINUTES: Setting[int | None] = Setting(
    "reply_time_minutes", None, checks.reply_time_minutes,
    "The reply time you promise, in minutes, shown until replies are measured.",
    {"type": ["integer", "null"], "minimum": 1, "maximum": checks.MAX_REPLY_MINUTES},
    form=Form("minutes", "hours", "site.reply_time", hint="site.reply_time_hint",
              invalid="site.reply_time_invalid"),
    flag=Flag("--reply-time", "MINUTES", read=_minutes, usage="'none' clears."),
)  # fmt: skip
AWAY_TEXT: Setting[str] = Setting(
    "away_text", "", checks.text,
    "Shown to visitors outside business hours, and added to the automatic reply.",
    _TEXT, per_language=True,
    form=Form("paragraph", "hours", "site.away", hint="site.away_hint"),
    flag=Flag("--away-text", "TEXT"),
)  # fmt: skip
RETENTION_DAYS: Setting[int] = Setting(
    "retention_days", 0, checks.retention_days,
    "Erase conversations idle longer than this many days (0: keep them).",
    {"type": "integer", "minimum": 0, "maximum": checks.MAX_RETENTION_DAYS}, on_add=True,
    flag=Flag("--retention-days", "N", read=_days),
)  # fmt: skip
MB = 1_000_000  # of max_file_mb and max_message_mb: decimal, as phones and mail apps count
MAX_FILE_MB: Setting[int] = Setting(
    "max_file_mb", 10, checks.file_mb,
    "Largest photo or file a visitor or owner may attach, in megabytes (MB).",
    {"type": "integer", "minimum": 1, "maximum": checks.MAX_FILE_MB}, public=True,
    flag=Flag("--max-file-mb", "MB"),
)  # fmt: skip
MAX_MESSAGE_MB: Setting[int] = Setting(
    "max_message_mb", 25, checks.message_mb,
    "Largest total of the files of one message, in megabytes (MB).",
    {"type": "integer", "minimum": 1, "maximum": checks.MAX_MESSAGE_MB}, public=True,
    flag=Flag("--max-message-mb", "MB"),
)  # fmt: skip
FILE_TYPES: Setting[list[str]] = Setting(
    "file_types", list(FAMILIES), checks.file_types,
    f"Which files visitors and owners may attach, among: {', '.join(FAMILIES)}.",
    {"type": "array", "items": {"enum": list(FAMILIES)}, "minItems": 1}, public=True,
    flag=Flag("--file-type", "TYPE", repeatable=True),
)  # fmt: skip
SYNONYMS: Setting[list[str]] = Setting(
    "synonyms", [], checks.synonyms,
    "Words your customers use for the same thing, for automatic answers and suggestions: "
    "one group per line, separated by commas, like 'coeliac, gluten-free'.",
    {"type": "array", "items": {"type": "string"}, "maxItems": checks.MAX_SYNONYM_GROUPS},
    form=Form("lines", "answers", "site.synonyms", hint="site.synonyms_hint"),
    flag=Flag("--synonyms", "'WORD, WORD'", repeatable=True, read=_none_clears,
              usage="One group each time; 'none' clears."),
)  # fmt: skip
SENDER_CHECKS: Setting[str] = Setting(
    "sender_checks", "dmarc", checks.sender_checks,
    "Which emailed replies are held until you release them: dmarc (the sender's domain "
    "says to reject or quarantine unverified mail, and it could not be verified), strict "
    "(any reply that could not be verified) or off.",
    {"enum": list(checks.SENDER_CHECKS)},
    form=Form("select", "site", "site.sender_checks", hint="site.sender_checks_hint",
              options="sender_checks."),
    flag=Flag("--sender-checks", "|".join(checks.SENDER_CHECKS)),
)  # fmt: skip
REPLY_ALIASES: Setting[list[str]] = Setting(
    "reply_aliases", [], checks.aliases,
    "Other addresses the owners may reply from (owners now set theirs in the inbox).",
    _ADDRESSES, secret=True, on_add=True,
    flag=Flag("--alias", "EMAIL", repeatable=True, commands=("add",)),
)  # fmt: skip
IDENTITY_SECRET: Setting[str | None] = Setting(
    "identity_secret", None, checks.secret,
    "Key of the hashes that verify signed-in users; see `porch site secret`.",
    {"type": "string"}, secret=True,
)  # fmt: skip

SETTINGS: tuple[Setting[Any], ...] = (
    NAME,
    ORIGINS,
    OWNER_EMAILS,
    CONTACT_ADDRESSES,
    LANGUAGE,
    COLOR,
    GREETING,
    TIMEZONE,
    HOURS,
    CLOSED_DAYS,
    REPLY_TIME_MINUTES,
    AWAY_TEXT,
    RETENTION_DAYS,
    MAX_FILE_MB,
    MAX_MESSAGE_MB,
    FILE_TYPES,
    SYNONYMS,
    SENDER_CHECKS,
    REPLY_ALIASES,
    IDENTITY_SECRET,
)  # fmt: skip; the order of the form, the CLI's help and the README
BY_KEY = {setting.key: setting for setting in SETTINGS}


def checkers(settings: Iterable[Setting[Any]]) -> dict[str, Callable[[Any], Any]]:
    """JSON key -> checker, a per-language setting's texts included."""
    found: dict[str, Callable[[Any], Any]] = {}
    for setting in settings:
        found[setting.key] = setting.check
        if setting.per_language:
            found[setting.texts_key] = checks.texts
    return found


# What each way in may change: the inbox's form never touches a secret one.
FORM = checkers(s for s in SETTINGS if s.form is not None and not s.secret)
SITE_SET = checkers(s for s in SETTINGS if s.flag is not None and "set" in s.flag.commands)
SITE_ADD = checkers(s for s in SETTINGS if s.flag is not None and "add" in s.flag.commands)
# What an owner sees for a setting never set.
DEFAULTS: dict[str, Any] = {}
for _setting in SETTINGS:
    if not (_setting.secret or _setting.column):
        DEFAULTS[_setting.key] = _setting.default
        if _setting.per_language:
            DEFAULTS[_setting.texts_key] = {}


# -- applying ------------------------------------------------------------------------


def check_changes(
    changes: Mapping[str, Any], allowed: Mapping[str, Callable[[Any], Any]] = FORM
) -> dict[str, Any]:
    """Every change checked and cleaned; the first bad one raises UnprocessableRequest
    with reason = the field, so a form can point at it."""
    for key in changes:
        if key not in allowed:
            raise UnprocessableRequest(
                f"{key!r} is not a setting; expected some of {', '.join(allowed)}", reason=key
            )
    cleaned = {}
    for key, value in changes.items():
        try:
            cleaned[key] = allowed[key](value)
        except checks.BadValue as error:
            raise UnprocessableRequest(f"{key!r}: {error}", reason=key) from None
    return cleaned


def apply_changes(
    site: Site, changes: Mapping[str, Any], allowed: Mapping[str, Callable[[Any], Any]] = FORM
) -> Site:
    """A copy of `site` with the changes (`allowed`: the inbox's form, unless the CLI
    says otherwise); the site itself is untouched."""
    cleaned = check_changes(changes, allowed)
    columns = {s.key: cleaned.pop(s.key) for s in SETTINGS if s.column and s.key in cleaned}
    settings = {**site.settings, **cleaned}
    for setting in SETTINGS:  # unset, not stored as null: the default applies
        if setting.default is None and settings.get(setting.key, 0) is None:
            del settings[setting.key]
    return dataclasses.replace(site, settings=settings, **columns)


def public_settings(site: Site) -> dict[str, Any]:
    """What the inbox shows an owner: every setting, defaults filled in, no secrets."""
    shown: dict[str, Any] = {}
    for setting in SETTINGS:
        if not (setting.secret or setting.column):
            shown[setting.key] = copy.deepcopy(setting.of(site))
            if setting.per_language:
                shown[setting.texts_key] = setting.texts(site)
    return shown


def public_config(site: Site, availability: dict[str, Any]) -> dict[str, Any]:
    """What any page may read (never owner addresses). `availability` is
    relay.sites.availability.public_availability(...): it needs the clock and presence."""
    config: dict[str, Any] = {"site": site.id}
    for setting in SETTINGS:
        if setting.public:
            config[setting.key] = setting.of(site)
            if setting.per_language:  # the widget takes its language's, else the default
                config[setting.texts_key] = setting.texts(site)
    return {**config, "availability": availability}


# -- what others derive ------------------------------------------------------------------


def form_fields() -> list[dict[str, Any]]:
    """The inbox's settings form, field by field (GET /inbox/api/session: site_fields)."""
    fields = []
    for setting in SETTINGS:
        form = setting.form
        if form is None or setting.secret:
            continue
        field = {
            "key": setting.key,
            "control": form.control,
            "section": form.section,
            "label": f"{form.label}_{DEFAULT_LANGUAGE}" if setting.per_language else form.label,
            "hint": form.hint,
            "invalid": form.invalid,
            "options": form.options,
            "column": setting.column,
            "default": setting.default,
            "schema": setting.schema,
        }
        if setting.per_language:
            field["texts"] = {
                "key": setting.texts_key,
                "languages": [
                    {"language": language, "label": f"{form.label}_{language}"}
                    for language in VARIANT_LANGUAGES
                ],
            }
        fields.append(field)
    return fields


def json_schema(settings: Iterable[Setting[Any]]) -> dict[str, Any]:
    """The OpenAPI schema of an object holding these settings (texts included)."""
    properties: dict[str, Any] = {}
    for setting in settings:
        properties[setting.key] = {**setting.schema, "description": setting.help}
        if not setting.column and setting.default not in ((), None):
            properties[setting.key]["default"] = setting.default
        if setting.per_language:
            properties[setting.texts_key] = {
                "type": "object",
                "propertyNames": {"enum": list(LANGUAGES)},
                "additionalProperties": setting.schema,
                "description": f"{setting.key} per language; the default language's is "
                f"{setting.key}.",
            }
    return {"type": "object", "properties": properties}


def flags(command: str) -> Iterator[tuple[str, Setting[Any], str | None]]:
    """(flag, setting, language of a per-language variant or None) of `porch site
    add` or `porch site set`, in the table's order."""
    for setting in SETTINGS:
        if setting.flag is not None and command in setting.flag.commands:
            yield setting.flag.name, setting, None
            if setting.per_language:
                for language in VARIANT_LANGUAGES:
                    yield f"{setting.flag.name}-{language}", setting, language
