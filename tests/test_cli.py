"""The `porch` command as a user runs it: subprocesses, real files, real relay."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from relay.tokens import Tokens
from tests.support import PorchProcess, free_port, open_live_url, porch_command, porch_env


def porch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*porch_command(), *args], env=env, capture_output=True, text=True, timeout=60
    )


OWNER_EMAIL = "o@shop.example"


def add_shop(env: dict[str, str]) -> None:
    result = porch(
        "site",
        "add",
        "--id",
        "shop",
        "--name",
        "Shop",
        "--origin",
        "https://shop.example",
        "--owner-email",
        OWNER_EMAIL,
        env=env,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return porch_env(tmp_path)


def test_keygen_prints_a_usable_key(env: dict[str, str]) -> None:
    first, second = porch("keygen", env=env).stdout.strip(), porch("keygen", env=env).stdout.strip()
    assert len(first) >= 43 and first != second


def test_serve_refuses_without_a_key_and_says_how(env: dict[str, str]) -> None:
    del env["PORCH_SECRET_KEYS"]
    result = porch("serve", env=env)
    assert result.returncode == 2
    assert "PORCH_SECRET_KEYS" in result.stderr and "porch keygen" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_named(env: dict[str, str]) -> None:
    result = porch("serve", "--port", "eighty", env=env)
    assert result.returncode == 2
    assert "--port" in result.stderr and "'eighty'" in result.stderr
    env["PORCH_MAX_BODY_CHARS"] = "-5"
    result = porch("site", "list", env=env)
    assert result.returncode == 2 and "PORCH_MAX_BODY_CHARS" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["keygen"],
        ["serve"],
        ["demo"],
        ["site"],
        ["site", "add"],
        ["site", "list"],
        ["owner", "token"],
        ["owner", "login"],
        ["owner", "logout"],
        ["threads"],
        ["reply"],
        ["backup"],
    ],
)
def test_every_command_has_help(env: dict[str, str], command: list[str]) -> None:
    result = porch(*command, "--help", env=env)
    assert result.returncode == 0, result.stderr
    assert "usage: porch" in result.stdout


def test_site_add_prints_the_snippet_and_list_shows_it(env: dict[str, str]) -> None:
    result = porch(
        "site",
        "add",
        "--name",
        "Boulangerie Dupont",
        "--origin",
        "https://Dupont.example/",
        "--owner-email",
        "owner@dupont.example",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert (
        '<script src="http://127.0.0.1:8000/widget.js" data-site="boulangerie-dupont" '
        "async></script>"
    ) in result.stdout
    again = porch(
        "site",
        "add",
        "--name",
        "Boulangerie Dupont",
        "--origin",
        "https://dupont.example",
        "--owner-email",
        "owner@dupont.example",
        env=env,
    )
    assert 'data-site="boulangerie-dupont-2"' in again.stdout
    listing = porch("site", "list", env=env).stdout
    assert (
        "boulangerie-dupont\tBoulangerie Dupont\thttps://dupont.example\towner@dupont.example"
        in listing
    )


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--origin", "dupont.example", "--origin"),
        ("--origin", "https://dupont.example/shop", "--origin"),
        ("--owner-email", "not-an-address", "--owner-email"),
        ("--color", "red", "--color"),
        ("--id", "Has Spaces", "--id"),
        ("--language", "de", "--language"),
        ("--retention-days", "-1", "--retention-days"),
        ("--hours", "mon", "--hours"),
        ("--greeting-fr", "x" * 501, "--greeting-fr"),
    ],
)
def test_site_add_refuses_bad_values(
    env: dict[str, str], flag: str, value: str, named: str
) -> None:
    args = {"--name": "Shop", "--origin": "https://shop.example", "--owner-email": "o@shop.example"}
    args[flag] = value
    result = porch("site", "add", *[x for pair in args.items() for x in pair], env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"porch: {named}: "), result.stderr
    assert (value if len(value) < 80 else "501") in result.stderr
    assert "No sites yet" in porch("site", "list", env=env).stdout


def test_site_add_stores_what_it_always_did(env: dict[str, str]) -> None:
    add_shop(env)
    assert site_row(env) == {
        "name": "Shop",
        "owner_emails": [OWNER_EMAIL],
        "origins": ["https://shop.example"],
        "greeting": "",
        "greetings": {},
        "language": "en",
        "color": "#2f6f4e",
        "reply_aliases": [],
        "retention_days": 0,
    }


def test_site_add_takes_every_site_setting(env: dict[str, str]) -> None:
    result = porch(
        "site", "add", "--id", "shop", "--name", "Shop", "--origin", "https://shop.example",
        "--owner-email", "Owner@Shop.example", "--alias", "Me@Home.example",
        "--timezone", "Europe/Paris", "--hours", "mon-fri 09:00-18:00",
        "--closed-day", "2026-12-25", "--reply-time", "45", "--greeting-fr", "Salut",
        "--away-text-fr", "Fermé.", "--retention-days", "30", "--language", "fr",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = site_row(env)
    assert row["owner_emails"] == ["owner@shop.example"]
    assert row["reply_aliases"] == ["me@home.example"]
    assert row["timezone"] == "Europe/Paris" and row["closed_days"] == ["2026-12-25"]
    hours = row["hours"]
    assert isinstance(hours, dict) and hours["fri"] == [["09:00", "18:00"]] and hours["sat"] == []
    assert row["reply_time_minutes"] == 45 and row["retention_days"] == 30
    assert row["greeting"] == "" and row["greetings"] == {"fr": "Salut"}
    assert row["away_texts"] == {"fr": "Fermé."} and row["language"] == "fr"


def test_site_set_changes_retention_but_not_aliases(env: dict[str, str]) -> None:
    add_shop(env)
    result = porch("site", "set", "shop", "--retention-days", "7", env=env)
    assert result.returncode == 0, result.stderr
    assert site_row(env)["retention_days"] == 7
    aliases = porch("site", "set", "shop", "--alias", "me@home.example", env=env)
    assert aliases.returncode == 2 and "--alias" in aliases.stderr
    assert site_row(env)["reply_aliases"] == []


def test_owner_token_needs_a_known_site(env: dict[str, str]) -> None:
    result = porch("owner", "token", "--site", "ghost", env=env)
    assert result.returncode == 1 and "ghost" in result.stderr


def test_owner_login_prints_a_working_link_for_owners_only(env: dict[str, str]) -> None:
    add_shop(env)
    stranger = porch("owner", "login", "nobody@example.com", env=env)
    assert stranger.returncode == 1 and "nobody@example.com" in stranger.stderr
    assert stranger.stdout == ""
    result = porch("owner", "login", OWNER_EMAIL.upper(), env=env)
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip()
    assert link.startswith("http://127.0.0.1:8000/inbox/#login=")
    claim = Tokens((env["PORCH_SECRET_KEYS"],)).read_login(link.split("#login=", 1)[1])
    assert claim.email == OWNER_EMAIL


async def test_owner_logout_ends_every_session(env: dict[str, str]) -> None:
    add_shop(env)
    port = free_port()
    env["PORCH_PORT"] = str(port)
    relay = await PorchProcess.start(env, port)
    try:
        async with httpx.AsyncClient(base_url=relay.url, headers={"origin": relay.url}) as page:
            for _ in range(2):
                link = porch("owner", "login", OWNER_EMAIL, env=env).stdout.strip()
                token = link.split("#login=", 1)[1]
                opened = await page.post("/inbox/api/session", json={"token": token})
                assert opened.status_code == 200, opened.text
            assert (await page.get("/inbox/api/session")).status_code == 200
            result = await asyncio.to_thread(porch, "owner", "logout", OWNER_EMAIL, env=env)
            assert result.returncode == 0 and "2 inbox session(s)" in result.stdout
            assert (await page.get("/inbox/api/session")).status_code == 401
    finally:
        await relay.stop()


async def test_threads_and_reply_through_the_running_relay(env: dict[str, str]) -> None:
    add_shop(env)
    port = free_port()
    env["PORCH_PORT"] = str(port)
    relay = await PorchProcess.start(env, port)
    try:
        token = porch("owner", "token", "--site", "shop", env=env).stdout.strip()
        async with httpx.AsyncClient(base_url=relay.url) as client:
            started = (
                await client.post(
                    "/v1/sites/shop/threads", json={"body": "Open on Sunday?", "name": "Zoé"}
                )
            ).json()
            thread = started["thread"]["id"]
            listing = (await asyncio.to_thread(porch, "threads", env=env)).stdout
            assert thread in listing and "Zoé" in listing and "Open on Sunday?" in listing
            assert "unread 1" in listing
            result = await asyncio.to_thread(porch, "reply", thread, "Yes, 8 to 12.", env=env)
            assert result.returncode == 0, result.stderr
            history = (
                await client.get(
                    "/v1/owner/threads/" + thread, headers={"authorization": f"Bearer {token}"}
                )
            ).json()
        assert [m["body"] for m in history["messages"]] == ["Open on Sunday?", "Yes, 8 to 12."]
        assert history["messages"][1]["author"] == "owner"
    finally:
        await relay.stop()
    missing = await asyncio.to_thread(porch, "reply", "t_nope", "hi", env=env)
    assert missing.returncode == 1 and "t_nope" in missing.stderr


def test_reply_says_when_the_relay_is_down(env: dict[str, str]) -> None:
    add_shop(env)
    import sqlite3

    # A thread exists in the store, but no relay listens on the configured port.
    env["PORCH_PORT"] = str(free_port())
    db = sqlite3.connect(Path(env["PORCH_DATA_DIR"]) / "porch.sqlite3")
    with db:
        db.execute(
            "INSERT INTO visitors (id, site_id, created_at, last_seen_at)"
            " VALUES ('v_1', 'shop', 't', 't')"
        )
        db.execute(
            "INSERT INTO threads (id, site_id, visitor_id, created_at, updated_at)"
            " VALUES ('t_1','shop','v_1','t','t')"
        )
    db.close()
    result = porch("reply", "t_1", "hello", env=env)
    assert result.returncode == 1
    assert "cannot reach the relay" in result.stderr and "Traceback" not in result.stderr


async def test_demo_creates_its_key_registers_the_site_and_prints_the_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORCH_")}
    port = free_port()
    data_dir = tmp_path / "d"
    process = await asyncio.create_subprocess_exec(
        *porch_command(),
        "demo",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        banner = [
            (await asyncio.wait_for(process.stdout.readline(), 15)).decode().strip()
            for _ in range(8)
        ]
        assert banner[0] == f"Porch demo running: http://127.0.0.1:{port}/"
        flags = f"--data-dir {data_dir} --port {port}"
        assert f"porch reply THREAD 'your text' {flags}" in banner
        inbox_link = next(line for line in banner if line.startswith("the owner's inbox: "))
        login_token = inbox_link.split("#login=", 1)[1]
        key_file = data_dir / "secret_key"
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        origin = f"http://localhost:{port}"
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"origin": origin}
        ) as client:
            page = await client.get("/")
            french = await client.get("/fr/")
            config = (await client.get("/v1/sites/demo/config")).json()
            started = (
                await client.post(
                    "/v1/sites/demo/threads",
                    json={"body": "Vous livrez ?", "page": f"{origin}/fr/", "language": "fr"},
                )
            ).json()
            inbox = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"origin": f"http://127.0.0.1:{port}"}
            )
            async with inbox:
                signed_in = await inbox.post("/inbox/api/session", json={"token": login_token})
        assert signed_in.status_code == 200, signed_in.text
        assert [site["id"] for site in signed_in.json()["sites"]] == ["demo"]
        assert page.status_code == 200 and 'data-site="demo"' in page.text
        assert french.status_code == 200 and 'lang="fr"' in french.text
        assert config["name"] == "Boulangerie Dupont" and config["greetings"]["fr"]
        # The demo bakery's FAQ answers at once, in the visitor's language (committed
        # with the question); the page says how to answer as the owner, and `porch
        # reply` works with the demo's own key.
        live = await open_live_url(
            f"ws://127.0.0.1:{port}/v1/live", started["token"], origin=origin
        )
        await live.ws.close()
        answered = [m for m in live.replayed if m["answer"]]
        assert [m["author"] for m in answered] == ["system"]
        assert answered[0]["body"].startswith("Nous ne livrons pas")
        assert "porch reply" in page.text and "/inbox" in page.text
        thread = started["thread"]["id"]
        answer = await asyncio.to_thread(
            porch, "reply", thread, "Oui, jusqu'à 19 h.", *flags.split(), env=env
        )
        assert answer.returncode == 0, answer.stderr
    finally:
        process.terminate()
        await process.wait()


def test_unusable_database_is_one_line(env: dict[str, str]) -> None:
    result = porch("threads", "--database", "/proc/no/such/dir/porch.sqlite3", env=env)
    assert result.returncode == 1
    assert "cannot open the database" in result.stderr and "Traceback" not in result.stderr


# -- porch site set --------------------------------------------------------------------


def site_row(env: dict[str, str], site: str = "shop") -> dict[str, object]:
    import json
    import sqlite3

    db = sqlite3.connect(Path(env["PORCH_DATA_DIR"]) / "porch.sqlite3")
    try:
        name, owners, origins, settings = db.execute(
            "SELECT name, owner_emails, origins, settings FROM sites WHERE id = ?", (site,)
        ).fetchone()
    finally:
        db.close()
    return {
        "name": name,
        "owner_emails": json.loads(owners),
        "origins": json.loads(origins),
        **json.loads(settings),
    }


def test_site_set_changes_every_setting_and_keeps_the_secret(env: dict[str, str]) -> None:
    add_shop(env)
    secret = porch("site", "secret", "shop", env=env).stdout.strip()
    env["PORCH_CLOCK_START"] = "2026-11-28T22:00:00Z"  # a Saturday night
    result = porch(
        "site", "set", "shop",
        "--name", "Boulangerie Dupont",
        "--timezone", "Europe/Paris",
        "--hours", "mon-fri 09:00-12:00, 14:00-18:00",
        "--hours", "sat 9:00-12:00",
        "--closed-day", "2026-12-25",
        "--closed-day", "2027-01-01",
        "--greeting", "Hello!",
        "--greeting-fr", "Bonjour !",
        "--away-text", "Back soon.",
        "--away-text-fr", "Bientôt de retour.",
        "--reply-time", "30",
        "--color", "#9A4D1C",
        "--language", "fr",
        "--origin", "https://dupont.example",
        "--origin", "https://www.dupont.example",
        "--owner-email", "Marie@Dupont.example",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Updated site 'shop'" in result.stdout
    # The relay's clock is on Saturday 23:00 in Paris: next opening on Monday morning.
    assert "closed now, opens Monday 2026-11-30 09:00" in result.stdout
    row = site_row(env)
    assert row["name"] == "Boulangerie Dupont"
    assert row["origins"] == ["https://dupont.example", "https://www.dupont.example"]
    assert row["owner_emails"] == ["marie@dupont.example"]
    assert row["timezone"] == "Europe/Paris"
    hours = row["hours"]
    assert isinstance(hours, dict)
    assert hours["mon"] == [["09:00", "12:00"], ["14:00", "18:00"]]
    assert hours["sat"] == [["09:00", "12:00"]] and hours["sun"] == []
    assert row["closed_days"] == ["2026-12-25", "2027-01-01"]
    assert row["greeting"] == "Hello!" and row["greetings"] == {"fr": "Bonjour !"}
    assert row["away_text"] == "Back soon." and row["away_texts"] == {"fr": "Bientôt de retour."}
    assert row["reply_time_minutes"] == 30
    assert row["color"] == "#9a4d1c" and row["language"] == "fr"
    assert row["identity_secret"] == secret
    assert porch("site", "secret", "shop", env=env).stdout.strip() == secret
    assert secret not in result.stdout + result.stderr


def test_site_set_changes_only_what_is_given(env: dict[str, str]) -> None:
    add_shop(env)
    porch("site", "set", "shop", "--greeting-fr", "Salut", "--reply-time", "20", env=env)
    before = site_row(env)
    result = porch("site", "set", "shop", "--away-text-fr", "Fermé.", env=env)
    assert result.returncode == 0, result.stderr
    assert "No business hours: always open." in result.stdout
    after = site_row(env)
    assert after == {**before, "away_texts": {"fr": "Fermé."}}
    # Clearing: no promised reply time, no French greeting, no hours, no closed days.
    porch("site", "set", "shop", "--hours", "mon 9:00-10:00", "--closed-day", "2026-12-25", env=env)
    cleared = porch(
        "site", "set", "shop", "--reply-time", "none", "--greeting-fr", "",
        "--hours", "always", "--closed-day", "none", env=env,
    )  # fmt: skip
    assert cleared.returncode == 0, cleared.stderr
    row = site_row(env)
    assert "reply_time_minutes" not in row and row["greetings"] == {}
    assert row["hours"] == {} and row["closed_days"] == []


@pytest.mark.parametrize(
    ("flag", "value", "shown"),
    [
        ("--timezone", "Mars/Olympus", "'Mars/Olympus'"),
        ("--hours", "mon-fri 22:00-02:00", "'mon 22:00-24:00' and 'tue 00:00-02:00'"),
        ("--hours", "weekdays 09:00-18:00", "'weekdays'"),
        ("--hours", "mon 9-18", "'9'"),
        ("--closed-day", "25/12/2026", "'25/12/2026'"),
        ("--reply-time", "0", "0"),
        ("--reply-time", "soon", "'soon'"),
        ("--reply-time", "10081", "10081"),
        ("--reply-time", "²", "'²'"),  # a digit to str.isdigit(), not to int()
        ("--reply-time", "٣٠", "'٣٠'"),
        ("--reply-time", "9" * 5000, "'99999"),  # past int()'s 4,300 digits
        ("--color", "red", "'red'"),
        ("--language", "de", "'de'"),
        ("--origin", "dupont.example", "'dupont.example'"),
        ("--owner-email", "not-an-address", "'not-an-address'"),
        ("--away-text", "x" * 501, "501"),
        ("--greeting-fr", "x" * 501, "501"),
        ("--name", " ", "' '"),
        ("--retention-days", "soon", "'soon'"),
    ],
)
def test_site_set_refuses_bad_values_naming_the_flag(
    env: dict[str, str], flag: str, value: str, shown: str
) -> None:
    add_shop(env)
    before = site_row(env)
    # A good change alongside the bad one: nothing at all is applied.
    result = porch("site", "set", "shop", "--name", "Changed", flag, value, env=env)
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith(f"porch: {flag}: "), result.stderr
    assert shown in result.stderr and "Traceback" not in result.stderr
    assert site_row(env) == before


def test_site_set_needs_a_known_site_and_a_change(env: dict[str, str]) -> None:
    add_shop(env)
    missing = porch("site", "set", "ghost", "--name", "Ghost", env=env)
    assert missing.returncode == 1 and "no site 'ghost'" in missing.stderr
    nothing = porch("site", "set", "shop", env=env)
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    assert "--hours" in nothing.stderr
    helped = porch("site", "set", "--help", env=env)
    assert helped.returncode == 0 and "mon-fri 09:00-18:00" in helped.stdout
