"""Messenger's reply windows, against the fake Graph API (which checks them as Meta does):
within 24 hours of the customer's last message a reply goes as a RESPONSE; for 7 days a
person's reply still goes, tagged HUMAN_AGENT (the relay's own notes do not); past 7
days nothing goes, the delivery fails at once with why, and the inbox says to wait for
the customer rather than to set a template Messenger does not have. The relay's clock
runs ahead (PORCH_CLOCK_START); the fake is told when the customer wrote."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.apps_support import (
    APP_SECRET,
    PAGE_ID,
    PAGE_TOKEN,
    PSID,
    VERIFY,
    Fakes,
    add_messenger,
    delivery_where,
    meta_writes,
    owner_replies,
    run_porch,
    thread_view,
)
from tests.fakes.graph_api import MESSENGER_SEND, FakeGraphApi
from tests.fakes.webhooks import messenger_message, messenger_postback_referral
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, start_thread
from tests.test_inbox_api import Inbox, inbox

HUMAN_AGENT = {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
OUTSIDE_WINDOW = 2018278  # Meta's error_subcode for a send outside the allowed window


def relay_ahead(
    make_relay: Callable[..., RunningRelay], graph: FakeGraphApi, ahead: timedelta
) -> RunningRelay:
    """A relay whose clock runs `ahead`, with Messenger connected and the fake told the
    customer last wrote that long ago: both see the customer's messages as that old."""
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    graph.customer_wrote(PAGE_ID, PSID, datetime.now(UTC) - ahead)
    start = (datetime.now(UTC) + ahead).isoformat()
    return make_relay(meta_api_url=graph.url, clock_start=start)


async def customer_writes(relay: RunningRelay, channel: dict[str, Any], text: str) -> None:
    async with relay.client(origin=None) as client:
        await meta_writes(client, channel, messenger_message(PAGE_ID, PSID, text, f"m.{text}"))


async def only_thread(page: Inbox) -> str:
    [thread] = await page.threads()
    return str(thread["id"])


def done_sending(delivery: dict[str, Any]) -> bool:
    return delivery["status"] in ("sent", "failed")


@BOTH_ENGINES
async def test_after_24_hours_a_reply_goes_tagged_human_agent(
    make_relay: Callable[..., RunningRelay], fakes: Fakes
) -> None:
    _, graph = fakes
    relay = relay_ahead(make_relay, graph, timedelta(hours=25))
    channel = add_messenger(relay)
    await customer_writes(relay, channel, "Is my cake ready?")
    async with inbox(relay) as page:
        thread = await only_thread(page)
        view = await thread_view(page, thread)
        [chat] = view["channels"]
        # For the owner (a person) the chat is open for 7 days, and has no template.
        assert (chat["kind"], chat["window_open"], chat["templates"]) == ("messenger", True, False)
        closes = datetime.fromisoformat(chat["window_closes_at"].replace("Z", "+00:00"))
        written = datetime.fromisoformat(chat["last_written_at"].replace("Z", "+00:00"))
        assert closes - written == timedelta(days=7)
        template = await page.post(f"/inbox/api/threads/{thread}/template", {"channel": chat["id"]})
        assert template.status_code == 422
        assert "Messenger has no templates" in template.text and "reply as usual" in template.text
        assert "--template" not in template.text

        await owner_replies(page, thread, "Yes, since this morning.", (("receipt.txt", b"1 cake"),))
        done = await delivery_where(page, thread, done_sending, "a send")
    assert (done["status"], done["error"]) == ("sent", None)
    text_call, file_call = graph.calls(MESSENGER_SEND)
    # Both the text and the file went with the tag, which the fake checked against the
    # customer's last message (25 hours: past a RESPONSE's 24, within HUMAN_AGENT's 7 days).
    assert text_call.body is not None and file_call.body is not None
    assert {k: text_call.body.get(k) for k in HUMAN_AGENT} == HUMAN_AGENT
    assert {k: file_call.body.get(k) for k in HUMAN_AGENT} == HUMAN_AGENT
    assert text_call.body["message"] == {"text": "Yes, since this morning."}
    assert file_call.files["filedata"].content == b"1 cake"
    assert [c.status for c in (text_call, file_call)] == [200, 200]


@BOTH_ENGINES
async def test_within_24_hours_a_reply_is_a_response(
    make_relay: Callable[..., RunningRelay], fakes: Fakes
) -> None:
    _, graph = fakes
    relay = relay_ahead(make_relay, graph, timedelta(hours=23))
    channel = add_messenger(relay)
    await customer_writes(relay, channel, "Open today?")
    async with inbox(relay) as page:
        thread = await only_thread(page)
        await owner_replies(page, thread, "Until six.")
        await delivery_where(page, thread, lambda d: d["status"] == "sent", "a send")
    [call] = graph.calls(MESSENGER_SEND)
    assert call.body is not None
    assert call.body["messaging_type"] == "RESPONSE" and "tag" not in call.body


@BOTH_ENGINES
async def test_past_7_days_nothing_goes_and_the_inbox_says_to_wait(
    make_relay: Callable[..., RunningRelay], fakes: Fakes
) -> None:
    _, graph = fakes
    relay = relay_ahead(make_relay, graph, timedelta(days=8))
    channel = add_messenger(relay)
    await customer_writes(relay, channel, "Do you still have the blue one?")
    async with inbox(relay) as page:
        thread = await only_thread(page)
        await owner_replies(page, thread, "Sorry for the wait: yes!")
        failed = await delivery_where(page, thread, done_sending, "a send")
        view = await thread_view(page, thread)
        [chat] = view["channels"]
        template = await page.post(f"/inbox/api/threads/{thread}/template", {"channel": chat["id"]})
    assert failed["status"] == "failed" and failed["attempts"] == 1  # at once, not retried
    reason = failed["error"]
    assert "outside Messenger's reply window" in reason and "7 days" in reason
    assert "8 days ago" in reason and "until they write again" in reason
    assert "template" not in reason
    assert graph.calls(MESSENGER_SEND) == []  # Meta was not even asked
    assert (chat["window_open"], chat["templates"], chat["template"]) == (False, False, None)
    assert template.status_code == 422
    assert "Messenger has no templates" in template.text
    assert "once they write again" in template.text and "--template" not in template.text


