"""Behind a reverse proxy: `porch serve` takes the visitor's address from
X-Forwarded-For only when the connection comes from PORCH_FORWARDED_ALLOW_IPS, as the
per-address rate limits show (one new conversation per address here)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import ALPHA, ALPHA_ORIGIN, PorchProcess, add_site, free_port, porch_env

CREATED = 201
RATE_LIMITED = 429
CLOSED_RATE_LIMITED = 4429
# Documentation addresses (RFC 5737), as a proxy would send them.
VISITOR_A = "203.0.113.1"
VISITOR_B = "203.0.113.2"


@pytest.fixture
async def relay(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PorchProcess]:
    settings = {"threads_per_ip_per_hour": "1", "ip_messages_per_minute": "3"}
    settings.update(request.param)
    env = porch_env(tmp_path, **settings)
    add_site(env)
    process = await PorchProcess.start(env, free_port())
    try:
        yield process
    finally:
        await process.stop()


async def start(relay: PorchProcess, forwarded_for: str | None) -> httpx.Response:
    headers = {"origin": ALPHA_ORIGIN}
    if forwarded_for is not None:
        headers["x-forwarded-for"] = forwarded_for
    async with httpx.AsyncClient(base_url=relay.url, timeout=10) as client:
        return await client.post(
            f"/v1/sites/{ALPHA.id}/threads", json={"body": "Hello"}, headers=headers
        )


TRUSTED = pytest.mark.parametrize("relay", [{"forwarded_allow_ips": "127.0.0.1"}], indirect=True)
UNTRUSTED = pytest.mark.parametrize("relay", [{}], indirect=True)


@TRUSTED
async def test_trusted_proxy_gives_each_forwarded_address_its_own_budget(
    relay: PorchProcess,
) -> None:
    assert (await start(relay, VISITOR_A)).status_code == CREATED
    assert (await start(relay, VISITOR_A)).status_code == RATE_LIMITED
    assert (await start(relay, VISITOR_B)).status_code == CREATED
    # nginx's $proxy_add_x_forwarded_for appends the real address to what the visitor
    # sent: the relay takes the last address its proxy added, so a made-up first entry
    # buys no new budget.
    spoofed = await start(relay, f"198.51.100.7, {VISITOR_A}")
    assert spoofed.status_code == RATE_LIMITED


@UNTRUSTED
async def test_without_trusted_proxies_the_header_is_ignored(relay: PorchProcess) -> None:
    assert (await start(relay, VISITOR_A)).status_code == CREATED
    assert (await start(relay, VISITOR_B)).status_code == RATE_LIMITED
    assert (await start(relay, None)).status_code == RATE_LIMITED  # all one address


@TRUSTED
async def test_the_live_socket_sees_the_forwarded_address_too(relay: PorchProcess) -> None:
    """Live sends count against the address in the WebSocket handshake's header."""
    started = await start(relay, VISITOR_A)  # 1 of VISITOR_A's 3 messages a minute
    assert started.status_code == CREATED
    token = started.json()["token"]

    async def live_send(forwarded_for: str) -> str | int:
        """ "ack", or the code the relay closed the socket with."""
        async with connect(
            relay.url.replace("http://", "ws://") + "/v1/live",
            origin=ALPHA_ORIGIN,  # type: ignore[arg-type]
            additional_headers={"x-forwarded-for": forwarded_for},
        ) as ws:
            await ws.send(json.dumps({"type": "hello", "token": token}))
            await ws.send(json.dumps({"type": "send", "body": "hi", "client_id": str(uuid4())}))
            try:
                while json.loads(await ws.recv())["type"] != "ack":
                    pass
            except ConnectionClosed as closed:
                assert closed.rcvd is not None
                return closed.rcvd.code
            return "ack"

    assert [await live_send(VISITOR_A) for _ in range(3)] == ["ack", "ack", CLOSED_RATE_LIMITED]
    assert await live_send(VISITOR_B) == "ack"  # the same visitor, from another address
