"""The fake push service refuses what real ones refuse, so that a test passing against
it means the relay's pushes would be taken."""

from __future__ import annotations

import httpx
import pytest

from relay.push.sender import encrypt, payload_of
from relay.push.vapid import VapidKey
from tests.fakes.push_service import (
    ACCEPTED,
    BAD_REQUEST,
    CREATED,
    NOT_FOUND,
    REFUSED,
    TOO_LARGE,
    UNAUTHORIZED,
    FakePushService,
)

SUBJECT = "mailto:owner@alpha.example"


def good_request(service: FakePushService, key: VapidKey) -> tuple[str, dict[str, str], bytes]:
    device = service.new_subscription()
    headers = {
        "Authorization": key.authorization(device.endpoint, SUBJECT),
        "Content-Encoding": "aes128gcm",
        "TTL": "60",
    }
    return device.endpoint, headers, encrypt(payload_of({"body": "hi"}), device.p256dh, device.auth)


@pytest.mark.parametrize(
    ("change", "status", "said"),
    [
        ({}, CREATED, ""),
        ({"Authorization": None}, UNAUTHORIZED, "vapid scheme"),
        ({"Authorization": "WebPush abc"}, UNAUTHORIZED, "vapid scheme"),
        ({"Authorization": "vapid t=a.b.c, k=BAAA"}, UNAUTHORIZED, "signature"),
        ({"TTL": None}, BAD_REQUEST, "TTL"),
        ({"Content-Encoding": "aesgcm"}, BAD_REQUEST, "aes128gcm"),
        ({"Urgency": "now"}, BAD_REQUEST, "Urgency"),
        ({"Topic": "not/base64url"}, BAD_REQUEST, "Topic"),
        ({"body": b"\x00" * 100}, BAD_REQUEST, "could not read"),
        ({"body": b"\x00" * 5000}, TOO_LARGE, "4096"),
    ],
)
async def test_what_a_real_push_service_refuses_is_refused(
    push_service: FakePushService, change: dict[str, str | bytes | None], status: int, said: str
) -> None:
    endpoint, headers, body = good_request(push_service, VapidKey.generate())
    for name, value in change.items():
        if name == "body":
            assert isinstance(value, bytes)
            body = value
        elif value is None:
            del headers[name]
        else:
            assert isinstance(value, str)
            headers[name] = value
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(endpoint, headers=headers, content=body)
    assert response.status_code == status and said in response.text
    [call] = push_service.calls()
    assert call.outcome == (ACCEPTED if status == CREATED else REFUSED)


async def test_a_token_for_another_push_service_is_refused(push_service: FakePushService) -> None:
    endpoint, headers, body = good_request(push_service, key := VapidKey.generate())
    headers["Authorization"] = key.authorization("https://fcm.googleapis.com/x", SUBJECT)
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(endpoint, headers=headers, content=body)
    assert response.status_code == UNAUTHORIZED and "aud" in response.text


async def test_an_unknown_endpoint_is_not_found(push_service: FakePushService) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(f"{push_service.origin}/push/nobody", content=b"")
    assert response.status_code == NOT_FOUND
