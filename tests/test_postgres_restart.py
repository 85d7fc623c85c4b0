"""PostgreSQL restarting under load: requests fail with 503 store_unavailable (clear,
retryable), nothing acknowledged is lost, and the relay recovers by itself.

The test runs a PostgreSQL server of its own (tests/pg.py `postgres`), so that it can
crash and restart it without touching the machine's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.pg import PgTestConnection, Postgres
from tests.support import ALPHA_ORIGIN, PorchProcess, add_site, bearer, free_port, porch_env

VISITORS = 8
ACKED_BEFORE_CRASH = 150
ACKED_AFTER_RESTART = 150


async def test_restart_under_load_gives_503_loses_nothing_and_recovers(
    postgres: Postgres, tmp_path: Path
) -> None:
    env = porch_env(
        tmp_path,
        database_url=postgres.url,
        visitor_messages_per_minute="100000",
        ip_messages_per_minute="100000",
        threads_per_ip_per_hour="100000",
    )
    add_site(env)
    relay = await PorchProcess.start(env, free_port())
    acked: dict[str, int] = {}  # client_id -> seq, what the relay acknowledged
    refusals: list[httpx.Response] = []
    crashed, restarted = asyncio.Event(), asyncio.Event()
    after_restart = 0
    try:
        async with httpx.AsyncClient(
            base_url=relay.url, headers={"origin": ALPHA_ORIGIN}, timeout=10
        ) as client:
            tokens = []
            for v in range(VISITORS):
                started = await client.post(
                    "/v1/sites/alpha/threads", json={"body": "start", "client_id": f"{v:016}"}
                )
                assert started.status_code == 201, started.text
                tokens.append(started.json()["token"])
                acked[f"{v:016}"] = started.json()["message"]["seq"]

            async def visitor(v: int) -> None:
                nonlocal after_restart
                i = 0
                while after_restart < ACKED_AFTER_RESTART:
                    client_id = f"v{v}-{i}"
                    response = await client.post(
                        "/v1/thread/messages",
                        headers=bearer(tokens[v]),
                        json={"body": f"{v}/{i}", "client_id": client_id},
                    )
                    if response.status_code in (200, 201):
                        acked[client_id] = response.json()["seq"]
                        i += 1  # the same client_id again until acknowledged
                        if restarted.is_set():
                            after_restart += 1
                        continue
                    assert response.status_code == 503, response.text
                    refusals.append(response)
                    await asyncio.sleep(float(response.headers["retry-after"]) / 20)

            async def operator() -> None:
                while len(acked) < ACKED_BEFORE_CRASH:
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(postgres.crash)
                crashed.set()
                while len(refusals) < VISITORS:  # every visitor was refused a while
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(postgres.start)
                restarted.set()

            async with asyncio.timeout(90):
                await asyncio.gather(operator(), *(visitor(v) for v in range(VISITORS)))
        assert relay.process.returncode is None  # recovered by itself, never restarted
    finally:
        await relay.kill()

    assert refusals and {r.json()["error"] for r in refusals} == {"store_unavailable"}
    assert all("Traceback" not in r.text for r in refusals)
    with PgTestConnection(postgres.url) as db:
        rows = db.execute("SELECT client_id, seq FROM messages").fetchall()
    stored = {row["client_id"]: row["seq"] for row in rows}
    assert len(stored) == len(rows)  # each client_id once: a retried send is not doubled
    missing = {cid for cid in acked if stored.get(cid) != acked[cid]}
    assert not missing, f"acknowledged but not stored as acked: {sorted(missing)[:5]}"
