"""Messaging apps in the owner's inbox, in real Chromium against a real relay and a fake
Graph API: connecting a WhatsApp number from the settings, a WhatsApp customer's
thread (the app's badge, the customer's chat, what became of each reply, and why one
is being retried), the 24-hour window's notice with its approved template, and
Messenger's, which has no template: past its 7 days, wait for the customer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.apps_support import (
    APP_SECRET,
    PAGE_ID,
    PAGE_TOKEN,
    PHONE_ID,
    PSID,
    VERIFY,
    WA_NUMBER,
    WA_TOKEN,
    Fakes,
    add_messenger,
    porch,
)
from tests.e2e.conftest import Stage, running_stage, screenshot
from tests.e2e.test_inbox import OWNER_EMAIL, PHONE, SESSION, assert_accessible, device
from tests.fakes import webhooks
from tests.fakes.graph_api import MESSENGER_SEND, SERVER_ERROR, WHATSAPP_SEND
from tests.fakes.webhooks import messenger_message, meta_signed, whatsapp_message

CUSTOMER = "33700000000"  # the customer's wa_id
TEMPLATE = "hello_again"
CHAT = f"WhatsApp · Ada Lovelace · {WA_NUMBER}"  # the thread header's line for the chat
WINDOW_NOTICE = "WhatsApp only lets you reply within 24 hours of the customer's last message."
MESSENGER_WAIT = (
    "Messenger takes replies only within 7 days of the customer's last message, and that"
    " time has passed: nothing can reach them there until they write again."
)
MESSENGER_WAIT_FR = "Messenger n’accepte de réponses que dans les 7 jours"
WEBHOOK_OK = 200
ACCEPTED = 202


@pytest.fixture
def app_stage(tmp_path: Path, fakes: Fakes) -> Iterator[Stage]:
    """A stage whose relay sends to the fake Graph API (which knows alpha's number)."""
    _, graph = fakes
    with running_stage(tmp_path, meta_api_url=graph.url) as stage:
        yield stage


def open_inbox(page: Page, stage: Stage) -> None:
    """Signed in with a link (as from the email), the list on screen."""
    token = stage.relay.tokens.login_token(OWNER_EMAIL)
    page.goto(f"{stage.relay.url}/inbox/#login={token}")
    page.locator(".signin-card button.primary").click()
    expect(page.get_by_role("navigation")).to_be_visible()


def add_whatsapp(stage: Stage) -> dict[str, Any]:
    """Alpha's number connected as an operator would (`porch channel add`)."""
    options = ["--phone-number-id", PHONE_ID, "--access-token", WA_TOKEN]
    options += ["--app-secret", APP_SECRET, "--verify-token", VERIFY, "--template", TEMPLATE]
    porch(stage.relay, "channel", "add", "alpha", "whatsapp", *options)
    [channel] = porch(stage.relay, "channel", "list", "alpha")
    return channel  # type: ignore[no-any-return]


def post_webhook(webhook_url: str, payload: dict[str, Any]) -> None:
    """What Meta posts to the channel's webhook, signed with the app secret."""
    raw, headers = meta_signed(APP_SECRET, payload)
    answer = httpx.post(webhook_url, content=raw, headers=headers)
    assert answer.status_code == WEBHOOK_OK, answer.text


def customer_writes(webhook_url: str, text: str, wamid: str) -> None:
    message = whatsapp_message(PHONE_ID, webhooks.BUSINESS_NUMBER, CUSTOMER, text, wamid)
    post_webhook(webhook_url, message)


def set_french(stage: Stage) -> None:
    """The owner chose French (through the API, from another session)."""
    relay = stage.relay.url
    with httpx.Client(base_url=relay, headers={"origin": relay}) as api:
        me = api.post(SESSION, json={"token": stage.relay.tokens.login_token(OWNER_EMAIL)}).json()
        saved = api.post(
            "/inbox/api/me", json={"language": "fr"}, headers={"x-csrf-token": me["csrf"]}
        )
        assert saved.json()["language"] == "fr", saved.text


def open_thread(page: Page, text: str) -> None:
    page.locator(".threads .thread-item", has_text=text).locator("a").click()
    expect(page.get_by_role("log")).to_contain_text(text)


def reply(page: Page, body: str) -> None:
    page.locator("#reply").fill(body)
    page.locator(".composer .send").click()
    expect(page.locator(".message.owner", has_text=body)).to_be_visible()


def test_connect_whatsapp_then_follow_a_reply_until_read(
    browser: Browser, app_stage: Stage, fakes: Fakes
) -> None:
    stage = app_stage
    _, graph = fakes
    with device(browser) as inbox:
        open_inbox(inbox, stage)

        # Settings > Website: no app yet; connect alpha's WhatsApp number.
        inbox.get_by_role("button", name="Settings").click()
        dialog = inbox.get_by_role("dialog")
        dialog.get_by_role("tab", name="Website").click()
        apps = dialog.locator("section.apps")
        expect(apps.get_by_role("heading", name="Messaging apps")).to_be_visible()
        expect(apps).to_contain_text("No messaging app is connected yet.")
        apps.get_by_label("App", exact=True).select_option("whatsapp")
        token = apps.get_by_label("Access token")
        assert token.get_attribute("type") == "password"
        assert token.get_attribute("autocomplete") == "off"
        apps.get_by_label("Phone number ID").fill(PHONE_ID)
        token.fill(WA_TOKEN)
        apps.get_by_label("App secret").fill(APP_SECRET)
        apps.get_by_label("Verify token").fill(VERIFY)
        apps.get_by_label("Approved template").fill(TEMPLATE)
        apps.get_by_role("button", name="Connect").click()

        added = apps.locator(".app-added")
        expect(added).to_contain_text(f"WhatsApp {WA_NUMBER} is connected.")
        expect(added).to_contain_text("paste this URL and your verify token")
        webhook_url = apps.locator("#app-added-webhook").input_value()
        [channel] = porch(stage.relay, "channel", "list", "alpha")
        assert webhook_url == f"{stage.relay.url}/v1/channels/{channel['id']}/webhook"
        listed = apps.locator(".app-channels li")
        expect(listed).to_have_count(1)
        expect(listed).to_contain_text(WA_NUMBER)
        expect(listed).to_contain_text(f"Approved template: {TEMPLATE}")
        assert listed.locator("input").input_value() == webhook_url
        # The secrets left the page with the request; the relay never sends them back.
        assert token.input_value() == ""
        assert WA_TOKEN not in inbox.content() and APP_SECRET not in inbox.content()
        apps.locator(".app-channels").scroll_into_view_if_needed()
        screenshot(inbox, "inbox-apps-settings")
        assert_accessible(inbox)
        dialog.get_by_role("button", name="Close").click()

        # A WhatsApp customer writes: the thread comes live, badged, with their chat.
        customer_writes(webhook_url, "Is the shop open on Sunday?", "wamid.in1")
        listed_thread = inbox.locator(".thread-item", has_text="Is the shop open on Sunday?")
        expect(listed_thread.locator(".where")).to_contain_text("WhatsApp")
        open_thread(inbox, "Is the shop open on Sunday?")
        visitor_message = inbox.locator(".message.visitor")
        expect(visitor_message.locator(".via")).to_have_text("on WhatsApp")
        expect(inbox.locator(".thread-head .chats")).to_have_text(CHAT)
        expect(inbox.locator(".window-notice")).to_be_hidden()

        # The owner replies from the inbox: it reaches WhatsApp, and the inbox says so.
        reply(inbox, "Yes, from 8 to 13.")
        sent = graph.wait_for_calls(WHATSAPP_SEND, 1)[0]
        assert (sent.token, sent.node) == (WA_TOKEN, PHONE_ID)
        assert sent.body is not None and sent.body["text"]["body"] == "Yes, from 8 to 13."
        deliveries = inbox.locator(".deliveries[role=status]")
        expect(deliveries).to_have_text("Sent on WhatsApp")  # fetched again after sending
        # The delivery line sits under the owner's reply.
        assert inbox.evaluate(
            "document.querySelector('.deliveries').previousElementSibling"
            ".classList.contains('owner')"
        )

        # WhatsApp says the customer read it.
        wamid = sent.answer["messages"][0]["id"] if sent.answer else ""
        post_webhook(webhook_url, webhooks.whatsapp_status(PHONE_ID, wamid, "read", CUSTOMER))
        inbox.reload()
        expect(deliveries).to_have_text("Read on WhatsApp")
        expect(deliveries.locator(".failed")).to_have_count(0)
        screenshot(inbox, "inbox-apps-read")

        # Removing the number asks first, then the settings list it no more.
        inbox.get_by_role("button", name="Settings").click()
        dialog.get_by_role("tab", name="Website").click()
        listed.get_by_role("button", name="Remove").click()
        expect(listed.locator(".confirm")).to_contain_text("Disconnect WhatsApp")
        listed.locator(".confirm").get_by_role("button", name="Remove").click()
        expect(listed).to_have_count(0)
        expect(apps).to_contain_text("No messaging app is connected yet.")
        assert porch(stage.relay, "channel", "list", "alpha") == []


def test_outside_the_window_a_reply_fails_plainly_and_the_template_goes(
    browser: Browser, tmp_path: Path, fakes: Fakes
) -> None:
    _, graph = fakes
    # The relay's clock runs 25 hours ahead: what the customer writes now is "yesterday".
    ahead = (datetime.now(UTC) + timedelta(hours=25)).isoformat()
    with (
        running_stage(tmp_path, meta_api_url=graph.url, clock_start=ahead) as stage,
        device(browser) as inbox,
    ):
        channel = add_whatsapp(stage)
        open_inbox(inbox, stage)
        customer_writes(channel["webhook_url"], "Can I order a cake?", "wamid.in2")
        open_thread(inbox, "Can I order a cake?")

        notice = inbox.locator(".window-notice")
        expect(notice).to_contain_text(WINDOW_NOTICE)
        expect(notice).to_contain_text("Send your approved template")

        # A reply anyway: the relay does not send it, and the inbox says why.
        reply(inbox, "Sure!")
        failed = inbox.locator(".deliveries .delivery.failed")
        expect(failed).to_contain_text("Failed on WhatsApp: ")
        expect(failed).to_contain_text("24-hour window")
        assert not graph.calls(WHATSAPP_SEND)

        notice.get_by_role("button", name="Send template").click()
        expect(notice.get_by_role("status")).to_have_text("Template sent.")
        sent = graph.wait_for_calls(WHATSAPP_SEND, 1)[0]
        assert sent.body is not None and sent.body["type"] == "template"
        assert sent.body["template"]["name"] == TEMPLATE
        # The inbox re-reads a delivery in flight every few seconds: on a loaded machine
        # (the suite on two workers) more than expect's default 5 s may pass.
        expect(inbox.locator(".deliveries")).to_contain_text(
            "Template · Sent on WhatsApp", timeout=15_000
        )
        expect(failed).to_contain_text("24-hour window")  # what became of "Sure!" stays
        screenshot(inbox, "inbox-apps-window-closed")
        assert_accessible(inbox)  # the notice, the failure and the chats


def test_phone_in_french(browser: Browser, app_stage: Stage) -> None:
    stage = app_stage
    channel = add_whatsapp(stage)
    set_french(stage)
    customer_writes(channel["webhook_url"], "Avez-vous du pain sans gluten ?", "wamid.in3")
    with device(browser, viewport=PHONE, locale="fr-FR", has_touch=True) as phone:
        open_inbox(phone, stage)
        open_thread(phone, "pain sans gluten")
        expect(phone.locator(".message.visitor .via")).to_have_text("sur WhatsApp")
        expect(phone.locator(".thread-head .chats")).to_have_text(CHAT)
        reply(phone, "Oui, le samedi.")
        expect(phone.locator(".deliveries")).to_have_text("Envoyé sur WhatsApp")
        assert_no_sideways_scroll(phone)
        screenshot(phone, "inbox-apps-phone-thread")

        phone.get_by_role("button", name="Retour aux conversations").click()
        phone.get_by_role("button", name="Réglages").click()
        dialog = phone.get_by_role("dialog")
        dialog.get_by_role("tab", name="Site").click()
        apps = dialog.locator("section.apps")
        expect(apps.get_by_role("heading", name="Applications de messagerie")).to_be_visible()
        expect(apps.locator(".app-channels li")).to_contain_text("Modèle approuvé : hello_again")
        expect(apps.get_by_role("button", name="Connecter")).to_be_visible()
        apps.get_by_label("Application", exact=True).select_option("telegram")
        expect(apps.get_by_label("Jeton du bot (donné par @BotFather)")).to_be_visible()
        assert_no_sideways_scroll(phone)
        apps.locator(".app-channels").scroll_into_view_if_needed()
        screenshot(phone, "inbox-apps-phone-settings")


def assert_no_sideways_scroll(page: Page) -> None:
    """Nothing the apps added is wider than a 390 px phone."""
    wide = page.evaluate(
        """() => [...document.querySelectorAll('.app *, dialog[open] *')]
          .filter((node) => node.checkVisibility())
          .filter((node) => node.getBoundingClientRect().right > innerWidth + 1)
          .map((node) => node.className || node.tagName)"""
    )
    assert wide == [], wide


def test_a_reply_that_keeps_failing_says_why_while_it_is_retried(
    browser: Browser, app_stage: Stage, fakes: Fakes
) -> None:
    """Meta keeps answering 500: the delivery waits for its next try (half a minute,
    then longer, for about a day), and the inbox says why instead of "Queued"."""
    stage = app_stage
    _, graph = fakes
    graph.fail_next(WHATSAPP_SEND, SERVER_ERROR, times=100)
    channel = add_whatsapp(stage)
    with device(browser) as inbox:
        open_inbox(inbox, stage)
        customer_writes(channel["webhook_url"], "Is the oven fixed?", "wamid.in4")
        open_thread(inbox, "Is the oven fixed?")
        reply(inbox, "Not yet.")
        deliveries = inbox.locator(".deliveries")
        expect(deliveries).to_have_text(
            f"Retrying on WhatsApp: Meta answered 500: {SERVER_ERROR.message}", timeout=15_000
        )
        expect(deliveries.locator(".failed")).to_have_count(0)  # not given up on
        assert [c.status for c in graph.calls(WHATSAPP_SEND)] == [500]


def test_messenger_past_seven_days_says_to_wait_for_the_customer(
    browser: Browser, tmp_path: Path, fakes: Fakes
) -> None:
    _, graph = fakes
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    # The relay's clock runs 8 days ahead: what the customer writes now is a week old.
    ahead = (datetime.now(UTC) + timedelta(days=8)).isoformat()
    with (
        running_stage(tmp_path, meta_api_url=graph.url, clock_start=ahead) as stage,
        device(browser) as inbox,
    ):
        channel = add_messenger(stage.relay)
        post_webhook(
            channel["webhook_url"], messenger_message(PAGE_ID, PSID, "Still open?", "m.in1")
        )
        open_inbox(inbox, stage)
        open_thread(inbox, "Still open?")
        notice = inbox.locator(".window-notice")
        expect(notice).to_contain_text(MESSENGER_WAIT)
        expect(notice.locator("p").first).not_to_contain_text("template")
        expect(notice.get_by_role("button", name="Send template")).to_be_hidden()

        reply(inbox, "Yes, until six.")
        failed = inbox.locator(".deliveries .delivery.failed")
        expect(failed).to_contain_text("Failed on Messenger: outside Messenger's reply window")
        expect(failed).to_contain_text("until they write again")
        assert not graph.calls(MESSENGER_SEND)
        assert_accessible(inbox)

        set_french(stage)
        inbox.reload()
        expect(notice).to_contain_text(MESSENGER_WAIT_FR)
