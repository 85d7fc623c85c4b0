"""Messaging apps in the inbox: connecting an account from the site's settings, each
thread's chats and whether the app's reply window is open, what became of each reply
(WhatsApp's statuses), and the approved template once the window has closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.apps_support import APP_SECRET, PHONE_ID, VERIFY, WA_TOKEN, Fakes
from tests.fakes import webhooks
from tests.fakes.graph_api import WHATSAPP_SEND
from tests.fakes.webhooks import meta_signed, whatsapp_message
from tests.support import RunningRelay
from tests.test_inbox_api import inbox

pytestmark = pytest.mark.parametrize("engine", ["sqlite", "postgres"], indirect=True)


WA_OPTIONS = {
    "phone_number_id": PHONE_ID,
    "access_token": WA_TOKEN,
    "app_secret": APP_SECRET,
    "verify_token": VERIFY,
}


async def whatsapp_writes(relay: RunningRelay, channel: str, text: str, wamid: str) -> None:
    raw, headers = meta_signed(
        APP_SECRET, whatsapp_message(PHONE_ID, "33612345678", "33700000000", text, wamid)
    )
    async with relay.client(origin=None) as client:
        answer = await client.post(f"/v1/channels/{channel}/webhook", content=raw, headers=headers)
        assert answer.status_code == 200, answer.text


async def whatsapp_status(relay: RunningRelay, channel: str, wamid: str, status: str) -> None:
    raw, headers = meta_signed(APP_SECRET, webhooks.whatsapp_status(PHONE_ID, wamid, status, "1"))
    async with relay.client(origin=None) as client:
        answer = await client.post(f"/v1/channels/{channel}/webhook", content=raw, headers=headers)
        assert answer.status_code == 200, answer.text


async def test_the_inbox_connects_an_app_and_follows_each_reply_to_the_customer(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    _, graph = fakes
    relay = app_relay
    async with inbox(relay) as page:
        wanted = {"kind": "whatsapp", "options": WA_OPTIONS, "template": "hello_again"}
        added = await page.post("/inbox/api/sites/alpha/channels", wanted)
        assert added.status_code == 201, added.text
        channel = added.json()
        assert WA_TOKEN not in added.text and APP_SECRET not in added.text
        again = await page.post("/inbox/api/sites/alpha/channels", wanted)
        assert again.status_code == 409  # one site per account
        await whatsapp_writes(relay, channel["id"], "Is the shop open on Sunday?", "wamid.in1")
        thread = (await page.threads())[0]
        reply = await page.post(
            f"/inbox/api/threads/{thread['id']}/messages",
            {"body": "Yes, 8 to 13.", "client_id": "r1"},
        )
        assert reply.status_code == 201, reply.text
        sent = (await graph.await_calls(WHATSAPP_SEND, 1))[0]
        assert (sent.token, sent.node) == (WA_TOKEN, PHONE_ID)
        assert sent.body is not None and sent.body["text"]["body"] == "Yes, 8 to 13."
        # The relay records the wamid once Meta's answer is back: statuses name it. (The
        # fake logs a call before it answers: its answer is read once the relay has it.)
        await wait_for_delivery(page, thread["id"], "sent")
        wamid = sent.answer["messages"][0]["id"] if sent.answer else ""
        # Statuses come out of order: read stays read.
        for status in ("delivered", "read", "sent"):
            await whatsapp_status(relay, channel["id"], wamid, status)
        shown = (await page.get(f"/inbox/api/threads/{thread['id']}")).json()
        assert [m["via"] for m in shown["messages"]] == ["whatsapp", "inbox"]
        [chat] = shown["channels"]
        assert (chat["id"], chat["kind"], chat["name"]) == (
            channel["id"],
            "whatsapp",
            "Ada Lovelace",
        )
        assert chat["window_open"] is True and chat["template"] == "hello_again"
        delivery = shown["deliveries"][0]
        assert (delivery["channel"], delivery["status"], delivery["receipt"]) == (
            "whatsapp",
            "sent",
            "read",
        )
        # Inside the window the template is refused: a reply is what the customer needs.
        early = await page.post(
            f"/inbox/api/threads/{thread['id']}/template", {"channel": channel["id"]}
        )
        assert early.status_code == 409
        removed = await page.post(f"/inbox/api/sites/alpha/channels/{channel['id']}/remove")
        assert removed.status_code == 204
        me = (await page.get("/inbox/api/session")).json()
        assert me["sites"][0]["channels"] == []
        gone = await page.post(f"/inbox/api/sites/alpha/channels/{channel['id']}/remove")
        assert gone.status_code == 404


async def test_outside_the_window_a_reply_fails_plainly_and_the_template_goes(
    make_relay: Callable[..., RunningRelay], fakes: Fakes
) -> None:
    _, graph = fakes
    # The relay's clock runs 25 hours ahead: a message stored now was written "yesterday".
    ahead = (datetime.now(UTC) + timedelta(hours=25)).isoformat()
    relay = make_relay(meta_api_url=graph.url, clock_start=ahead)
    async with inbox(relay) as page:
        wanted = {"kind": "whatsapp", "options": WA_OPTIONS, "template": "hello_again"}
        channel = (await page.post("/inbox/api/sites/alpha/channels", wanted)).json()
        await whatsapp_writes(relay, channel["id"], "Can I order a cake?", "wamid.in2")
        thread = (await page.threads())[0]
        reply = await page.post(
            f"/inbox/api/threads/{thread['id']}/messages", {"body": "Sure!", "client_id": "r2"}
        )
        assert reply.status_code == 201
        shown = await wait_for_delivery(page, thread["id"], "failed")
        assert "24-hour window" in shown["deliveries"][0]["error"]
        assert shown["channels"][0]["window_open"] is False
        template = await page.post(
            f"/inbox/api/threads/{thread['id']}/template", {"channel": channel["id"]}
        )
        assert template.status_code == 202, template.text
        sent = (await graph.await_calls(WHATSAPP_SEND, 1))[0]
        assert sent.body is not None and sent.body["type"] == "template"
        assert sent.body["template"]["name"] == "hello_again"
        assert not [c for c in graph.calls(WHATSAPP_SEND) if (c.body or {}).get("type") == "text"]
        missing = await page.post(f"/inbox/api/threads/{thread['id']}/template", {"channel": "x"})
        assert missing.status_code == 404


async def wait_for_delivery(page: Any, thread: str, status: str) -> dict[str, Any]:
    """The thread as the inbox shows it once its latest delivery reached `status`."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        shown = (await page.get(f"/inbox/api/threads/{thread}")).json()
        if shown["deliveries"] and shown["deliveries"][0]["status"] == status:
            return shown  # type: ignore[no-any-return]
        assert asyncio.get_running_loop().time() < deadline, shown["deliveries"]
        await asyncio.sleep(0.05)  # the worker's progress is not an event the API offers
