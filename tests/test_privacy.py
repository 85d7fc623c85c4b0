"""The visitor's data: download it, erase it (nothing left in any table), retention."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.pg import BOTH_ENGINES
from tests.support import (
    RunningRelay,
    bearer,
    make_idle,
    open_live,
    porch_command,
    relay_env,
    start_thread,
)

pytestmark = BOTH_ENGINES

PERSONAL_TABLES = ("visitors", "threads", "messages", "outbox", "reply_tags", "suppressed")


def rows_left(relay: RunningRelay) -> dict[str, int]:
    with relay.db() as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in PERSONAL_TABLES}


async def conversation(relay: RunningRelay) -> dict[str, Any]:
    async with relay.client() as client:
        started = await start_thread(client, "My order: 2 baguettes", name="Ann")
        await client.post(
            "/v1/thread/contact",
            headers=bearer(started["token"]),
            json={"email": "ann@example.com"},
        )
        await client.post(
            f"/v1/owner/threads/{started['thread']['id']}/messages",
            headers=bearer(relay.owner_token()),
            json={"body": "Ready at 8"},
        )
    return started


async def test_export_matches_the_thread(relay: RunningRelay) -> None:
    started = await conversation(relay)
    async with relay.client() as client:
        data = await client.get("/v1/thread/export", headers=bearer(started["token"]))
        text = await client.get(
            "/v1/thread/export", params={"format": "text"}, headers=bearer(started["token"])
        )
        history = await client.get("/v1/thread", headers=bearer(started["token"]))
    assert data.status_code == 200 and "attachment" in data.headers["content-disposition"]
    exported = data.json()
    assert exported["visitor"]["name"] == "Ann"
    assert exported["visitor"]["email"] == "ann@example.com"
    assert exported["threads"][0]["messages"] == history.json()["messages"]
    assert "You, " in text.text and "My order: 2 baguettes" in text.text
    assert "Alpha Bakery, " in text.text and "Ready at 8" in text.text


async def test_delete_leaves_no_row_and_tells_the_owner(relay: RunningRelay) -> None:
    started = await conversation(relay)
    owner = await open_live(relay, relay.owner_token(), origin=None)
    visitor = await open_live(relay, started["token"])
    async with relay.client() as client:
        erased = await client.delete("/v1/thread", headers=bearer(started["token"]))
        after = await client.get("/v1/thread", headers=bearer(started["token"]))
    assert erased.status_code == 204 and after.status_code == 401
    assert await owner.next("deleted") == {"type": "deleted", "thread": started["thread"]["id"]}
    with pytest.raises(ConnectionClosed) as closed:
        await visitor.next(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert rows_left(relay) == dict.fromkeys(PERSONAL_TABLES, 0)
    await owner.ws.close()


async def test_owner_commands_export_delete_and_purge(relay: RunningRelay) -> None:
    await conversation(relay)
    env = relay_env(relay)

    def porch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*porch_command(), *args], env=env, capture_output=True, text=True, timeout=30
        )

    exported = porch("visitor", "export", "ANN@example.com")
    assert exported.returncode == 0, exported.stderr
    assert (
        json.loads(exported.stdout)[0]["threads"][0]["messages"][0]["body"]
        == "My order: 2 baguettes"
    )
    # Retention: make the thread look idle for years, on a site that keeps 30 days.
    make_idle(relay, days=30)
    dry = porch("purge", "--dry-run")
    assert "would erase\talpha" in dry.stdout and rows_left(relay)["threads"] == 1
    assert porch("purge").returncode == 0
    assert rows_left(relay)["threads"] == 0 and rows_left(relay)["visitors"] == 0
    missing = porch("visitor", "delete", "ann@example.com")
    assert missing.returncode == 1 and "no visitor" in missing.stderr


async def test_cli_delete_erases_every_site(relay: RunningRelay) -> None:
    await conversation(relay)
    env = relay_env(relay)
    result = subprocess.run(
        [*porch_command(), "visitor", "delete", "ann@example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and "Erased 1 visitor(s) and 1 conversation(s)." in result.stdout
    assert rows_left(relay) == dict.fromkeys(PERSONAL_TABLES, 0)
    async with relay.client() as client:  # the running relay carries on
        assert (
            await client.post("/v1/sites/alpha/threads", json={"body": "new"})
        ).status_code == 201
