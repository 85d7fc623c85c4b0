"""The owner's devices in the inbox API (relay/web/inbox/push.py), over real HTTP on both
engines: the key to subscribe with, a browser's subscription kept, listed and removed;
only the owner's own devices; session and CSRF as every inbox POST; a subscription the
relay must not post to refused with nothing stored; signing out (one session, every
session, `porch owner logout`) takes the devices of those sessions with it."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from relay.push.vapid import decode_b64url, installation_key
from tests.fakes.push_service import Device, FakePushService
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, porch_command, relay_env
from tests.test_inbox_api import Inbox, inbox, sign_in

pytestmark = BOTH_ENGINES

OWNER = "owner@alpha.example"
OTHER = "owner@beta.example"
PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile"
PUSH = "/inbox/api/push"


@pytest.fixture
def relay(make_relay: Callable[..., RunningRelay], push_service: FakePushService) -> RunningRelay:
    """A relay that may post to the fake push service (plain http on loopback)."""
    return make_relay(push_endpoint_allow=(push_service.origin,))


def rows(relay: RunningRelay) -> list[dict[str, Any]]:
    with relay.db() as db:
        found = db.execute(
            "SELECT id, site_id, endpoint, visitor_id, owner_email, session_id, user_agent"
            " FROM push_subscriptions ORDER BY created_at, id"
        ).fetchall()
        return [dict(row) for row in found]


async def subscribe(page: Inbox, device: Device) -> str:
    response = await page.post(PUSH, device.to_json())
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return str(response.json()["id"])


async def devices(page: Inbox) -> list[dict[str, Any]]:
    response = await page.get(PUSH)
    assert response.status_code == 200, response.text
    return response.json()["devices"]  # type: ignore[no-any-return]


async def test_a_device_is_added_listed_and_removed(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    async with inbox(relay) as page, inbox(relay) as elsewhere:
        page.client.headers["user-agent"] = PHONE
        answer = await page.get(PUSH)
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        key = await relay.call(installation_key(relay.services.store))
        assert answer.json() == {"key": key.public_key, "devices": []}
        assert decode_b64url(key.public_key, "key")[0] == 4  # an uncompressed P-256 point

        phone = push_service.new_subscription(application_server_key=key.public_key)
        device_id = await subscribe(page, phone)
        [listed] = await devices(page)
        assert listed == {
            "id": device_id,
            "label": PHONE,
            "created_at": listed["created_at"],
            "this_session": True,
        }
        assert listed["created_at"].endswith("Z")
        [seen_elsewhere] = await devices(elsewhere)  # the same owner in another browser
        assert seen_elsewhere == {**listed, "this_session": False}
        assert rows(relay) == [
            {
                "id": device_id,
                "site_id": "alpha",
                "endpoint": phone.endpoint,
                "visitor_id": None,
                "owner_email": OWNER,
                "session_id": page.me["session"],
                "user_agent": PHONE,
            }
        ]

        # The same browser subscribing again is the same device, not a second one.
        assert await subscribe(page, phone) == device_id
        assert [d["id"] for d in await devices(page)] == [device_id]

        removed = await page.post(f"{PUSH}/{device_id}/remove")
        assert removed.status_code == 204, removed.text
        assert await devices(page) == [] and rows(relay) == []
        again = await page.post(f"{PUSH}/{device_id}/remove")
        assert again.status_code == 404 and device_id in again.json()["message"]


async def test_another_owners_device_is_not_found(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    async with inbox(relay) as alpha, inbox(relay, OTHER) as beta:
        theirs = await subscribe(beta, push_service.new_subscription())
        assert await devices(alpha) == []
        refused = await alpha.post(f"{PUSH}/{theirs}/remove")
        assert refused.status_code == 404, refused.text
        assert [row["id"] for row in rows(relay)] == [theirs]
        assert [d["id"] for d in await devices(beta)] == [theirs]


async def test_without_a_session_nothing_is_answered(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    async with inbox(relay) as page:
        kept = await subscribe(page, push_service.new_subscription())
    async with httpx.AsyncClient(base_url=relay.url, headers={"origin": relay.url}) as stranger:
        assert (await stranger.get(PUSH)).status_code == 401
        posted = await stranger.post(PUSH, json=push_service.new_subscription().to_json())
        assert posted.status_code == 401
        removing = await stranger.post(f"{PUSH}/{kept}/remove")
        assert removing.status_code == 401
    assert [row["id"] for row in rows(relay)] == [kept]


async def test_without_the_csrf_token_or_from_another_origin_nothing_changes(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    async with inbox(relay) as page:
        kept = await subscribe(page, push_service.new_subscription())
        new = push_service.new_subscription().to_json()
        bare = await page.client.post(PUSH, json=new)
        assert bare.status_code == 403 and "x-csrf-token" in bare.json()["message"]
        forged = await page.post(PUSH, new, origin="https://evil.example")
        assert forged.status_code == 403
        unremoved = await page.client.post(f"{PUSH}/{kept}/remove")
        assert unremoved.status_code == 403
        assert [row["id"] for row in rows(relay)] == [kept]


# What is sent instead of a browser's own subscription, and what the refusal names.
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"endpoint": "https://127.0.0.1/push/1"}, "loopback"),
    ({"endpoint": "https://localhost:8443/push/1"}, "loopback"),
    ({"endpoint": "https://169.254.169.254/latest/meta-data"}, "link-local"),
    ({"endpoint": "https://10.1.2.3/push/1"}, "private"),
    ({"endpoint": "https://[::1]/push/1"}, "loopback"),
    ({"endpoint": "http://push.example/push/1"}, "expected https"),
    ({"endpoint": "https://user:pw@push.example/push/1"}, "user name or password"),
    ({"endpoint": "push.example/push/1"}, "expected an absolute https URL"),
    ({"endpoint": 42}, "'endpoint'"),
    ({"keys": {"p256dh": "short", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),
    ({"keys": {"p256dh": None, "auth": None}}, "'keys'"),
    ({"keys": "p256dh,auth"}, "'keys'"),
    ({"auth": "QUFBQQ"}, "keys.auth"),  # 4 bytes, not 16
    ({"auth": "not base64!"}, "keys.auth"),
    ({"p256dh": "B" + "A" * 86}, "keys.p256dh"),  # 65 bytes, not a point on the curve
]


async def test_a_subscription_the_relay_must_not_post_to_is_refused(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    async with inbox(relay) as page:
        for changes, said in REFUSED:
            device = push_service.new_subscription()
            sent = device.to_json()
            if "auth" in changes or "p256dh" in changes:
                sent["keys"] = {**sent["keys"], **changes}
            else:
                sent.update(changes)
            refused = await page.post(PUSH, sent)
            assert refused.status_code == 422, (changes, refused.text)
            assert said in refused.json()["message"], (changes, refused.text)
            # A refusal never echoes the keys back.
            assert device.auth not in refused.text and device.p256dh not in refused.text
        assert await devices(page) == []
    assert rows(relay) == []


async def test_signing_out_takes_that_sessions_devices_only(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    async with inbox(relay) as phone, inbox(relay) as laptop, inbox(relay) as tablet:
        on_phone = await subscribe(phone, push_service.new_subscription())
        on_laptop = await subscribe(laptop, push_service.new_subscription())
        on_tablet = await subscribe(tablet, push_service.new_subscription())

        signed_out = await phone.post("/inbox/api/logout", {"everywhere": False})
        assert signed_out.status_code == 204, signed_out.text
        assert {row["id"] for row in rows(relay)} == {on_laptop, on_tablet}

        # Revoked from another device: that session's devices go too.
        revoked = await laptop.post(f"/inbox/api/sessions/{tablet.me['session']}/revoke")
        assert revoked.status_code == 204, revoked.text
        assert [d["id"] for d in await devices(laptop)] == [on_laptop]
        assert [row["id"] for row in rows(relay)] == [on_laptop]
        assert on_phone not in {row["id"] for row in rows(relay)}


async def test_signing_out_everywhere_takes_every_device_of_the_owner(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    async with inbox(relay) as phone, inbox(relay) as laptop, inbox(relay, OTHER) as beta:
        await subscribe(phone, push_service.new_subscription())
        await subscribe(laptop, push_service.new_subscription())
        theirs = await subscribe(beta, push_service.new_subscription())
        everywhere = await laptop.post("/inbox/api/logout", {"everywhere": True})
        assert everywhere.status_code == 204, everywhere.text
        assert [row["id"] for row in rows(relay)] == [theirs]  # another owner's stays
        assert (await phone.get(PUSH)).status_code == 401


async def test_porch_owner_logout_takes_the_owners_devices(
    relay: RunningRelay, push_service: FakePushService
) -> None:
    page = await sign_in(relay)
    try:
        await subscribe(page, push_service.new_subscription())
        async with inbox(relay, OTHER) as beta:
            theirs = await subscribe(beta, push_service.new_subscription())
        done = await asyncio.to_thread(
            subprocess.run,
            [*porch_command(), "owner", "logout", OWNER],
            env=relay_env(relay),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert "signed out" in done.stdout
        assert [row["id"] for row in rows(relay)] == [theirs]
        assert (await page.get(PUSH)).status_code == 401
    finally:
        await page.client.aclose()
