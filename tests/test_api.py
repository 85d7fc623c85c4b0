"""The visitor API over real HTTP: what works, and every refusal changing nothing."""

from __future__ import annotations

import asyncio

import pytest

from tests.pg import BOTH_ENGINES
from tests.support import (
    ALPHA_ORIGIN,
    BETA_ORIGIN,
    NO_AVAILABILITY,
    RunningRelay,
    bearer,
    start_thread,
)

pytestmark = BOTH_ENGINES

S201_CREATED = 201
S200_REPLAYED = 200


async def test_site_config_is_public_and_has_no_owner_addresses(relay: RunningRelay) -> None:
    async with relay.client() as client:
        response = await client.get("/v1/sites/alpha/config")
    assert response.status_code == 200
    config = response.json()
    assert len(config.pop("push_key")) == 87  # the VAPID public key: tests/push/
    assert config == {
        "site": "alpha",
        "name": "Alpha Bakery",
        "greeting": "Hello!",
        "language": "en",
        "color": "#2f6f4e",
        "availability": NO_AVAILABILITY,
        "greetings": {},
        "channels": [],  # no messaging app connected
        "max_file_mb": 10,  # the largest attachment, for the widget to refuse early
        "max_message_mb": 25,
        "file_types": ["images", "pdf", "text", "office"],
    }
    assert "owner@" not in response.text
    assert response.headers["access-control-allow-origin"] == ALPHA_ORIGIN


async def test_start_thread_creates_visitor_thread_and_message(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(
            client,
            "Do you bake rye?",
            client_id="c-1",
            name="Ann",
            page="https://alpha.example/bread",
        )
    message = started["message"]
    assert message["body"] == "Do you bake rye?"
    assert message["author"] == "visitor" and message["via"] == "widget"
    assert message["client_id"] == "c-1"
    assert message["created_at"].endswith("Z")
    assert started["thread"]["id"] == message["thread"]
    assert relay.counts() == {"sites": 2, "visitors": 1, "threads": 1, "messages": 1}
    with relay.db() as db:
        visitor = db.execute("SELECT * FROM visitors").fetchone()
        thread = db.execute("SELECT * FROM threads").fetchone()
    assert visitor["name"] == "Ann" and visitor["site_id"] == "alpha"
    assert thread["page"] == "https://alpha.example/bread"


async def test_retried_start_returns_the_same_thread(relay: RunningRelay) -> None:
    cid = "5f0c8a54-3d8e-4c43-9a55-0c0d7c2b1f7e"  # what the widget sends: a UUID
    async with relay.client() as client:
        first = await start_thread(client, "Hi", client_id=cid)
        again = await client.post("/v1/sites/alpha/threads", json={"body": "Hi", "client_id": cid})
    assert again.status_code == S200_REPLAYED
    assert again.json()["message"]["seq"] == first["message"]["seq"]
    assert again.json()["thread"]["id"] == first["thread"]["id"]
    assert relay.counts()["messages"] == 1


async def test_guessable_start_id_does_not_hand_out_the_thread(relay: RunningRelay) -> None:
    async with relay.client() as client:
        first = await start_thread(client, "Mine", client_id="1")
        other = await start_thread(client, "Someone else", client_id="1")
    assert other["thread"]["id"] != first["thread"]["id"]
    assert other["token"] != first["token"]


async def test_page_from_another_origin_is_not_kept(relay: RunningRelay) -> None:
    async with relay.client() as client:
        kept = await start_thread(client, "a", page="https://alpha.example/cakes?x=1")
        dropped = await start_thread(client, "b", page="https://evil.example/phish")
    with relay.db() as db:
        pages = dict(db.execute("SELECT id, page FROM threads").fetchall())
    assert pages[kept["thread"]["id"]] == "https://alpha.example/cakes?x=1"
    assert pages[dropped["thread"]["id"]] is None


async def test_history_since_and_idempotent_send(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "one")
        auth = bearer(started["token"])
        sent = await client.post(
            "/v1/thread/messages", headers=auth, json={"body": "two", "client_id": "k2"}
        )
        retry = await client.post(
            "/v1/thread/messages", headers=auth, json={"body": "two", "client_id": "k2"}
        )
        history = await client.get("/v1/thread", headers=auth)
        after_first = await client.get(
            "/v1/thread", headers=auth, params={"since": started["message"]["seq"]}
        )
    assert sent.status_code == S201_CREATED
    assert retry.status_code == S200_REPLAYED and retry.json() == sent.json()
    bodies = [m["body"] for m in history.json()["messages"]]
    assert bodies == ["one", "two"]
    assert [m["body"] for m in after_first.json()["messages"]] == ["two"]
    assert relay.counts()["messages"] == 2


async def test_read_cursor_moves_forward_only(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client)
        thread = started["thread"]["id"]
        owner = bearer(relay.owner_token())
        reply = await client.post(
            f"/v1/owner/threads/{thread}/messages", headers=owner, json={"body": "Yes we do"}
        )
        seq = reply.json()["seq"]
        assert reply.json()["via"] == "api"  # the owner API, not the inbox page
        auth = bearer(started["token"])
        assert (
            await client.post("/v1/thread/read", headers=auth, json={"seq": seq})
        ).status_code == 204
        assert (
            await client.post("/v1/thread/read", headers=auth, json={"seq": 1})
        ).status_code == 204
        assert (
            await client.post("/v1/thread/read", headers=auth, json={"seq": 10**9})
        ).status_code == 204
        thread_json = (await client.get("/v1/thread", headers=auth)).json()["thread"]
    assert thread_json["visitor_read_seq"] == seq  # not moved back, not past the last message


async def test_messages_are_plain_text(relay: RunningRelay) -> None:
    hostile = "<img src=x onerror=alert(1)>\r\nline two\x00\x07"
    async with relay.client() as client:
        started = await start_thread(client, hostile)
    assert started["message"]["body"] == "<img src=x onerror=alert(1)>\nline two"


# -- refusals: each one gets its error and changes nothing ---------------------------


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "invalid_request"),
        (b"", 400, "invalid_request"),
        (b"[1, 2]", 400, "invalid_request"),
        (b'{"body": 42}', 422, "invalid_request"),
        (b'{"body": "   "}', 422, "invalid_request"),
        (b'{"body": "hi", "client_id": "has spaces"}', 422, "invalid_request"),
        (b'{"body": "hi", "name": ["x"]}', 422, "invalid_request"),
        (b'{"body": "' + b"x" * 4001 + b'"}', 413, "too_large"),
        (b"\xff\xfe", 400, "invalid_request"),
    ],
)
async def test_bad_start_is_refused(
    relay: RunningRelay, content: bytes, status: int, code: str
) -> None:
    before = relay.counts()
    async with relay.client() as client:
        response = await client.post(
            "/v1/sites/alpha/threads", content=content, headers={"content-type": "application/json"}
        )
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert response.json()["message"]
    assert relay.counts() == before