@BOTH_ENGINES
async def test_late_the_relays_own_notes_are_not_sent_as_a_persons(
    make_relay: Callable[..., RunningRelay], fakes: Fakes
) -> None:
    """A widget thread continued on Messenger gets the relay's note "continues on
    Messenger", sent to the chat. Past 24 hours (the relay's clock ahead) that note alone
    fails with why, uncalled; the owner's next reply goes tagged, without the note."""
    _, graph = fakes
    relay = relay_ahead(make_relay, graph, timedelta(hours=30))
    channel = add_messenger(relay)
    async with relay.client() as client:
        started = await start_thread(client, "From the widget")
        link = await client.post(
            "/v1/thread/continue",
            json={"channel": channel["id"]},
            headers=bearer(started["token"]),
        )
        assert link.status_code == 201, link.text
    async with relay.client(origin=None) as client:
        bind = messenger_postback_referral(PAGE_ID, PSID, link.json()["code"])
        await meta_writes(client, channel, bind)
    thread = started["thread"]["id"]
    async with inbox(relay) as page:
        note = await delivery_where(page, thread, lambda d: d["status"] == "failed", "the note")
        assert "only a person's reply" in note["error"]
        assert graph.calls(MESSENGER_SEND) == []
        await owner_replies(page, thread, "Hello from the shop")
        await delivery_where(page, thread, lambda d: d["status"] == "sent", "the reply")
    [call] = graph.calls(MESSENGER_SEND)
    assert call.body is not None and call.body["message"] == {"text": "Hello from the shop"}
    assert call.body["tag"] == "HUMAN_AGENT"


@BOTH_ENGINES
async def test_a_late_reply_meta_refuses_fails_saying_what_it_took(
    make_relay: Callable[..., RunningRelay], fakes: Fakes
) -> None:
    """The relay's clock says 25 hours; Meta's says 8 days (it knows of the customer's
    last message, say, from before the relay did): Meta refuses the tagged reply, and
    the delivery fails at once, saying it was a late, tagged reply."""
    _, graph = fakes
    relay = relay_ahead(make_relay, graph, timedelta(hours=25))
    channel = add_messenger(relay)
    await customer_writes(relay, channel, "Hello?")
    graph.customer_wrote(PAGE_ID, PSID, datetime.now(UTC) - timedelta(days=8))
    async with inbox(relay) as page:
        thread = await only_thread(page)
        await owner_replies(page, thread, "Hello!")
        failed = await delivery_where(page, thread, done_sending, "a send")
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert "after 24 hours as a person's reply" in failed["error"]
    assert "HUMAN_AGENT" in failed["error"] and "outside of allowed window" in failed["error"]
    [call] = graph.calls(MESSENGER_SEND)
    assert call.status == 400 and call.body is not None and call.body["tag"] == "HUMAN_AGENT"


@BOTH_ENGINES
async def test_messenger_takes_no_template(app_relay: RunningRelay, fakes: Fakes) -> None:
    _, graph = fakes
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    options = ["--page-id", PAGE_ID, "--page-token", PAGE_TOKEN, "--app-secret", APP_SECRET]
    options += ["--verify-token", VERIFY, "--template", "hello_again"]
    refused = run_porch(app_relay, "channel", "add", "alpha", "messenger", *options)
    assert refused.returncode != 0
    assert "Messenger has no approved templates" in refused.stderr
    assert graph.calls() == []  # refused before Meta was asked anything
    assert run_porch(app_relay, "channel", "list", "alpha").stdout.strip() == "[]"


def test_the_fake_checks_messengers_windows() -> None:
    """The fake refuses what Meta refuses, so the relay's tests above mean something."""
    with FakeGraphApi() as graph:
        graph.add_page(PAGE_ID, PAGE_TOKEN)

        def send(hours_ago: float, **typed: str) -> httpx.Response:
            graph.customer_wrote(PAGE_ID, PSID, datetime.now(UTC) - timedelta(hours=hours_ago))
            body = {"recipient": {"id": PSID}, "message": {"text": "Hi"}, **typed}
            return httpx.post(
                f"{graph.url}/{PAGE_ID}/messages",
                json=body,
                headers={"authorization": f"Bearer {PAGE_TOKEN}"},
            )

        def subcode(response: httpx.Response) -> Any:
            return response.json()["error"].get("error_subcode")

        assert send(23, messaging_type="RESPONSE").status_code == 200
        late = send(25, messaging_type="RESPONSE")
        assert late.status_code == 400 and subcode(late) == OUTSIDE_WINDOW
        assert send(25, **HUMAN_AGENT).status_code == 200
        assert send(6 * 24, **HUMAN_AGENT).status_code == 200
        too_late = send(8 * 24, **HUMAN_AGENT)
        assert too_late.status_code == 400 and subcode(too_late) == OUTSIDE_WINDOW
        untagged = send(1, messaging_type="RESPONSE", tag="HUMAN_AGENT")
        assert untagged.status_code == 400 and "only for messaging_type" in untagged.text
        unknown = send(1, messaging_type="MESSAGE_TAG", tag="PROMOTION")
        assert unknown.status_code == 400
