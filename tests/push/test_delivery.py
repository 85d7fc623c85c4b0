"""Pushes a relay sends by itself, to a fake push service that checks them as real ones
do (tests/fakes/push_service.py): an owner's phone told of a visitor's message at once,
a burst gathered into one more, nothing while an owner is at the inbox; a visitor's
phone told of a reply they have not read; a device that is gone forgotten, a push
service that is down tried again. Both engines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from relay.models import PushSubscription
from relay.push.channel import EMAIL_AFTER_PUSH, OWNER_TTL, VISITOR_TTL
from relay.push.sender import SEND_TIMEOUT, topic_for
from relay.push.vapid import installation_key
from relay.store.outbox_rows import later
from tests.fakes.push_service import ACCEPTED, ENDED, FAILED, UNAVAILABLE, Device, FakePushService
from tests.mail.smtp_sink import SinkServer
from tests.pg import BOTH_ENGINES
from tests.support import ALPHA_ORIGIN, RunningRelay, bearer, start_thread
from tests.test_inbox_api import inbox, inbox_socket

pytestmark = BOTH_ENGINES

OWNER = "owner@alpha.example"
FAST_RETRY = 0.05  # seconds before a failed push is tried again
WINDOW = 3  # seconds (owner_notify_delay): the two messages after the first are in it


def push_relay(
    make_relay: Callable[..., RunningRelay], service: FakePushService, **overrides: Any
) -> RunningRelay:
    return make_relay(push_endpoint_allow=(service.origin,), **overrides)


async def device_of(
    relay: RunningRelay, service: FakePushService, *, owner: str | None = None, visitor: str = ""
) -> Device:
    """A browser subscribed with the relay's key, kept as the inbox or widget keeps it."""
    key = await relay.call(installation_key(relay.services.store))
    device = service.new_subscription(application_server_key=key.public_key)
    subscription = PushSubscription(
        "",
        "alpha",
        device.endpoint,
        device.p256dh,
        device.auth,
        visitor_id=visitor or None,
        owner_email=owner,
    )
    await relay.call(relay.services.store.add_push_subscription(subscription))
    return device


def visitor_of(relay: RunningRelay, thread: str) -> str:
    with relay.db() as db:
        return str(
            db.execute("SELECT visitor_id FROM threads WHERE id = ?", (thread,)).fetchone()[0]
        )


def push_rows(relay: RunningRelay) -> list[tuple[str, str, str | None]]:
    with relay.db() as db:
        return [
            (row[0], row[1], row[2])
            for row in db.execute(
                "SELECT kind, status, last_error FROM outbox WHERE channel = 'push' ORDER BY id"
            )
        ]


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for state another process owns (the relay's outbox) to be as `check` says."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_an_owner_phone_is_told_at_once_and_a_burst_gathered(
    make_relay: Callable[..., RunningRelay], push_service: FakePushService
) -> None:
    relay = push_relay(make_relay, push_service, owner_notify_delay=WINDOW)
    phone = await device_of(relay, push_service, owner=OWNER)
    async with relay.client() as client:
        started = await start_thread(client, "Do you have croissants?", name="Marie")
        thread = started["thread"]["id"]
        first = (await push_service.wait_shown(phone))[0]
        assert first.message == {
            "title": "Marie · Alpha Bakery",
            "body": "Do you have croissants?",
            "url": f"{relay.url}/inbox/#t={thread}",
            "tag": thread,
        }
        assert (first.urgency, first.ttl, first.topic) == ("high", OWNER_TTL, topic_for(thread))
        assert first.claims["sub"] == relay.config.push_contact
        for body in ("Two dozen please", "  for   tomorrow  "):
            sent = await client.post(
                "/v1/thread/messages", json={"body": body}, headers=bearer(started["token"])
            )
            assert sent.status_code == 201
    # Within the window: one more push, at its end, telling both.
    second = (await push_service.wait_shown(phone, 2))[1]
    assert second.message["body"] == "Two dozen please\nfor tomorrow"
    assert second.received - first.received >= WINDOW - 0.1
    await until(lambda: all(status in ("sent", "cancelled") for _, status, _ in push_rows(relay)))
    assert len(push_service.calls(ACCEPTED)) == 2


async def test_nothing_is_pushed_while_an_owner_is_at_the_inbox(
    make_relay: Callable[..., RunningRelay], push_service: FakePushService
) -> None:
    relay = push_relay(make_relay, push_service)
    await device_of(relay, push_service, owner=OWNER)
    async with inbox(relay) as page, inbox_socket(page) as ws:
        await ws.send('{"type": "here", "here": true}')
        await until(lambda: relay.services.presence.online("alpha"))
        async with relay.client() as client:
            await start_thread(client, "Hello, are you there?")
    assert push_rows(relay) == []  # decided in the message's own transaction


async def test_a_visitor_phone_is_told_of_an_unread_reply(
    make_relay: Callable[..., RunningRelay], push_service: FakePushService
) -> None:
    relay = push_relay(make_relay, push_service, visitor_push_delay=0)
    async with relay.client() as client:
        started = await start_thread(client, "Can I order a cake?", page=f"{ALPHA_ORIGIN}/cakes")
        thread = started["thread"]["id"]
        phone = await device_of(relay, push_service, visitor=visitor_of(relay, thread))
        owner = bearer(relay.owner_token())
        reply = await client.post(
            f"/v1/owner/threads/{thread}/messages",
            json={"body": "Yes, 2 days ahead."},
            headers=owner,
        )
        assert reply.status_code == 201
    shown = (await push_service.wait_shown(phone))[0]
    assert shown.message == {
        "title": "Alpha Bakery",
        "body": "Yes, 2 days ahead.",
        "url": f"{ALPHA_ORIGIN}/cakes",
        "tag": thread,
    }
    assert (shown.urgency, shown.ttl) == ("normal", VISITOR_TTL)


