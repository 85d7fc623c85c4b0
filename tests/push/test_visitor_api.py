"""A visitor's devices (relay/web/push.py), on both engines: subscribed with what a
browser's PushSubscription gives, checked before anything is kept, forgotten one by one
or all at once (and on "sign out everywhere"), only ever the visitor's own, listed in
their export without what pushes to them; the key to subscribe with in the site's public
config; the service worker a site imports, and whether a site serves it (the relay
fetches it from a site played on loopback)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from relay.tokens import Tokens
from relay.web.push import NOT_SERVED_TTL, SERVED_TTL
from tests.fakes.push_service import Device, FakePushService
from tests.fakes.server import WAIT_TIMEOUT, LoopbackServer
from tests.pg import BOTH_ENGINES
from tests.support import (
    BETA_ORIGIN,
    SECRET,
    RunningRelay,
    bearer,
    porch_command,
    relay_env,
    start_thread,
    tampered,
)

pytestmark = BOTH_ENGINES
TOKENS = Tokens((SECRET,))  # the relays' keys

CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36 (and a long tail some browsers add)"
)


@pytest.fixture
def relay(make_relay: Callable[..., RunningRelay], push_service: FakePushService) -> RunningRelay:
    """Pushes may go to the fake push service (plain http on loopback), nowhere else."""
    return make_relay(push_endpoint_allow=(push_service.origin,))


def subscription(device: Device, **changes: Any) -> dict[str, Any]:
    return {**device.to_json(), **changes}


def rows(relay: RunningRelay) -> list[dict[str, Any]]:
    with relay.db() as db:
        found = db.execute(
            "SELECT id, site_id, endpoint, p256dh, auth, visitor_id, owner_email, user_agent"
            " FROM push_subscriptions ORDER BY created_at, id"
        ).fetchall()
    return [dict(row) for row in found]


async def visitor(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """A new visitor's id, and the header that carries their token."""
    token = (await start_thread(client))["token"]
    return TOKENS.read_visitor(token).visitor, bearer(token)


