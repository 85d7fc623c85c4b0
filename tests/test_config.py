"""Settings: parsed from the environment, checked, named in errors, documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relay.config import FIELDS, Config, env_var
from relay.errors import ConfigError

README = Path(__file__).resolve().parent.parent / "README.md"


def test_environment_is_read() -> None:
    key = "k" * 40
    config = Config.load(
        {
            "PORCH_PORT": "9000",
            "PORCH_SECRET_KEYS": f"{key}, {'o' * 40}",
            "PORCH_DATA_DIR": "/tmp/x",
        }
    )
    assert config.port == 9000
    assert config.secret_keys == (key, "o" * 40)
    assert config.database_path == Path("/tmp/x/porch.sqlite3")
    assert config.base_url == "http://127.0.0.1:9000"


def test_overrides_win_over_environment() -> None:
    config = Config.load({"PORCH_PORT": "9000"}, port="9001")
    assert config.port == 9001


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORCH_PORT": "eighty"}, "PORCH_PORT"),
        ({"PORCH_PORT": "70000"}, "PORCH_PORT"),
        ({"PORCH_MAX_BODY_CHARS": "0"}, "PORCH_MAX_BODY_CHARS"),
        ({"PORCH_SECRET_KEYS": "short"}, "porch keygen"),
        ({"PORCH_SQLITE_SYNCHRONOUS": "OFF"}, "PORCH_SQLITE_SYNCHRONOUS"),
        ({"PORCH_PUBLIC_URL": "ftp://x"}, "PORCH_PUBLIC_URL"),
        ({"PORCH_LOG_LEVEL": "loud"}, "PORCH_LOG_LEVEL"),
    ],
)
def test_bad_values_are_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as error:
        Config.load(env)
    assert named in str(error.value)
    bad_value = next(iter(env.values()))
    assert bad_value in str(error.value) or named == "porch keygen"


def test_every_setting_is_in_the_readme_table() -> None:
    text = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(PORCH_[A-Z_]+)` \|", text, flags=re.M))
    declared = {env_var(name) for name in FIELDS}
    assert declared == documented, f"README settings table differs: {declared ^ documented}"
    for name, field in FIELDS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{env_var(name)}`"))
        assert field.metadata["help"] in row, f"README help for {env_var(name)} is stale"


def test_server_urls_are_checked_without_echoing_passwords() -> None:
    for env in (
        {"PORCH_SMTP_URL": "smtpx://user:hunter2@mail.example", "PORCH_REPLY_DOMAIN": "r.x"},
        {"PORCH_SMTP_URL": "smtp://user:hunter2@mail.example:port", "PORCH_REPLY_DOMAIN": "r.x"},
        {"PORCH_IMAP_URL": "imap://user:hunter2@", "PORCH_REPLY_DOMAIN": "r.x"},
    ):
        with pytest.raises(ConfigError) as error:
            Config.load(env)
        assert "hunter2" not in str(error.value)
        assert next(iter(env)) in str(error.value)


def test_email_needs_a_reply_domain() -> None:
    with pytest.raises(ConfigError) as error:
        Config.load({"PORCH_SMTP_URL": "smtp://mail.example"})
    assert "PORCH_REPLY_DOMAIN" in str(error.value)