async def test_a_reply_read_before_the_delay_is_not_pushed(
    make_relay: Callable[..., RunningRelay], push_service: FakePushService
) -> None:
    relay = push_relay(make_relay, push_service, visitor_push_delay=1)
    async with relay.client() as client:
        started = await start_thread(client, "Open on Sunday?")
        thread, token = started["thread"]["id"], started["token"]
        phone = await device_of(relay, push_service, visitor=visitor_of(relay, thread))
        owner = bearer(relay.owner_token())
        reply = await client.post(
            f"/v1/owner/threads/{thread}/messages", json={"body": "Until 1pm."}, headers=owner
        )
        seq = reply.json()["seq"]
        read = await client.post("/v1/thread/read", json={"seq": seq}, headers=bearer(token))
        assert read.status_code == 204
    await until(lambda: push_rows(relay) == [("visitor_notify", "cancelled", "already seen")])
    assert push_service.shown(phone) == [] and push_service.calls() == []


async def test_a_gone_device_is_forgotten_and_a_down_service_tried_again(
    make_relay: Callable[..., RunningRelay], push_service: FakePushService
) -> None:
    relay = push_relay(make_relay, push_service, owner_notify_delay=0)
    relay.services.workers["push"].retry_base = FAST_RETRY
    gone = await device_of(relay, push_service, owner=OWNER)
    flaky = await device_of(relay, push_service, owner=OWNER)
    push_service.expire(gone)
    push_service.fail(flaky, UNAVAILABLE, times=2)
    async with relay.client() as client:
        await start_thread(client, "Is the shop open?")
    assert len(await push_service.wait_shown(flaky)) == 1
    assert len(push_service.calls(FAILED)) == 2
    await push_service.wait_for(ENDED)

    def forgotten() -> bool:
        with relay.db() as db:
            endpoints = {row[0] for row in db.execute("SELECT endpoint FROM push_subscriptions")}
        return endpoints == {flaky.endpoint}

    await until(forgotten)
    # The gone device's push is cancelled (nobody must look at it), the other one sent.
    await until(
        lambda: (
            sorted((kind, status) for kind, status, _ in push_rows(relay))
            == [("owner_notify", "cancelled"), ("owner_notify", "sent")]
        )
    )


async def test_an_owner_told_by_push_gets_the_email_later_and_only_if_unread(
    make_relay: Callable[..., RunningRelay], push_service: FakePushService, sink: SinkServer
) -> None:
    relay = push_relay(
        make_relay,
        push_service,
        smtp_url=sink.url,
        reply_domain="reply.example",
        owner_notify_delay=5,
    )
    phone = await device_of(relay, push_service, owner=OWNER)
    async with relay.client() as client:
        await start_thread(client, "Do you deliver?")
    await push_service.wait_shown(phone)

    def email_due() -> str | None:
        with relay.db() as db:
            row = db.execute(
                "SELECT not_before FROM outbox WHERE channel = 'email' AND status = 'pending'"
            ).fetchone()
        return str(row[0]) if row else None

    await until(lambda: (email_due() or "") > later(EMAIL_AFTER_PUSH - 60))
    assert sink.sink.empty()  # nothing emailed yet: the phone was told


async def test_devices_that_hang_hold_up_no_other_push(
    make_relay: Callable[..., RunningRelay], push_service: FakePushService
) -> None:
    """A visitor may subscribe devices at hosts that never answer: pushes go out several
    at once, so the owner still hears of another customer at once."""
    relay = push_relay(make_relay, push_service, visitor_push_delay=0)
    phone = await device_of(relay, push_service, owner=OWNER)
    async with relay.client() as client:
        started = await start_thread(client, "hello")
        thread = started["thread"]["id"]
        await push_service.wait_shown(phone)
        for _ in range(2):
            slow = await device_of(relay, push_service, visitor=visitor_of(relay, thread))
            push_service.hang_next(slow, times=100)
        reply = await client.post(
            f"/v1/owner/threads/{thread}/messages",
            json={"body": "Hi!"},
            headers=bearer(relay.owner_token()),
        )
        assert reply.status_code == 201
        await until(lambda: sum(status == "sending" for _, status, _ in push_rows(relay)) == 2)
        asked = time.monotonic()
        await start_thread(client, "Do you have croissants?")
        await push_service.wait_shown(phone, 2)
    assert time.monotonic() - asked < SEND_TIMEOUT / 2  # not after the hung ones
    push_service.release_hangs()


async def test_a_message_while_a_push_is_on_its_way_waits_for_the_window(
    make_relay: Callable[..., RunningRelay], push_service: FakePushService
) -> None:
    relay = push_relay(make_relay, push_service, owner_notify_delay=WINDOW)
    phone = await device_of(relay, push_service, owner=OWNER)
    push_service.hang_next(phone)
    async with relay.client() as client:
        started = await start_thread(client, "Hello")
        await until(lambda: [status for _, status, _ in push_rows(relay)] == ["sending"])
        sent = await client.post(
            "/v1/thread/messages", json={"body": "Two dozen"}, headers=bearer(started["token"])
        )
        assert sent.status_code == 201
    with relay.db() as db:
        due = db.execute(
            "SELECT not_before FROM outbox WHERE channel = 'push' AND status = 'pending'"
        ).fetchone()[0]
    assert due > later(WINDOW - 2)  # gathered into the window, not pushed at once
    push_service.release_hangs()
