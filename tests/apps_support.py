"""Messaging apps in tests: the provider fakes with one bot and one WhatsApp number, a
relay pointed at them, and `porch channel …` run against its database. The fixtures are
registered in tests/conftest.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest

from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.webhooks import (
    BUSINESS_NUMBER,
    meta_signed,
    telegram_headers,
    whatsapp_document,
    whatsapp_image,
    whatsapp_message,
)
from tests.support import RunningRelay, porch_command, relay_env

if TYPE_CHECKING:  # not imported for real: conftest.py imports this module
    from tests.test_inbox_api import Inbox

T = TypeVar("T")

BOT_TOKEN = "4242:alpha-test-token"
PHONE_ID, WA_TOKEN, APP_SECRET, VERIFY = "1099", "wa-token", "app-secret", "verify-me"
WA_NUMBER = "+33 6 12 34 56 78"
PAGE_ID, PAGE_TOKEN = "5005", "page-token"
CHAT = 7070  # the Telegram customer's private chat (their user id)
WA_USER = "33700000000"  # the WhatsApp customer's wa_id
PSID = "6060"  # the Messenger customer's page-scoped id
Fakes = tuple[FakeBotApi, FakeGraphApi]


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    """The Bot API with the alpha bot, the Graph API with alpha's WhatsApp number."""
    with FakeBotApi() as bot, FakeGraphApi() as graph:
        bot.add_bot(BOT_TOKEN, "alpha_bot")
        graph.add_whatsapp(PHONE_ID, WA_TOKEN, WA_NUMBER)
        yield bot, graph


@pytest.fixture
def app_relay(make_relay: Callable[..., RunningRelay], fakes: Fakes) -> RunningRelay:
    bot, graph = fakes
    return make_relay(telegram_api_url=bot.url, meta_api_url=graph.url)


