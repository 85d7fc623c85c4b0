"""`porch --help`, `porch site list` and `porch mail inspect` start without loading what
only other commands need (issue 20): the relay app, its servers, asyncpg, the mail
stack. Checked by the modules a real run has loaded, not by timing; the time itself is
tests/bench/cli.py's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import porch_command, porch_env

CORPUS = Path(__file__).resolve().parent / "mail" / "corpus"
EMAIL = CORPUS / "apple_mail_macos_en.eml"

# Runs the CLI as `python -m relay` does, then writes every module it loaded to argv[1],
# whatever way it ended (`--help` ends with SystemExit).
PROBE = """
import sys
from relay.cli.main import main
try:
    main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as file:
        file.write("\\n".join(sorted(sys.modules)))
"""

# Slow to import, or only for serving, PostgreSQL, answers, pushes or messaging apps.
SERVING = ("relay.app", "relay.web", "relay.conversations", "starlette", "uvicorn", "websockets")
ELSEWHERE = (
    "asyncpg",
    "httpx",
    "cryptography",
    "PIL",
    "babel",
    "snowballstemmer",
    "relay.answers",
    "relay.push",
    "relay.demo",
    "relay.channels.apps.providers",
)
MAIL_SERVERS = ("aiosmtpd", "aiosmtplib", "aioimaplib")
MAIL_READING = ("relay.channels.email", "inscriptis", "quotequail", "mailparser_reply", "flufl")
STORE = ("relay.store", "aiosqlite")


def loaded(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `porch ARGS` in a fresh interpreter; its result and the modules it loaded."""
    assert porch_command()[1:] == ["-m", "relay"]  # what PROBE stands for
    modules = tmp_path / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(modules), *args],
        env=porch_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, set(modules.read_text().split("\n"))


def among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """Those of `packages` that `modules` holds, themselves or any module inside."""
    return [
        package
        for package in packages
        if any(name == package or name.startswith(package + ".") for name in modules)
    ]


def test_help_loads_neither_the_store_nor_any_server(tmp_path: Path) -> None:
    done, modules = loaded(tmp_path, "--help")
    assert done.returncode == 0 and "usage: porch" in done.stdout, done.stderr
    assert "relay.cli.commands" in modules  # the probe saw the parser being built
    assert among(modules, SERVING + ELSEWHERE + MAIL_SERVERS + MAIL_READING + STORE) == []


def test_site_list_loads_the_sqlite_store_only(tmp_path: Path) -> None:
    done, modules = loaded(tmp_path, "site", "list")
    assert done.returncode == 0 and "No sites yet" in done.stdout, done.stderr
    assert {"relay.store.sqlite", "aiosqlite"} <= modules
    assert among(modules, SERVING + ELSEWHERE + MAIL_SERVERS + MAIL_READING) == []


def test_mail_inspect_loads_the_mail_reader_only(tmp_path: Path) -> None:
    done, modules = loaded(tmp_path, "mail", "inspect", str(EMAIL))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["kind"] == "reply"
    assert {"relay.channels.email.reading", "inscriptis", "quotequail"} <= modules
    assert among(modules, SERVING + ELSEWHERE + MAIL_SERVERS + STORE) == []


@pytest.mark.parametrize("url", ["", "postgresql://porch@127.0.0.1:1/none"])
def test_asyncpg_loads_only_for_a_postgresql_url(tmp_path: Path, url: str) -> None:
    """`porch migrate` on SQLite never imports asyncpg; given a PostgreSQL URL it must
    (here one nobody listens at: a one-line error, no traceback)."""
    (tmp_path / "data").mkdir()  # migrate makes the database file, not its directory
    done, modules = loaded(tmp_path, "migrate", *(["--database-url", url] if url else []))
    if url:
        assert done.returncode == 1 and "cannot migrate the database" in done.stderr
        assert "Traceback" not in done.stderr
    else:
        assert done.returncode == 0, done.stderr
    assert ("asyncpg" in modules) == bool(url)
