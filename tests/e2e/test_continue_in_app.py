"""Continue in the app: the widget's ⋯ menu offers the site's messaging apps, each a real
link (opened by the click itself, so no browser blocks it) holding a single-use code that
binds the visitor's chat there to their thread. The site's bot is on a fake Bot API."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Request, expect

from relay.channels.apps.provider import CODE_ALPHABET, CODE_LENGTH
from tests.e2e.conftest import Stage, running_stage
from tests.e2e.test_privacy import MENU, MORE
from tests.e2e.test_resume import device
from tests.e2e.test_widget import STORED_VISITOR, open_and_send
from tests.fakes.telegram_api import FakeBotApi
from tests.support import porch_command, relay_env

BOT_TOKEN = "4242:alpha-bakery-test-token"
BOT = "alpha_bakery_bot"
APP_LINK = re.compile(rf"^https://t\.me/{BOT}\?start=([{CODE_ALPHABET}]{{{CODE_LENGTH}}})$")
CUSTOMER = {"id": 7070, "is_bot": False, "first_name": "Ada"}  # the visitor, on Telegram
PRIVACY_ITEMS = [
    "Download my conversation (text)",
    "Download my data (JSON)",
    "Delete my conversation",
    "Sign out on this device",
    "Sign out everywhere",
]
REFUSED_CODE = "Failed to load resource: the server responded with a status of 404"
CODE_FRESH = timedelta(minutes=10)  # privacy.js asks again for a code older than this


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as api:
        api.add_bot(BOT_TOKEN, BOT)
        yield api


@pytest.fixture
def telegram_stage(tmp_path: Path, bot_api: FakeBotApi) -> Iterator[Stage]:
    """A stage whose site, alpha, has a Telegram bot, added as an operator would."""
    with running_stage(tmp_path, telegram_api_url=bot_api.url) as stage:
        porch(stage, "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN)
        yield stage


def porch(stage: Stage, *args: str) -> None:
    """A `porch` command, as the operator runs it, on the stage's relay and bot."""
    env = {**relay_env(stage.relay), "PORCH_TELEGRAM_API_URL": stage.relay.config.telegram_api_url}
    env["PORCH_PUBLIC_URL"] = stage.relay.url  # where setWebhook points the bot
    done = subprocess.run([*porch_command(), *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def code_requests(context: BrowserContext) -> list[Request]:
    """Every code the widget asks the relay for; t.me answered here, never reached."""
    requests: list[Request] = []
    context.on(
        "request",
        lambda request: (
            requests.append(request) if request.url.endswith("/v1/thread/continue") else None
        ),
    )
    context.route(
        "https://t.me/**",
        lambda route: route.fulfill(content_type="text/html", body="<title>Telegram</title>"),
    )
    return requests


def start_and_open_menu(stage: Stage, page: Page, path: str = "/") -> None:
    page.goto(stage.url(path))
    open_and_send(page, "Can I follow up from my phone?")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    page.locator(MORE).focus()
    page.keyboard.press("Enter")  # the keyboard opens the menu, as a click would
    expect(page.locator(MENU)).to_be_visible()


def app_link(page: Page, name: str = "Continue on Telegram") -> Locator:
    return page.locator(MENU).get_by_role("menuitem", name=name)


def telegram_delivers(api: FakeBotApi, update_id: int, text: str) -> None:
    """The customer wrote `text` to the bot: Telegram posts the update to the webhook
    the relay set, with the secret it chose."""
    hook = api.webhook(BOT_TOKEN)
    assert hook is not None, "the relay set no webhook"
    update = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": CUSTOMER["id"], "type": "private", "first_name": "Ada"},
            "from": CUSTOMER,
            "text": text,
        },
    }
    headers = {"x-telegram-bot-api-secret-token": hook.secret_token}
    response = httpx.post(hook.url, json=update, headers=headers)
    assert response.status_code == 200, response.text