async def test_a_device_is_kept_for_the_visitor(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    device = push_service.new_subscription()
    async with relay.client() as client:
        visitor_id, auth = await visitor(client)
        response = await client.post(
            "/v1/thread/push",
            json=subscription(device),
            headers={**auth, "user-agent": CHROME},
        )
    assert response.status_code == 201, response.text
    (row,) = rows(relay)
    assert response.json() == {"id": row["id"]}
    assert row == {
        "id": row["id"],
        "site_id": "alpha",
        "endpoint": device.endpoint,
        "p256dh": device.p256dh,
        "auth": device.auth,
        "visitor_id": visitor_id,
        "owner_email": None,
        "user_agent": CHROME[:120],  # a label for lists, cut short
    }


async def test_the_same_device_again_is_one_row(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    device, renewed = push_service.new_subscription(), push_service.new_subscription()
    async with relay.client() as client:
        _, auth = await visitor(client)
        first = await client.post("/v1/thread/push", json=subscription(device), headers=auth)
        # the browser renewed its keys for the same endpoint
        keys = {"p256dh": renewed.p256dh, "auth": renewed.auth}
        again = await client.post(
            "/v1/thread/push", json=subscription(device, keys=keys), headers=auth
        )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    (row,) = rows(relay)
    assert (row["p256dh"], row["auth"]) == (renewed.p256dh, renewed.auth)


async def test_without_a_valid_token_nothing_is_kept(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    device = push_service.new_subscription()
    async with relay.client() as client:
        started = await start_thread(client)
        forged = await client.post(
            "/v1/thread/push",
            json=subscription(device),
            headers=bearer(tampered(started["token"])),
        )
        missing = await client.post("/v1/thread/push", json=subscription(device))
        # signed out everywhere: every token of the visitor stops
        out = await client.post(
            "/v1/thread/sign-out", json={"everywhere": True}, headers=bearer(started["token"])
        )
        assert out.status_code == 204
        revoked = await client.post(
            "/v1/thread/push", json=subscription(device), headers=bearer(started["token"])
        )
        deleting = await client.request(
            "DELETE", "/v1/thread/push", headers=bearer(tampered(started["token"]))
        )
    assert forged.status_code == missing.status_code == revoked.status_code == 401
    assert deleting.status_code == 401
    assert forged.json()["error"] == "invalid_token"
    assert rows(relay) == []


async def test_a_page_of_another_site_is_refused(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    device = push_service.new_subscription()
    async with relay.client() as client:
        _, auth = await visitor(client)
    async with relay.client(origin=BETA_ORIGIN) as elsewhere:
        response = await elsewhere.post("/v1/thread/push", json=subscription(device), headers=auth)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden_origin"
    assert rows(relay) == []


REFUSED_ENDPOINTS = [
    ("http://127.0.0.1/push/x", "expected https"),
    ("https://127.0.0.1/push/x", "loopback"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://10.0.0.1/x", "private"),
    ("https://[::1]/x", "loopback"),
    ("https://localhost/x", "loopback"),  # a name: judged by what it resolves to
    ("https://user:pass@push.example/x", "user name or password"),
    ("ftp://push.example/x", "expected an absolute https URL"),
    (42, "'endpoint' must be"),
]
REFUSED_KEYS = [
    ({"p256dh": "BPublicKey", "auth": "x"}, "keys.p256dh"),  # not a 65-byte point
    ({"p256dh": "BAAA" + "A" * 83, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}, "not a point"),
    ("point", "'keys' must be"),
    ({"p256dh": "ok"}, "'keys' must be"),
    (None, "'keys' must be"),
]


async def test_an_endpoint_off_the_public_internet_is_refused(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    """Only the fake push service's origin is allowed: nothing else on loopback, no
    other private or link-local address, nothing but https."""
    device = push_service.new_subscription()
    async with relay.client() as client:
        _, auth = await visitor(client)
        for endpoint, said in REFUSED_ENDPOINTS:
            response = await client.post(
                "/v1/thread/push", json=subscription(device, endpoint=endpoint), headers=auth
            )
            assert response.status_code == 422, (endpoint, response.text)
            assert response.json()["reason"] == "push_endpoint"
            assert said in response.json()["message"], endpoint
    assert rows(relay) == []


async def test_keys_a_browser_would_not_give_are_refused(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    device = push_service.new_subscription()
    short_secret = {"p256dh": device.p256dh, "auth": "AAAA"}
    async with relay.client() as client:
        _, auth = await visitor(client)
        for keys, said in [*REFUSED_KEYS, (short_secret, "expected 16 bytes")]:
            response = await client.post(
                "/v1/thread/push", json=subscription(device, keys=keys), headers=auth
            )
            assert response.status_code == 422, (keys, response.text)
            assert response.json()["reason"] == "push_keys"
            assert said in response.json()["message"], keys
            assert device.p256dh not in response.text  # keys are never echoed
    assert rows(relay) == []


async def test_malformed_requests_are_refused(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    device = push_service.new_subscription()
    async with relay.client() as client:
        _, auth = await visitor(client)
        headers = {**auth, "content-type": "application/json"}
        broken = await client.post("/v1/thread/push", content=b'{"endpoint": ', headers=headers)
        listed = await client.post("/v1/thread/push", json=[device.to_json()], headers=auth)
        empty = await client.post("/v1/thread/push", headers=auth)
        no_endpoint = await client.post(
            "/v1/thread/push", json={"keys": device.to_json()["keys"]}, headers=auth
        )
        bad_delete = await client.request(
            "DELETE", "/v1/thread/push", content=b"{nope", headers=headers
        )
        number = await client.request(
            "DELETE", "/v1/thread/push", json={"endpoint": 7}, headers=auth
        )
    assert broken.status_code == listed.status_code == empty.status_code == 400
    assert bad_delete.status_code == 400
    assert no_endpoint.status_code == number.status_code == 422
    assert broken.json()["error"] == "invalid_request"
    assert rows(relay) == []


async def test_devices_are_forgotten_one_or_all_and_only_the_visitors_own(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    phone, laptop, tablet, theirs = (push_service.new_subscription() for _ in range(4))
    async with relay.client() as client:
        mine, auth = await visitor(client)
        other, other_auth = await visitor(client)
        for device in (phone, laptop, tablet):
            kept = await client.post("/v1/thread/push", json=subscription(device), headers=auth)
            assert kept.status_code == 201
        kept = await client.post("/v1/thread/push", json=subscription(theirs), headers=other_auth)
        assert kept.status_code == 201

        one = await client.request(
            "DELETE", "/v1/thread/push", json={"endpoint": phone.endpoint}, headers=auth
        )
        assert one.status_code == 204
        assert {r["endpoint"] for r in rows(relay)} == {
            laptop.endpoint,
            tablet.endpoint,
            theirs.endpoint,
        }
        # another visitor's device, or one never kept: nothing happens, the same answer
        for endpoint in (theirs.endpoint, phone.endpoint, "https://push.example/unknown"):
            again = await client.request(
                "DELETE", "/v1/thread/push", json={"endpoint": endpoint}, headers=auth
            )
            assert again.status_code == 204
        assert len(rows(relay)) == 3

        everything = await client.request("DELETE", "/v1/thread/push", headers=auth)
        assert everything.status_code == 204
        assert [(r["endpoint"], r["visitor_id"]) for r in rows(relay)] == [(theirs.endpoint, other)]
        nothing_left = await client.request("DELETE", "/v1/thread/push", headers=auth)
    assert nothing_left.status_code == 204
    assert mine != other and len(rows(relay)) == 1


async def test_a_device_passed_to_another_visitor_is_theirs(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    """A shared browser: the first visitor can no longer forget the second's device."""
    device = push_service.new_subscription()
    async with relay.client() as client:
        _, first = await visitor(client)
        second_id, second = await visitor(client)
        await client.post("/v1/thread/push", json=subscription(device), headers=first)
        await client.post("/v1/thread/push", json=subscription(device), headers=second)
        forget = await client.request(
            "DELETE", "/v1/thread/push", json={"endpoint": device.endpoint}, headers=first
        )
        everything = await client.request("DELETE", "/v1/thread/push", headers=first)
    assert forget.status_code == everything.status_code == 204
    assert [r["visitor_id"] for r in rows(relay)] == [second_id]


async def test_subscribing_is_rate_limited_per_visitor(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    limit = relay.services.limits.push_by_visitor.limit
    async with relay.client() as client:
        _, auth = await visitor(client)
        for _ in range(limit):
            device = push_service.new_subscription()
            kept = await client.post("/v1/thread/push", json=subscription(device), headers=auth)
            assert kept.status_code == 201
        refused = await client.post(
            "/v1/thread/push",
            json=subscription(push_service.new_subscription()),
            headers=auth,
        )
        _, someone_else = await visitor(client)
        theirs = await client.post(
            "/v1/thread/push",
            json=subscription(push_service.new_subscription()),
            headers=someone_else,
        )
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert theirs.status_code == 201
    assert len(rows(relay)) == limit + 1


async def test_the_public_config_has_the_installations_push_key(relay: RunningRelay) -> None:
    async with relay.client() as client:
        first = (await client.get("/v1/sites/alpha/config")).json()
        beta = (await client.get("/v1/sites/beta/config", headers={"origin": BETA_ORIGIN})).json()
    printed = subprocess.run(
        [*porch_command(), "push", "keys"],
        env=relay_env(relay),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert len(printed) == 87
    assert first["push_key"] == beta["push_key"] == printed


async def test_the_service_worker_is_served(relay: RunningRelay) -> None:
    async with relay.client(origin=None) as client:
        response = await client.get("/porch-sw.js", headers={"accept-encoding": "identity"})
        again = await client.get(
            "/porch-sw.js", headers={"if-none-match": response.headers["etag"]}
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert "addEventListener('push'" in response.text
    assert "addEventListener('notificationclick'" in response.text
    assert "'fetch'" not in response.text  # never between the site and its pages
    assert again.status_code == 304


async def test_signing_out_everywhere_forgets_the_visitors_devices(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    """Whoever held a token may have subscribed a device: it stops being told."""
    phone, laptop, theirs = (push_service.new_subscription() for _ in range(3))
    async with relay.client() as client:
        _, auth = await visitor(client)
        other, other_auth = await visitor(client)
        for device, headers in ((phone, auth), (laptop, auth), (theirs, other_auth)):
            kept = await client.post("/v1/thread/push", json=subscription(device), headers=headers)
            assert kept.status_code == 201
        out = await client.post("/v1/thread/sign-out", json={"everywhere": True}, headers=auth)
    assert out.status_code == 204
    assert [(r["endpoint"], r["visitor_id"]) for r in rows(relay)] == [(theirs.endpoint, other)]


async def test_the_export_lists_the_devices_without_what_pushes_to_them(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    phone, theirs = push_service.new_subscription(), push_service.new_subscription()
    async with relay.client() as client:
        visitor_id, auth = await visitor(client)
        _, other_auth = await visitor(client)
        await client.post(
            "/v1/thread/push", json=subscription(phone), headers={**auth, "user-agent": CHROME}
        )
        await client.post("/v1/thread/push", json=subscription(theirs), headers=other_auth)
        own = await client.get("/v1/thread/export", headers=auth)
    printed = subprocess.run(
        [*porch_command(), "visitor", "export", visitor_id],
        env=relay_env(relay),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    (row,) = [r for r in rows(relay) if r["visitor_id"] == visitor_id]
    with relay.db() as db:
        created_at = db.execute(
            "SELECT created_at FROM push_subscriptions WHERE id = ?", (row["id"],)
        ).fetchone()[0]
    listed = [{"id": row["id"], "created_at": created_at, "user_agent": CHROME[:120]}]
    assert json.loads(printed)[0]["devices"] == own.json()["devices"] == listed
    for secret in (phone.endpoint, phone.p256dh, phone.auth, theirs.endpoint):
        assert secret not in printed and secret not in own.text


# -- whether a site serves its worker: GET /v1/sites/{site}/push-worker -----------------

JS = "importScripts('https://relay.example/porch-sw.js');\n"
SECRET_MARK = "s3cret-of-the-site"  # in what the site answers: never passed on


@dataclass
class FakeSite:
    """The business's site, on loopback: what its /porch-sw.js answers, and every
    request it got. `gate`, cleared, holds the answer until set."""

    answer: str = "js"
    asked: list[str] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)
    origin: str = ""

    def __post_init__(self) -> None:
        self.gate.set()


def worker_response(answer: str) -> Response:
    secret = {"x-site": SECRET_MARK}
    if answer == "missing":
        return PlainTextResponse(f"Not Found {SECRET_MARK}", status_code=404, headers=secret)
    if answer == "html":  # a site that answers every path with its home page
        return Response(f"<!doctype html><p>{SECRET_MARK}", media_type="text/html")
    if answer == "text":
        return PlainTextResponse(JS)
    if answer == "redirect":
        return RedirectResponse("/elsewhere/porch-sw.js", status_code=302)
    if answer == "endless":  # read no further than a worker needs

        async def forever() -> AsyncIterator[bytes]:
            while True:
                yield b"// " + b"x" * 4093 + b"\n"
                await asyncio.sleep(0)

        return StreamingResponse(forever(), media_type="application/javascript")
    types = {"js": "text/javascript; charset=utf-8", "application": "application/javascript"}
    return Response(f"{JS}// {SECRET_MARK}", media_type=types[answer], headers=secret)


def fake_site_app(site: FakeSite) -> Starlette:
    async def worker(request: Request) -> Response:
        site.asked.append(request.url.path)
        site.arrived.set()
        await asyncio.to_thread(site.gate.wait, WAIT_TIMEOUT)
        return worker_response(site.answer)

    async def elsewhere(request: Request) -> Response:
        site.asked.append(request.url.path)
        return worker_response("js")

    return Starlette(
        routes=[
            Route("/porch-sw.js", worker, methods=["GET"]),
            Route("/elsewhere/porch-sw.js", elsewhere, methods=["GET"]),
        ]
    )


@pytest.fixture
def fake_site() -> Iterator[FakeSite]:
    site = FakeSite()
    server = LoopbackServer(fake_site_app(site), "the fake site")
    with server:
        site.origin = server.origin
        try:
            yield site
        finally:
            site.gate.set()  # a held answer ends before the server stops


@pytest.fixture
def site_relay(make_relay: Callable[..., RunningRelay], fake_site: FakeSite) -> RunningRelay:
    """A relay whose site alpha has the fake site's origin among its own (on loopback:
    allowed, as PORCH_PUSH_ENDPOINT_ALLOW lets a private address through)."""
    relay = make_relay(push_endpoint_allow=(fake_site.origin,))

    async def register() -> None:
        alpha = await relay.services.store.get_site("alpha")
        site = replace(alpha, origins=(*alpha.origins, fake_site.origin))
        await relay.services.store.add_site(site, replace=True)

    asyncio.run_coroutine_threadsafe(register(), relay.server.loop).result(timeout=10)
    return relay


async def ask(client: httpx.AsyncClient, origin: str | None, site: str = "alpha") -> httpx.Response:
    params = {} if origin is None else {"origin": origin}
    return await client.get(f"/v1/sites/{site}/push-worker", params=params)


@pytest.mark.parametrize(
    ("answer", "served"),
    [
        ("js", True),
        ("application", True),  # application/javascript, no parameter
        ("endless", True),  # JavaScript that never ends: its first 64 KiB say enough
        ("missing", False),
        ("html", False),
        ("text", False),  # text/plain: browsers refuse to register it
        ("redirect", False),  # browsers refuse a redirected worker; not followed
    ],
)
async def test_whether_the_site_serves_its_worker(
    site_relay: RunningRelay, fake_site: FakeSite, answer: str, served: bool
) -> None:
    fake_site.answer = answer
    async with site_relay.client() as client:
        response = await ask(client, fake_site.origin)
    assert response.status_code == 200, response.text
    assert response.json() == {"served": served}
    assert response.headers["cache-control"] == "private, max-age=300"
    # Nothing of the site's answer but the yes or no.
    assert SECRET_MARK not in response.text
    assert not any(SECRET_MARK in value for value in response.headers.values())
    assert fake_site.asked == ["/porch-sw.js"]


async def test_the_answer_is_kept_and_shorter_when_the_file_is_missing(
    site_relay: RunningRelay, fake_site: FakeSite
) -> None:
    fake_site.answer = "missing"
    async with site_relay.client() as client:
        first, again = await ask(client, fake_site.origin), await ask(client, fake_site.origin)
        assert first.json() == again.json() == {"served": False}
        assert fake_site.asked == ["/porch-sw.js"]  # asked once
        missing_until = site_relay.services.push_workers[fake_site.origin][0] - time.monotonic()
        # The owner adds the file: seen once the short memory of "not there" ends (a
        # minute; here, let it end now).
        fake_site.answer = "js"
        _, answer = site_relay.services.push_workers[fake_site.origin]
        site_relay.services.push_workers[fake_site.origin] = (0.0, answer)
        added = await ask(client, fake_site.origin)
        kept = await ask(client, fake_site.origin.upper() + "/")
        served_until = site_relay.services.push_workers[fake_site.origin][0] - time.monotonic()
    assert added.json() == kept.json() == {"served": True}
    assert fake_site.asked == ["/porch-sw.js"] * 2  # the same origin, however written
    assert NOT_SERVED_TTL - 10 < missing_until <= NOT_SERVED_TTL == 60
    assert SERVED_TTL - 10 < served_until <= SERVED_TTL == 600


async def test_visitors_asking_at_once_share_one_request(
    site_relay: RunningRelay, fake_site: FakeSite
) -> None:
    fake_site.gate.clear()
    async with site_relay.client() as client:
        first = asyncio.create_task(ask(client, fake_site.origin))
        assert await asyncio.to_thread(fake_site.arrived.wait, WAIT_TIMEOUT)
        others = [asyncio.create_task(ask(client, fake_site.origin)) for _ in range(4)]
        # While the site has not answered, nobody has an answer, and nobody asks it again.
        done, _ = await asyncio.wait([first, *others], timeout=1.0)
        assert done == set() and fake_site.asked == ["/porch-sw.js"]
        fake_site.gate.set()
        answers = await asyncio.gather(first, *others)
    assert [a.json() for a in answers] == [{"served": True}] * 5
    assert fake_site.asked == ["/porch-sw.js"]


async def test_a_site_that_does_not_answer_in_time_does_not_serve_it(
    site_relay: RunningRelay, fake_site: FakeSite
) -> None:
    fake_site.gate.clear()  # the site takes its request and never answers
    async with site_relay.client() as client:
        started = time.monotonic()
        response = await ask(client, fake_site.origin)
        took = time.monotonic() - started
    assert response.json() == {"served": False}
    assert 2.5 < took < 6  # the relay gave up after its 3 seconds


async def test_only_the_sites_own_origins_are_checked(
    site_relay: RunningRelay, fake_site: FakeSite
) -> None:
    refused = {
        None: "'origin' must be",
        "": "'origin' must be",
        "https://elsewhere.example": "is not one of the origins of site 'alpha'",
        BETA_ORIGIN: "is not one of the origins of site 'alpha'",  # another site's
        "http://127.0.0.1:9": "is not one of the origins",
        f"{fake_site.origin}/porch-sw.js": "has no path",
        "javascript:alert(1)": "expected an origin",
    }
    async with site_relay.client() as client:
        for origin, said in refused.items():
            response = await ask(client, origin)
            assert response.status_code == 422, (origin, response.text)
            assert said in response.json()["message"], origin
        unknown_site = await ask(client, fake_site.origin, site="nope")
    async with site_relay.client(origin=BETA_ORIGIN) as elsewhere:
        foreign_page = await ask(elsewhere, fake_site.origin)
    assert unknown_site.status_code == 404
    assert foreign_page.status_code == 403
    assert fake_site.asked == []  # the relay fetched nothing
    assert site_relay.services.push_workers == {}


async def test_checks_are_rate_limited_per_address(
    site_relay: RunningRelay, fake_site: FakeSite
) -> None:
    limit = site_relay.services.limits.push_checks_by_ip.limit
    async with site_relay.client() as client:
        for _ in range(limit):
            assert (await ask(client, fake_site.origin)).status_code == 200
        refused = await ask(client, fake_site.origin)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert fake_site.asked == ["/porch-sw.js"]


async def test_a_site_origin_on_a_private_address_is_not_fetched(
    make_relay: Callable[..., RunningRelay], fake_site: FakeSite
) -> None:
    """An owner sets the site's origins: one on the relay's own network (not allowed)
    gets "not served" without a request, so the check is nobody's probe of it."""
    relay = make_relay()

    async def register() -> None:
        alpha = await relay.services.store.get_site("alpha")
        site = replace(alpha, origins=(*alpha.origins, fake_site.origin))
        await relay.services.store.add_site(site, replace=True)

    await relay.call(register())
    fake_site.answer = "js"
    async with relay.client() as client:
        response = await ask(client, fake_site.origin)
    assert response.json() == {"served": False}
    assert fake_site.asked == []
