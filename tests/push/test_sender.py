"""One push, end to end through a fake push service that checks it as real ones do:
the VAPID header, the aes128gcm body decrypted with the device's key, the delivery
headers, and what each answer means for the subscription."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import http_ece
import httpx
import pytest

from relay.models import PushSubscription
from relay.push.sender import (
    MAX_PAYLOAD,
    RECORD_SIZE,
    TEXT_FIELD,
    TOPIC,
    Outcome,
    Result,
    check_keys,
    encrypt,
    payload_of,
    send,
    topic_for,
)
from relay.push.vapid import VapidKey
from tests.fakes.push_service import (
    ACCEPTED,
    BAD_REQUEST,
    FORBIDDEN,
    NOT_FOUND,
    REFUSED,
    TOO_MANY_REQUESTS,
    UNAVAILABLE,
    Device,
    FakePushService,
)
from tests.support import free_port

SUBJECT = "mailto:owner@alpha.example"
MESSAGE = {"title": "Marie on Alpha Bakery", "body": "Do you have croissants? 🥐", "url": "/t/1"}
THREAD_TOPIC = topic_for("t_thread1")
TTL = 4 * 7 * 24 * 3600  # four weeks: a phone that is off for a while still gets it


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def key() -> VapidKey:
    return VapidKey.generate()


def subscription(device: Device) -> PushSubscription:
    return PushSubscription(
        id="push_1",
        site_id="alpha",
        endpoint=device.endpoint,
        p256dh=device.p256dh,
        auth=device.auth,
        visitor_id="v_1",
    )


async def push(
    client: httpx.AsyncClient,
    device: Device,
    key: VapidKey,
    allow: frozenset[str],
    message: dict[str, object] = MESSAGE,
    *,
    ttl: int = TTL,
    urgency: str = "normal",
    topic: str | None = THREAD_TOPIC,
) -> Outcome:
    return await send(
        client,
        subscription(device),
        message,
        key=key,
        subject=SUBJECT,
        ttl=ttl,
        urgency=urgency,
        topic=topic,
        allow=allow,
    )


async def test_a_push_is_shown_on_the_phone_as_sent(
    push_service: FakePushService, client: httpx.AsyncClient, key: VapidKey, allow: frozenset[str]
) -> None:
    device = push_service.new_subscription(application_server_key=key.public_key)
    outcome = await push(client, device, key, allow, urgency="high")
    assert outcome == Outcome(Result.DELIVERED, status=201)
    [shown] = await push_service.wait_shown(device)
    assert shown.message == MESSAGE
    assert (shown.ttl, shown.urgency, shown.topic) == (TTL, "high", THREAD_TOPIC)
    assert shown.claims["aud"] == push_service.origin and shown.claims["sub"] == SUBJECT


async def test_without_a_topic_none_is_sent(
    push_service: FakePushService, client: httpx.AsyncClient, key: VapidKey, allow: frozenset[str]
) -> None:
    device = push_service.new_subscription()
    assert (await push(client, device, key, allow, topic=None)).result is Result.DELIVERED
    [shown] = await push_service.wait_shown(device)
    assert (shown.topic, shown.urgency) == (None, "normal")


async def test_a_burst_for_one_thread_collapses_on_an_offline_phone(
    push_service: FakePushService, client: httpx.AsyncClient, key: VapidKey, allow: frozenset[str]
) -> None:
    device = push_service.new_subscription(online=False)
    for n in range(3):
        message = {**MESSAGE, "body": f"message {n}"}
        assert (await push(client, device, key, allow, message)).result is Result.DELIVERED
    other = {**MESSAGE, "body": "another thread"}
    await push(client, device, key, allow, other, topic=topic_for("t_thread2"))
    assert [p.message["body"] for p in push_service.pending(device)] == [
        "message 2",
        "another thread",
    ]
    assert [p.message["body"] for p in push_service.go_online(device)] == [
        "message 2",
        "another thread",
    ]
    assert len(await push_service.wait_shown(device, 2)) == 2


async def test_a_device_gone_is_said_so_on_410_and_404(
    push_service: FakePushService, client: httpx.AsyncClient, key: VapidKey, allow: frozenset[str]
) -> None:
    unsubscribed, unknown = push_service.new_subscription(), push_service.new_subscription()
    push_service.expire(unsubscribed)
    push_service.fail(unknown, NOT_FOUND)
    gone = await push(client, unsubscribed, key, allow)
    assert (gone.result, gone.status) == (Result.GONE, 410)
    missing = await push(client, unknown, key, allow)
    assert (missing.result, missing.status) == (Result.GONE, 404)
    assert push_service.shown(unsubscribed) == push_service.shown(unknown) == []


async def test_a_push_service_that_is_down_is_retried(
    push_service: FakePushService, client: httpx.AsyncClient, key: VapidKey, allow: frozenset[str]
) -> None:
    device = push_service.new_subscription()
    push_service.fail(device, UNAVAILABLE, times=2, retry_after=30)
    push_service.fail(device, TOO_MANY_REQUESTS)
    first = await push(client, device, key, allow)
    assert (first.result, first.status, first.retry_after) == (Result.RETRY, 503, 30)
    second = await push(client, device, key, allow)
    assert (second.result, second.retry_after) == (Result.RETRY, 30)
    third = await push(client, device, key, allow)
    assert (third.result, third.status, third.retry_after) == (Result.RETRY, 429, None)
    assert (await push(client, device, key, allow)).result is Result.DELIVERED
    assert len(await push_service.wait_shown(device)) == 1


async def test_nothing_listening_is_retried(
    client: httpx.AsyncClient, key: VapidKey, push_service: FakePushService
) -> None:
    port = free_port()
    device = push_service.new_subscription()
    closed = f"http://127.0.0.1:{port}"
    elsewhere = PushSubscription(**{**subscription(device).__dict__, "endpoint": f"{closed}/x"})
    outcome = await send(
        client, elsewhere, MESSAGE, key=key, subject=SUBJECT, ttl=60, allow=frozenset({closed})
    )
    assert outcome.result is Result.RETRY and outcome.status is None
    assert "ConnectError" in outcome.reason and "/x" not in outcome.reason


async def test_a_refusal_is_kept_with_its_reason(
    push_service: FakePushService, client: httpx.AsyncClient, key: VapidKey, allow: frozenset[str]
) -> None:
    device = push_service.new_subscription()
    push_service.fail(device, BAD_REQUEST)
    outcome = await push(client, device, key, allow)
    assert (outcome.result, outcome.status) == (Result.REFUSED, 400)
    assert outcome.reason == "the push service answered 400: scripted"


async def test_a_push_signed_with_another_key_is_refused(
    push_service: FakePushService, client: httpx.AsyncClient, key: VapidKey, allow: frozenset[str]
) -> None:
    device = push_service.new_subscription(application_server_key=VapidKey.generate().public_key)
    outcome = await push(client, device, key, allow)
    assert (outcome.result, outcome.status) == (Result.REFUSED, FORBIDDEN)
    [refused] = await push_service.wait_for(REFUSED)
    assert "key" in refused.reason and push_service.calls(ACCEPTED) == []


async def test_an_endpoint_not_allowed_is_refused_before_any_request(
    push_service: FakePushService, client: httpx.AsyncClient, key: VapidKey
) -> None:
    device = push_service.new_subscription()
    outcome = await push(client, device, key, frozenset())
    assert outcome.result is Result.REFUSED and outcome.status is None
    assert "expected https" in outcome.reason
    assert push_service.calls() == []


async def test_a_long_text_is_cut_to_fit(
    push_service: FakePushService, client: httpx.AsyncClient, key: VapidKey, allow: frozenset[str]
) -> None:
    device = push_service.new_subscription()
    long = {**MESSAGE, TEXT_FIELD: "é" * 5000}
    assert (await push(client, device, key, allow, long)).result is Result.DELIVERED
    [shown] = await push_service.wait_shown(device)
    text = shown.message[TEXT_FIELD]
    assert text.endswith("…") and set(text[:-1]) == {"é"}
    assert len(json.dumps(shown.message, ensure_ascii=False, separators=(",", ":")).encode()) in (
        MAX_PAYLOAD - 1,  # "é" is two bytes: the last one may not fit
        MAX_PAYLOAD,
    )


def test_a_message_that_cannot_fit_is_refused() -> None:
    assert len(payload_of({"body": "x" * 3000})) == len('{"body":""}') + 3000
    with pytest.raises(ValueError, match=f"at most {MAX_PAYLOAD} bytes"):
        payload_of({"title": "t" * MAX_PAYLOAD, "body": "x"})


def test_encryption_is_fresh_and_readable_by_the_device_only(
    push_service: FakePushService,
) -> None:
    device = push_service.new_subscription()
    payload = payload_of(MESSAGE)
    first, second = (
        encrypt(payload, device.p256dh, device.auth),
        encrypt(payload, device.p256dh, device.auth),
    )
    assert first[:16] != second[:16] and first[21:86] != second[21:86]  # salt, sender key
    assert int.from_bytes(first[16:20], "big") == RECORD_SIZE and first[20] == 65
    assert len(first) == 86 + len(payload) + 1 + 16  # one record
    plain = http_ece.decrypt(
        first, private_key=device.private_key, auth_secret=device.auth_secret, version="aes128gcm"
    )
    assert json.loads(plain) == MESSAGE
    stranger = push_service.new_subscription()
    with pytest.raises(http_ece.ECEException):
        http_ece.decrypt(
            first,
            private_key=stranger.private_key,
            auth_secret=stranger.auth_secret,
            version="aes128gcm",
        )


@pytest.mark.parametrize(
    ("p256dh", "auth", "said"),
    [
        ("BAAA", None, "keys.p256dh: expected an uncompressed P-256 point (65 bytes)"),
        ("B" + "A" * 86, None, "keys.p256dh: not a point on P-256"),
        ("not base64!", None, "keys.p256dh: expected base64url text"),
        (None, "AAAA", "keys.auth: expected 16 bytes, got 3"),
    ],
)
def test_bad_keys_are_named_not_echoed(
    push_service: FakePushService, p256dh: str | None, auth: str | None, said: str
) -> None:
    device = push_service.new_subscription()
    with pytest.raises(ValueError) as refused:
        check_keys(p256dh or device.p256dh, auth or device.auth)
    assert str(refused.value) == said


def test_the_topic_is_stable_and_valid() -> None:
    assert topic_for("t_thread1") == THREAD_TOPIC != topic_for("t_thread2")
    for key in ("t_thread1", "", "é" * 1000):
        assert TOPIC.fullmatch(topic_for(key)) and len(topic_for(key)) == 32


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"urgency": "urgent"}, "urgency"),
        ({"topic": "a" * 33}, "topic"),
        ({"topic": "thread/1"}, "topic"),
        ({"ttl": -1}, "ttl"),
    ],
)
async def test_bad_delivery_options_are_a_programming_error(
    push_service: FakePushService,
    client: httpx.AsyncClient,
    key: VapidKey,
    allow: frozenset[str],
    options: dict[str, object],
    said: str,
) -> None:
    device = push_service.new_subscription()
    with pytest.raises(ValueError, match=said):
        await push(client, device, key, allow, **options)
    assert push_service.calls() == []