def test_menu_links_to_the_bot_with_a_code_that_binds_the_chat(
    telegram_stage: Stage, bot_api: FakeBotApi, page: Page, code_requests: list[Request]
) -> None:
    start_and_open_menu(telegram_stage, page)
    items = page.locator(MENU).get_by_role("menuitem")
    expect(items).to_have_text(["Continue on Telegram", *PRIVACY_ITEMS])
    link = app_link(page)
    expect(link).to_have_attribute("href", APP_LINK)
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener")
    expect(link).not_to_have_attribute("aria-disabled", "true")
    first = link.get_attribute("href")

    # The arrow keys reach it like any item (it is first: up wraps to the last, down back).
    expect(link).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(items.last).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(link).to_be_focused()
    with page.expect_popup() as opened:
        page.keyboard.press("Enter")
    expect(opened.value).to_have_url(str(first))
    expect(page.locator(MENU)).to_be_hidden()  # the click put the menu away
    expect(page.locator(MORE)).to_be_focused()

    # That code is spent: the next opening asks for another.
    page.locator(MORE).click()
    expect(link).not_to_have_attribute("href", str(first))
    expect(link).to_have_attribute("href", APP_LINK)
    assert len(code_requests) == 2
    page.keyboard.press("Escape")

    # The app opens the bot with "/start CODE": the chat there is this thread from now on,
    # and what the visitor writes in Telegram shows in the widget, live.
    code = APP_LINK.fullmatch(str(first)).group(1)  # type: ignore[union-attr]
    telegram_delivers(bot_api, 1, f"/start {code}")
    telegram_delivers(bot_api, 2, "Writing from Telegram now")
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    expect(page.locator(STORED_VISITOR).last).to_contain_text("Writing from Telegram now")


def test_a_code_is_asked_again_only_once_ten_minutes_old(
    telegram_stage: Stage, page: Page, code_requests: list[Request]
) -> None:
    now = datetime.now(UTC)
    page.clock.set_fixed_time(now)  # Date stands still; timers and the network run
    start_and_open_menu(telegram_stage, page)
    link = app_link(page)
    expect(link).to_have_attribute("href", APP_LINK)
    first = str(link.get_attribute("href"))
    page.keyboard.press("Escape")
    page.clock.set_fixed_time(now + CODE_FRESH - timedelta(seconds=30))
    page.locator(MORE).click()
    expect(link).to_have_attribute("href", first)  # still fresh: the same code
    assert len(code_requests) == 1
    page.keyboard.press("Escape")
    page.clock.set_fixed_time(now + CODE_FRESH + timedelta(seconds=1))
    page.locator(MORE).click()
    expect(link).to_have_attribute("href", APP_LINK)
    expect(link).not_to_have_attribute("href", first)
    assert len(code_requests) == 2


def test_the_item_speaks_french_on_a_french_page(
    telegram_stage: Stage, page: Page, code_requests: list[Request]
) -> None:
    start_and_open_menu(telegram_stage, page, "/fr")
    link = app_link(page, "Continuer sur Telegram")
    expect(link).to_have_attribute("href", APP_LINK)
    expect(page.locator(MENU).get_by_role("menuitem").first).to_have_text("Continuer sur Telegram")


def test_a_code_refused_leaves_the_item_disabled_and_the_menu_working(
    telegram_stage: Stage, browser: Browser
) -> None:
    # The relay's 404 for the code: Chromium logs it on the console by itself.
    with device(browser, allow=REFUSED_CODE) as page:
        page.goto(telegram_stage.url("/"))
        open_and_send(page, "Hello")
        expect(page.locator(STORED_VISITOR)).to_have_count(1)
        # The owner removes the bot while the page is open: the widget still lists it.
        (channel,) = httpx.get(f"{telegram_stage.relay.url}/v1/sites/alpha/config").json()[
            "channels"
        ]
        porch(telegram_stage, "channel", "remove", "alpha", channel["id"])
        with page.expect_response(lambda r: r.url.endswith("/v1/thread/continue")) as asked:
            page.locator(MORE).click()
        assert asked.value.status == 404
        link = app_link(page)
        expect(link).to_have_attribute("aria-disabled", "true")
        assert link.get_attribute("href") is None
        expect(link).to_be_focused()
        page.keyboard.press("Enter")  # a link without its code goes nowhere
        expect(page.locator(MENU)).to_be_visible()
        page.keyboard.press("ArrowDown")
        with page.expect_download() as download:
            page.keyboard.press("Enter")
        assert download.value.suggested_filename == "conversation.txt"


def test_a_site_without_apps_offers_none(
    stage: Stage, page: Page, code_requests: list[Request]
) -> None:
    config = httpx.get(f"{stage.relay.url}/v1/sites/alpha/config").json()
    assert config["channels"] == []
    start_and_open_menu(stage, page)
    expect(page.locator(MENU).get_by_role("menuitem")).to_have_text(PRIVACY_ITEMS)
    expect(page.locator(f"{MENU} a")).to_have_count(0)
    assert code_requests == []