def porch(relay: RunningRelay, *args: str) -> Any:
    """`porch ARGS…` against the relay's database and the fakes; its JSON output."""
    done = run_porch(relay, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_porch(relay: RunningRelay, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **relay_env(relay),
        "PORCH_TELEGRAM_API_URL": relay.config.telegram_api_url,
        "PORCH_META_API_URL": relay.config.meta_api_url,
        "PORCH_PUBLIC_URL": relay.url,
    }
    return subprocess.run([*porch_command(), *args], env=env, capture_output=True, text=True)


def add_telegram(relay: RunningRelay, site: str = "alpha", token: str = BOT_TOKEN) -> Any:
    return porch(relay, "channel", "add", site, "telegram", "--bot-token", token)


def add_whatsapp(
    relay: RunningRelay,
    site: str = "alpha",
    phone_id: str = PHONE_ID,
    token: str = WA_TOKEN,
    app_secret: str = APP_SECRET,
) -> Any:
    options = ["--phone-number-id", phone_id, "--access-token", token]
    options += ["--app-secret", app_secret, "--verify-token", VERIFY]
    return porch(relay, "channel", "add", site, "whatsapp", *options)


def add_messenger(relay: RunningRelay, site: str = "alpha") -> Any:
    """Alpha's page (the fake must know it: `graph.add_page(PAGE_ID, PAGE_TOKEN)`)."""
    options = ["--page-id", PAGE_ID, "--page-token", PAGE_TOKEN]
    options += ["--app-secret", APP_SECRET, "--verify-token", VERIFY]
    return porch(relay, "channel", "add", site, "messenger", *options)


def secret_token(bot: FakeBotApi) -> str:
    """What Telegram sends with each update: the secret the relay set with the webhook."""
    webhook = bot.webhook(BOT_TOKEN)
    assert webhook is not None
    return webhook.secret_token


def wa_text(text: str, wamid: str, timestamp: int | None = None) -> dict[str, Any]:
    """A text from the WhatsApp customer to alpha's number."""
    return whatsapp_message(PHONE_ID, BUSINESS_NUMBER, WA_USER, text, wamid, timestamp=timestamp)


def wa_image(wamid: str, media_id: str, caption: str | None = None) -> dict[str, Any]:
    """An image from the WhatsApp customer (its bytes: `graph.add_media(…, media_id, …)`)."""
    return whatsapp_image(
        PHONE_ID, BUSINESS_NUMBER, WA_USER, wamid, caption=caption, media_id=media_id
    )


def wa_document(wamid: str, media_id: str, filename: str) -> dict[str, Any]:
    return whatsapp_document(PHONE_ID, BUSINESS_NUMBER, WA_USER, wamid, media_id, filename)


def webhook_path(channel: dict[str, Any]) -> str:
    return f"/v1/channels/{channel['id']}/webhook"


# -- what the customer sends, what the owner sees ------------------------------------------

POLL_INTERVAL = 0.05  # seconds between looks at a state no event announces
EVENT_TIMEOUT = 10.0  # seconds; what the relay does takes a fraction of one


async def until(
    check: Callable[[], Awaitable[T | None]], what: str, timeout: float = EVENT_TIMEOUT
) -> T:
    """Poll an async `check` until it gives something; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL)


async def telegram_writes(
    client: httpx.AsyncClient, channel: dict[str, Any], secret: str, update: dict[str, Any]
) -> None:
    answer = await client.post(webhook_path(channel), json=update, headers=telegram_headers(secret))
    assert answer.status_code == 200, answer.text


async def meta_writes(
    client: httpx.AsyncClient, channel: dict[str, Any], payload: dict[str, Any]
) -> None:
    raw, headers = meta_signed(APP_SECRET, payload)
    answer = await client.post(webhook_path(channel), content=raw, headers=headers)
    assert answer.status_code == 200, answer.text


async def thread_of(page: Inbox, last_body: str) -> str:
    """The id of the one thread whose last message is `last_body`."""
    found = [t["id"] for t in await page.threads() if t["last_message"]["body"] == last_body]
    assert len(found) == 1, f"expected one thread ending in {last_body!r}, got {found}"
    return str(found[0])


async def thread_view(page: Inbox, thread: str) -> dict[str, Any]:
    response = await page.get(f"/inbox/api/threads/{thread}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def owner_replies(
    page: Inbox, thread: str, body: str, files: tuple[tuple[str, bytes], ...] = ()
) -> dict[str, Any]:
    """The owner answers from the inbox, with `files` (name, bytes) uploaded first."""
    attachments = [(await owner_uploads(page, thread, name, data))["id"] for name, data in files]
    sent = await page.post(
        f"/inbox/api/threads/{thread}/messages",
        {"body": body, "client_id": uuid.uuid4().hex, "attachments": attachments},
    )
    assert sent.status_code == 201, sent.text
    return sent.json()  # type: ignore[no-any-return]


async def owner_uploads(page: Inbox, thread: str, name: str, data: bytes) -> dict[str, Any]:
    uploaded = await page.client.post(
        f"/inbox/api/threads/{thread}/attachments",
        files={"file": (name, data, "application/octet-stream")},
        headers={"x-csrf-token": page.me["csrf"]},
    )
    assert uploaded.status_code == 201, uploaded.text
    return uploaded.json()  # type: ignore[no-any-return]


async def attachment_bytes(attachment: dict[str, Any]) -> bytes:
    """What an attachment's signed link serves (no header needed)."""
    async with httpx.AsyncClient() as anyone:
        got = await anyone.get(attachment["url"])
    assert got.status_code == 200, got.text
    return got.content


async def delivery_where(
    page: Inbox,
    thread: str,
    wanted: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = EVENT_TIMEOUT,
) -> dict[str, Any]:
    """The newest delivery of the thread that `wanted` accepts, once there is one."""

    async def look() -> dict[str, Any] | None:
        deliveries = (await thread_view(page, thread))["deliveries"]
        return next((d for d in deliveries if wanted(d)), None)

    return await until(look, what, timeout)
