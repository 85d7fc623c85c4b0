"""`porch push keys` as an operator runs it, and the push settings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from relay.config import Config
from relay.errors import ConfigError
from tests.support import porch_command, porch_env

BASE64URL_KEY = re.compile(r"[A-Za-z0-9_-]{87}")


def porch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*porch_command(), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_push_keys_prints_one_public_key_made_once(tmp_path: Path) -> None:
    env = porch_env(tmp_path)
    first, again = porch("push", "keys", env=env), porch("push", "keys", env=env)
    assert first.returncode == 0, first.stderr
    assert BASE64URL_KEY.fullmatch(first.stdout.strip()) and first.stdout.count("\n") == 1
    assert again.stdout == first.stdout
    # another installation has another key
    other = porch("push", "keys", env=porch_env(tmp_path / "other"))
    assert BASE64URL_KEY.fullmatch(other.stdout.strip()) and other.stdout != first.stdout


def test_the_cli_loads_cryptography_only_for_push() -> None:
    """`porch --help` and every other command start without it (it is slow to import)."""
    probe = (
        "import sys; from relay.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith(('cryptography', 'relay.push'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_push_settings_are_read_and_normalised() -> None:
    config = Config.load(
        {
            "PORCH_PUSH_ENDPOINT_ALLOW": "http://127.0.0.1:8125, https://Push.Internal:443/",
            "PORCH_VISITOR_PUSH_DELAY": "0",
            "PORCH_PUSH_SUBJECT": "https://shop.example/contact",
        }
    )
    assert config.push_allow == frozenset({"http://127.0.0.1:8125", "https://push.internal"})
    assert config.visitor_push_delay == 0
    assert config.push_contact == "https://shop.example/contact"
    assert Config.load({}).visitor_push_delay == 60 and Config.load({}).push_allow == frozenset()


@pytest.mark.parametrize(
    ("env", "contact"),
    [
        ({"PORCH_MAIL_FROM": "hello@shop.example"}, "mailto:hello@shop.example"),
        ({"PORCH_REPLY_DOMAIN": "reply.shop.example"}, "mailto:notify@reply.shop.example"),
        ({"PORCH_PUBLIC_URL": "https://chat.shop.example/"}, "https://chat.shop.example"),
        ({"PORCH_PUBLIC_URL": "http://chat.shop.example"}, "mailto:notify@chat.shop.example"),
        ({}, "mailto:notify@127.0.0.1"),
    ],
)
def test_the_push_contact_has_a_default(env: dict[str, str], contact: str) -> None:
    assert Config.load(env).push_contact == contact


@pytest.mark.parametrize(
    "env",
    [
        {"PORCH_PUSH_ENDPOINT_ALLOW": "push.internal"},
        {"PORCH_PUSH_ENDPOINT_ALLOW": "https://push.internal/path"},
        {"PORCH_PUSH_ENDPOINT_ALLOW": "ftp://push.internal"},
        {"PORCH_PUSH_SUBJECT": "owner@shop.example"},
        {"PORCH_PUSH_SUBJECT": "mailto:not an address"},
        {"PORCH_PUSH_SUBJECT": "http://shop.example"},
        {"PORCH_VISITOR_PUSH_DELAY": "-1"},
        {"PORCH_VISITOR_PUSH_DELAY": "soon"},
    ],
)
def test_bad_push_settings_are_refused_naming_them(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as refused:
        Config.load(env)
    [(name, value)] = env.items()
    assert name in str(refused.value) and value in str(refused.value)