async def test_oversized_request_is_refused_before_reading(make_relay) -> None:  # type: ignore[no-untyped-def]
    relay = make_relay(max_request_bytes=1000)
    async with relay.client() as client:
        response = await client.post(
            "/v1/sites/alpha/threads", json={"body": "x", "page": "p" * 2000}
        )
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert relay.counts()["messages"] == 0


async def test_body_limit_is_configurable(make_relay) -> None:  # type: ignore[no-untyped-def]
    relay = make_relay(max_body_chars=10)
    async with relay.client() as client:
        ok = await client.post("/v1/sites/alpha/threads", json={"body": "0123456789"})
        too_long = await client.post("/v1/sites/alpha/threads", json={"body": "0123456789!"})
    assert ok.status_code == 201
    assert too_long.status_code == 413 and "limit is 10" in too_long.json()["message"]


async def test_unknown_site_and_route(relay: RunningRelay) -> None:
    async with relay.client(origin=None) as client:
        site = await client.post("/v1/sites/nope/threads", json={"body": "hi"})
        config = await client.get("/v1/sites/nope/config")
        route = await client.get("/v1/nothing-here")
    assert site.status_code == config.status_code == route.status_code == 404
    assert site.json()["error"] == route.json()["error"] == "not_found"
    assert relay.counts()["visitors"] == 0


