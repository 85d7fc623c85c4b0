"""Acked means committed: kill -9 the relay under load, restart, find every acked
message exactly once."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import ALPHA, PorchProcess, free_port, porch_command, porch_env

VISITORS = 20
ACKED_BEFORE_KILL = 2000  # well into steady load, with sends still in flight


async def test_kill_9_loses_no_acked_message(tmp_path: Path) -> None:
    env = porch_env(
        tmp_path,
        visitor_messages_per_minute="100000",
        ip_messages_per_minute="100000",
        threads_per_ip_per_hour="100000",
    )
    subprocess.run(
        [
            *porch_command(),
            "site",
            "add",
            "--id",
            ALPHA.id,
            "--name",
            ALPHA.name,
            "--origin",
            ALPHA.origins[0],
            "--owner-email",
            ALPHA.owner_emails[0],
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    relay = await PorchProcess.start(env, port)
    acked: dict[str, int] = {}  # client_id -> seq, only what the relay acknowledged
    tokens: list[str] = []
    killed = asyncio.Event()
    under_load = asyncio.Event()  # set once enough sends were acknowledged
    async with httpx.AsyncClient(base_url=relay.url, timeout=10) as client:
        for v in range(VISITORS):
            response = await client.post(
                "/v1/sites/alpha/threads", json={"body": "start", "client_id": f"v{v}-start"}
            )
            assert response.status_code == 201
            tokens.append(response.json()["token"])
            acked[f"v{v}-start"] = response.json()["message"]["seq"]

        async def visitor(v: int) -> None:
            """Send over the socket, pipelined, until the relay dies under us."""
            try:
                async with connect(f"ws://127.0.0.1:{port}/v1/live") as ws:
                    await ws.send(json.dumps({"type": "hello", "token": tokens[v]}))
                    i = 0
                    while not killed.is_set():
                        for _ in range(5):
                            await ws.send(
                                json.dumps(
                                    {"type": "send", "body": f"{v}/{i}", "client_id": f"v{v}-{i}"}
                                )
                            )
                            i += 1
                        while True:
                            frame = json.loads(await ws.recv())
                            if frame["type"] == "ack":
                                acked[frame["client_id"]] = frame["seq"]
                                if len(acked) >= ACKED_BEFORE_KILL:
                                    under_load.set()
                                if frame["client_id"] == f"v{v}-{i - 1}":
                                    break
            except (ConnectionClosed, OSError):
                pass  # the kill

        sending = asyncio.gather(*(visitor(v) for v in range(VISITORS)))
        await asyncio.wait_for(under_load.wait(), timeout=60)
        await relay.kill()
        killed.set()
        await sending

    assert len(acked) >= ACKED_BEFORE_KILL
    relay = await PorchProcess.start(env, port)
    try:
        async with httpx.AsyncClient(base_url=relay.url, timeout=10) as client:
            stored: list[dict] = []
            for token in tokens:
                response = await client.get(
                    "/v1/thread", headers={"authorization": f"Bearer {token}"}
                )
                assert response.status_code == 200
                stored.extend(response.json()["messages"])
    finally:
        await relay.stop()
    by_client_id: dict[str, list[int]] = {}
    for message in stored:
        by_client_id.setdefault(message["client_id"], []).append(message["seq"])
    missing = [cid for cid in acked if cid not in by_client_id]
    doubled = [cid for cid, seqs in by_client_id.items() if len(seqs) > 1]
    assert not missing, f"{len(missing)} acked messages lost, e.g. {missing[:5]}"
    assert not doubled
    assert all(by_client_id[cid] == [seq] for cid, seq in acked.items())
