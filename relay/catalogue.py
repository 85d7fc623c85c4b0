"""The one message catalogue (widget/messages.json), read on the server side: emails
and automatic replies use its "server." keys, the inbox page its "inbox." keys."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from relay.assets import asset_dir

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(
        (asset_dir("widget") / "messages.json").read_text(encoding="utf-8")
    )
    return data


def language_or_default(language: Any) -> str:
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def text(key: str, language: str | None, **values: Any) -> str:
    """The text of `key` in this language (else English), with {names} filled in."""
    texts = catalogue()
    found = texts.get(language_or_default(language), {}).get(key)
    if found is None:
        found = texts[DEFAULT_LANGUAGE][key]
    return found.format(**values) if values else found


def section(prefix: str) -> dict[str, dict[str, str]]:
    """Every language's keys under `prefix` ("inbox."), without it."""
    return {
        language: {k[len(prefix) :]: v for k, v in texts.items() if k.startswith(prefix)}
        for language, texts in catalogue().items()
    }