async def test_wrong_origin_is_refused(relay: RunningRelay) -> None:
    async with relay.client(origin=BETA_ORIGIN) as client:
        start = await client.post("/v1/sites/alpha/threads", json={"body": "hi"})
        config = await client.get("/v1/sites/alpha/config")
    assert start.status_code == config.status_code == 403
    assert start.json()["error"] == "forbidden_origin"
    assert relay.counts()["messages"] == 0
    async with relay.client() as client:
        started = await start_thread(client)
    async with relay.client(origin="https://evil.example") as client:
        send = await client.post(
            "/v1/thread/messages", headers=bearer(started["token"]), json={"body": "from elsewhere"}
        )
    assert send.status_code == 403
    assert relay.counts()["messages"] == 1


async def test_cors_preflight(relay: RunningRelay) -> None:
    async with relay.client(origin=None) as client:
        allowed = await client.options(
            "/v1/thread/messages",
            headers={
                "origin": ALPHA_ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        refused = await client.options(
            "/v1/thread/messages",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ALPHA_ORIGIN
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic abc", "Bearer not-a-token", "Bearer eyJ2IjoidiIsInMiOiJhbHBoYSJ9.AAAA"],
)
async def test_bad_visitor_tokens(relay: RunningRelay, header: str | None) -> None:
    headers = {"authorization": header} if header else {}
    async with relay.client() as client:
        get = await client.get("/v1/thread", headers=headers)
        post = await client.post("/v1/thread/messages", headers=headers, json={"body": "x"})
    assert get.status_code == post.status_code == 401
    assert post.json()["error"] == "invalid_token"
    assert relay.counts()["messages"] == 0


async def test_token_of_site_a_is_refused_on_site_b(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client)
    # Forge: a validly signed visitor token claiming the alpha visitor on beta.
    visitor = started["thread"]["id"]  # any id: the claim is checked against the store
    forged = relay.tokens.visitor_token(visitor, "beta")
    with relay.db() as db:
        real_visitor = db.execute("SELECT id FROM visitors").fetchone()["id"]
    cross = relay.tokens.visitor_token(real_visitor, "beta")
    async with relay.client(origin=BETA_ORIGIN) as client:
        for token in (forged, cross):
            response = await client.post(
                "/v1/thread/messages", headers=bearer(token), json={"body": "x"}
            )
            assert response.status_code == 401, response.text
    assert relay.counts()["messages"] == 1


async def test_owner_token_is_not_a_visitor_token(relay: RunningRelay) -> None:
    async with relay.client() as client:
        response = await client.get("/v1/thread", headers=bearer(relay.owner_token()))
    assert response.status_code == 401


async def test_rate_limit_per_visitor(make_relay) -> None:  # type: ignore[no-untyped-def]
    relay = make_relay(visitor_messages_per_minute=3)
    async with relay.client() as client:
        started = await start_thread(client)
        auth = bearer(started["token"])
        statuses = [
            (await client.post("/v1/thread/messages", headers=auth, json={"body": f"m{i}"}))
            for i in range(4)
        ]
    assert [r.status_code for r in statuses] == [201, 201, 201, 429]
    refused = statuses[-1]
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert relay.counts()["messages"] == 4  # the start + 3


async def test_rate_limit_per_ip_and_threads_per_hour(make_relay) -> None:  # type: ignore[no-untyped-def]
    relay = make_relay(threads_per_ip_per_hour=2, ip_messages_per_minute=100)
    async with relay.client() as client:
        results = [
            await client.post("/v1/sites/alpha/threads", json={"body": "hi"}) for _ in range(3)
        ]
    assert [r.status_code for r in results] == [201, 201, 429]
    assert "per hour" in results[2].json()["message"]
    assert relay.counts()["threads"] == 2

    relay = make_relay(ip_messages_per_minute=3, visitor_messages_per_minute=100)
    async with relay.client() as client:
        a = await start_thread(client, "a")
        b = await start_thread(client, "b")
        ok = await client.post(
            "/v1/thread/messages", headers=bearer(a["token"]), json={"body": "1"}
        )
        refused = await client.post(
            "/v1/thread/messages", headers=bearer(b["token"]), json={"body": "2"}
        )
    assert ok.status_code == 201 and refused.status_code == 429
    assert "address" in refused.json()["message"]


async def test_health_and_readiness(relay: RunningRelay) -> None:
    async with relay.client(origin=None) as client:
        health, ready = await asyncio.gather(client.get("/healthz"), client.get("/readyz"))
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
