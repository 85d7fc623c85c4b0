"""Continuing on another device: emailed single-use resume links, and signing out
everywhere (HTTP and open sockets)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from relay.errors import InvalidToken
from relay.tokens import Tokens
from tests.mail.smtp_sink import SinkServer
from tests.pg import BOTH_ENGINES
from tests.support import (
    ALPHA_ORIGIN,
    BETA_ORIGIN,
    SECRET,
    RunningRelay,
    bearer,
    open_live,
    start_thread,
)

pytestmark = BOTH_ENGINES

LINK = re.compile(r"(https?://\S+)#porch=(\S+)")


@pytest.fixture
def relay(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> RunningRelay:
    return make_relay(smtp_url=sink.url, reply_domain="reply.example", owner_notify_delay=3600)


async def ask_link(
    relay: RunningRelay, sink: SinkServer, token: str, email: str = "ann@example.com"
) -> tuple[str, str]:
    async with relay.client() as client:
        response = await client.post(
            "/v1/thread/resume-link",
            headers=bearer(token),
            json={"email": email, "page": f"{ALPHA_ORIGIN}/cakes?size=2#menu"},
        )
    assert response.status_code == 202, response.text
    mail = await sink.sink.next()
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = LINK.search(body)
    assert found is not None, body
    return found.group(1), found.group(2)


async def test_link_adopts_the_thread_once_and_confirms_the_address(
    relay: RunningRelay, sink: SinkServer
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "From my laptop")
        unconfirmed = await client.get("/v1/thread", headers=bearer(started["token"]))
    assert unconfirmed.json()["email_confirmed"] is False
    page, token = await ask_link(relay, sink, started["token"])
    assert page == f"{ALPHA_ORIGIN}/cakes?size=2"  # the page they were on, fragment gone
    async with relay.client() as phone:
        adopted = await phone.post("/v1/resume", json={"token": token})
        assert adopted.status_code == 200
        assert adopted.json()["thread"]["id"] == started["thread"]["id"]
        new_token = adopted.json()["token"]
        history = await phone.get("/v1/thread", headers=bearer(new_token))
        again = await phone.post("/v1/resume", json={"token": token})
    assert [m["body"] for m in history.json()["messages"]] == ["From my laptop"]
    assert history.json()["email_confirmed"] is True  # the widget stops asking for it
    assert again.status_code == 401 and again.json()["reason"] == "used"
    with relay.db() as db:
        visitor = db.execute("SELECT email, email_verified_at FROM visitors").fetchone()
    assert visitor["email"] == "ann@example.com" and visitor["email_verified_at"]


async def test_unconfirmed_address_gets_one_link(relay: RunningRelay, sink: SinkServer) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "hi")
    await ask_link(relay, sink, started["token"])
    async with relay.client() as client:
        second = await client.post(
            "/v1/thread/resume-link",
            headers=bearer(started["token"]),
            json={"email": "ann@example.com"},
        )
    assert second.status_code == 429 and "confirms the address" in second.json()["message"]
    assert sink.sink.empty()


@pytest.mark.parametrize("mangle", [lambda t: t[:-2], lambda t: "x" + t[1:]])
async def test_tampered_link_is_refused(relay: RunningRelay, sink: SinkServer, mangle: Any) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "hi")
    _, token = await ask_link(relay, sink, started["token"])
    before = relay.counts()
    async with relay.client() as client:
        response = await client.post("/v1/resume", json={"token": mangle(token)})
    assert response.status_code == 401 and response.json()["reason"] == "invalid"
    assert relay.counts() == before


async def test_link_of_another_site_is_refused(relay: RunningRelay, sink: SinkServer) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "hi")
    _, token = await ask_link(relay, sink, started["token"])
    async with relay.client(origin=BETA_ORIGIN) as client:
        response = await client.post("/v1/resume", json={"token": token})
    assert response.status_code == 401 and response.json()["reason"] == "other_site"
    async with relay.client() as client:  # refused without being spent
        assert (await client.post("/v1/resume", json={"token": token})).status_code == 200


def test_expired_link_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = Tokens((SECRET,))
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 31 * 60)  # issued 31 minutes ago
    token = tokens.resume_token("v_1", "alpha", "ann@example.com")
    monkeypatch.setattr(time, "time", real_time)
    with pytest.raises(InvalidToken) as refused:
        tokens.read_resume(token)
    assert refused.value.reason == "expired"


async def test_sign_out_everywhere_stops_tokens_and_sockets(
    relay: RunningRelay, sink: SinkServer
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "hi")
        live = await open_live(relay, started["token"])
        out = await client.post(
            "/v1/thread/sign-out", headers=bearer(started["token"]), json={"everywhere": True}
        )
        assert out.status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            await live.next(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        after = await client.get("/v1/thread", headers=bearer(started["token"]))
    assert after.status_code == 401
