"""Messaging apps end to end, and what goes wrong on the way: customers who write from
Telegram and WhatsApp without the widget, the owner answering from the inbox and by
email, long replies, photos and places, WhatsApp's statuses and 24-hour window, providers
that fail, hang, throttle or revoke, and a relay killed with -9 mid-way."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.tokens import Tokens
from tests.apps_support import (
    BOT_TOKEN,
    CHAT,
    EVENT_TIMEOUT,
    PHONE_ID,
    WA_TOKEN,
    WA_USER,
    Fakes,
    add_telegram,
    add_whatsapp,
    delivery_where,
    meta_writes,
    owner_replies,
    secret_token,
    telegram_writes,
    thread_of,
    thread_view,
    until,
    wa_text,
    webhook_path,
)
from tests.fakes.graph_api import SERVER_ERROR, WHATSAPP_SEND
from tests.fakes.telegram_api import SERVER_ERROR as BOT_SERVER_ERROR
from tests.fakes.telegram_api import FakeBotApi, too_many_requests
from tests.fakes.webhooks import (
    BUSINESS_NUMBER,
    RE_ENGAGEMENT_ERROR,
    telegram_photo,
    telegram_update,
    whatsapp_audio,
    whatsapp_image,
    whatsapp_location,
    whatsapp_status,
    whatsapp_sticker,
)
from tests.mail.conftest import mail_relay
from tests.mail.smtp_sink import SinkServer
from tests.mail.test_reply_loop import reply_to, send_to_relay
from tests.pg import BOTH_ENGINES, open_database
from tests.support import (
    SECRET,
    PorchProcess,
    RunningRelay,
    add_site,
    bearer,
    free_port,
    porch_command,
    porch_env,
)
from tests.test_inbox_api import inbox

pytestmark = BOTH_ENGINES

FAST_RETRY = 0.05  # seconds before a delivery's first retry, instead of half a minute
SEND = "sendMessage"
# A call to an app may take this long in the child relays (PORCH_APP_SEND_TIMEOUT); on
# PostgreSQL, a delivery claimed by a relay that died is taken up again after twice it.
APP_SEND_TIMEOUT = 2
RESTART_SEND_TIMEOUT = 4 * APP_SEND_TIMEOUT + 5.0
DELIVERED = "a delivery sent"


def fast_retries(relay: RunningRelay) -> RunningRelay:
    for kind in ("telegram", "whatsapp"):
        relay.services.workers[kind].retry_base = FAST_RETRY
    return relay


def sent_texts(bot: FakeBotApi) -> list[str]:
    """What the bot's chats really got (not the calls that failed or hung)."""
    return [str(message["text"]) for message in bot.sent(BOT_TOKEN)]


def is_sent(delivery: dict[str, Any]) -> bool:
    return delivery["status"] == "sent"


def is_failed(delivery: dict[str, Any]) -> bool:
    return delivery["status"] == "failed"


async def customers_write(
    relay: RunningRelay, fakes: Fakes, telegram: str | None, whatsapp: str | None
) -> dict[str, dict[str, Any]]:
    """A Telegram user and a WhatsApp user each write first, with no widget; the
    channels connected for them, by kind."""
    bot, _ = fakes
    channels = {}
    async with relay.client(origin=None) as client:
        if telegram is not None:
            channels["telegram"] = add_telegram(relay)
            update = telegram_update(1, CHAT, telegram)
            await telegram_writes(client, channels["telegram"], secret_token(bot), update)
        if whatsapp is not None:
            channels["whatsapp"] = add_whatsapp(relay)
            await meta_writes(client, channels["whatsapp"], wa_text(whatsapp, "wamid.in1"))
    return channels


# -- the owner's reply reaches the app, once -------------------------------------------


async def test_inbox_replies_reach_telegram_and_whatsapp_once(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, graph = fakes
    await customers_write(app_relay, fakes, "Open on Sunday?", "Do you deliver?")
    async with inbox(app_relay) as page:
        on_telegram = await thread_of(page, "Open on Sunday?")
        on_whatsapp = await thread_of(page, "Do you deliver?")
        assert on_telegram != on_whatsapp
        await owner_replies(page, on_telegram, "Yes, 9 to 12.")
        await owner_replies(page, on_whatsapp, "Yes, within 5 km.")
        await delivery_where(page, on_telegram, is_sent, DELIVERED)
        await delivery_where(page, on_whatsapp, is_sent, DELIVERED)
        telegram = (await thread_view(page, on_telegram))["deliveries"]
    [call] = bot.calls(SEND)
    assert call.token == BOT_TOKEN
    assert (str(call.params["chat_id"]), call.params["text"]) == (str(CHAT), "Yes, 9 to 12.")
    [sent] = graph.calls(WHATSAPP_SEND)
    assert (sent.token, sent.node) == (WA_TOKEN, PHONE_ID)
    assert sent.body is not None and sent.body["to"] == WA_USER
    assert sent.body["text"]["body"] == "Yes, within 5 km."
    assert [(d["channel"], d["kind"], d["status"]) for d in telegram] == [
        ("telegram", "visitor_notify", "sent")
    ]


async def test_email_replies_reach_telegram_and_whatsapp_once(
    make_relay: Callable[..., RunningRelay], sink: SinkServer, fakes: Fakes
) -> None:
    bot, graph = fakes
    relay = mail_relay(make_relay, sink, telegram_api_url=bot.url, meta_api_url=graph.url)
    await customers_write(relay, fakes, "Gluten-free bread?", "A cake for Friday?")
    notifications = [await sink.sink.next(), await sink.sink.next()]
    by_text = {
        customer: next(n for n in notifications if customer in n.get_body(("plain",)).get_content())
        for customer in ("Gluten-free bread?", "A cake for Friday?")
    }
    await send_to_relay(relay, reply_to(by_text["Gluten-free bread?"], "On Tuesdays."))
    await send_to_relay(relay, reply_to(by_text["A cake for Friday?"], "Yes, order by noon."))
    async with inbox(relay) as page:
        on_telegram = await thread_of(page, "On Tuesdays.")
        on_whatsapp = await thread_of(page, "Yes, order by noon.")
        await delivery_where(page, on_telegram, is_sent, DELIVERED)
        await delivery_where(page, on_whatsapp, is_sent, DELIVERED)
    assert [(str(c.params["chat_id"]), c.params["text"]) for c in bot.calls(SEND)] == [
        (str(CHAT), "On Tuesdays.")
    ]
    bodies = [c.body["text"]["body"] for c in graph.calls(WHATSAPP_SEND) if c.body]
    assert bodies == ["Yes, order by noon."]


async def test_a_long_telegram_reply_arrives_in_order_in_pieces(
    make_relay: Callable[..., RunningRelay], fakes: Fakes
) -> None:
    bot, graph = fakes
    relay = make_relay(telegram_api_url=bot.url, meta_api_url=graph.url, max_body_chars=10_000)
    reply = " ".join(f"word{i:04}" for i in range(1100))  # 9,899 characters
    await customers_write(relay, fakes, "Tell me everything", None)
    async with inbox(relay) as page:
        thread = await thread_of(page, "Tell me everything")
        await owner_replies(page, thread, reply)
        await delivery_where(page, thread, is_sent, DELIVERED)
    pieces = sent_texts(bot)
    assert len(pieces) == 3 and all(len(piece) <= 4096 for piece in pieces)
    assert " ".join(pieces) == reply
    assert {str(c.params["chat_id"]) for c in bot.calls(SEND)} == {str(CHAT)}


# -- what cannot be shown yet is said, never dropped --------------------------------------


async def test_photos_places_stickers_and_voice_are_noted_in_the_thread(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, _ = fakes
    channels = await customers_write(app_relay, fakes, "Here is the cake I mean", "Where are you?")
    telegram, whatsapp = channels["telegram"], channels["whatsapp"]
    async with app_relay.client(origin=None) as client:
        await telegram_writes(client, telegram, secret_token(bot), telegram_photo(2, CHAT))
        photo = telegram_photo(3, CHAT, caption="This one")
        await telegram_writes(client, telegram, secret_token(bot), photo)
        for payload in (
            whatsapp_image(PHONE_ID, BUSINESS_NUMBER, WA_USER, "wamid.img"),
            whatsapp_location(PHONE_ID, BUSINESS_NUMBER, WA_USER, "wamid.loc"),
            whatsapp_sticker(PHONE_ID, BUSINESS_NUMBER, WA_USER, "wamid.stk"),
            whatsapp_audio(PHONE_ID, BUSINESS_NUMBER, WA_USER, "wamid.aud"),
        ):
            await meta_writes(client, whatsapp, payload)
    async with inbox(app_relay) as page:
        threads = {t["last_message"]["via"]: t["id"] for t in await page.threads()}
        on_telegram = await thread_view(page, threads["telegram"])
        on_whatsapp = await thread_view(page, threads["whatsapp"])
    assert [(m["author"], m["body"]) for m in on_telegram["messages"]] == [
        ("visitor", "Here is the cake I mean"),
        ("visitor", "[Sent a photo on Telegram: open Telegram to see it]"),
        ("visitor", "This one\n[Sent a photo on Telegram: open Telegram to see it]"),
    ]
    assert [m["body"] for m in on_whatsapp["messages"]] == [
        "Where are you?",
        "[Sent a photo on WhatsApp: open WhatsApp to see it]",
        "[Sent a location on WhatsApp: open WhatsApp to see it]",
        "[Sent a sticker on WhatsApp: open WhatsApp to see it]",
        "[Sent a voice message on WhatsApp: open WhatsApp to see it]",
    ]


# -- WhatsApp's statuses ------------------------------------------------------------------


async def test_whatsapp_statuses_update_the_reply_receipt(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    _, graph = fakes
    channel = (await customers_write(app_relay, fakes, None, "Still open?"))["whatsapp"]
    async with inbox(app_relay) as page, app_relay.client(origin=None) as client:
        thread = await thread_of(page, "Still open?")
        await owner_replies(page, thread, "Until 7.")
        first = await delivery_where(page, thread, is_sent, DELIVERED)
        [call] = await graph.await_calls(WHATSAPP_SEND)
        assert call.answer is not None
        wamid = call.answer["messages"][0]["id"]
        receipts = []
        for status in ("sent", "delivered", "read"):
            await meta_writes(client, channel, whatsapp_status(PHONE_ID, wamid, status, WA_USER))
            [now] = [d for d in (await thread_view(page, thread))["deliveries"]]
            receipts.append((now["id"], now["receipt"], now["error"]))
        assert receipts == [(first["id"], r, None) for r in ("sent", "delivered", "read")]
        # Meta delivers statuses out of order: a late "delivered" does not undo "read".
        await meta_writes(client, channel, whatsapp_status(PHONE_ID, wamid, "delivered", WA_USER))
        [now] = (await thread_view(page, thread))["deliveries"]
        assert now["receipt"] == "read"

        await owner_replies(page, thread, "And on Sunday until noon.")
        await graph.await_calls(WHATSAPP_SEND, 2)
        second = await delivery_where(
            page, thread, lambda d: d["id"] != first["id"] and is_sent(d), DELIVERED
        )
        answer = graph.calls(WHATSAPP_SEND)[1].answer
        assert answer is not None
        failed = whatsapp_status(PHONE_ID, answer["messages"][0]["id"], "failed", WA_USER)
        await meta_writes(client, channel, failed)
        newest, older = (await thread_view(page, thread))["deliveries"]
    assert newest["id"] == second["id"] and newest["receipt"] == "failed"
    assert newest["status"] == "failed"
    details = RE_ENGAGEMENT_ERROR["error_data"]["details"]
    assert "Re-engagement message" in newest["error"] and details in newest["error"]
    assert (older["id"], older["receipt"]) == (first["id"], "read")


# -- providers that fail -----------------------------------------------------------------


async def test_server_errors_are_retried_then_delivered_once(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, graph = fakes
    fast_retries(app_relay)
    await customers_write(app_relay, fakes, "Telegram here", "WhatsApp here")
    bot.fail_next(SEND, BOT_SERVER_ERROR, times=2)
    graph.fail_next(WHATSAPP_SEND, SERVER_ERROR, times=2)
    async with inbox(app_relay) as page:
        on_telegram = await thread_of(page, "Telegram here")
        on_whatsapp = await thread_of(page, "WhatsApp here")
        await owner_replies(page, on_telegram, "Third time lucky")
        await owner_replies(page, on_whatsapp, "Third time lucky too")
        telegram = await delivery_where(page, on_telegram, is_sent, DELIVERED)
        whatsapp = await delivery_where(page, on_whatsapp, is_sent, DELIVERED)
    assert [c.status for c in bot.calls(SEND)] == [500, 500, 200]
    assert sent_texts(bot) == ["Third time lucky"]
    assert [c.status for c in graph.calls(WHATSAPP_SEND)] == [500, 500, 200]
    assert [c.body["text"]["body"] for c in graph.sent if c.body] == ["Third time lucky too"]
    assert (telegram["attempts"], whatsapp["attempts"]) == (3, 3)
    assert "Telegram answered 500" in telegram["error"] and "Meta answered 500" in whatsapp["error"]


async def test_a_send_that_keeps_failing_shows_why_while_it_retries(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """Retries wait half a minute, doubling up to an hour, for about a day before the
    delivery fails: meanwhile the inbox reads the last try's reason, not just "queued"
    (apps.js shows it as "Retrying on Telegram: …")."""
    bot, graph = fakes
    await customers_write(app_relay, fakes, "Telegram here", "WhatsApp here")
    bot.fail_next(SEND, BOT_SERVER_ERROR, times=100)
    graph.fail_next(WHATSAPP_SEND, SERVER_ERROR, times=100)
    async with inbox(app_relay) as page:
        on_telegram = await thread_of(page, "Telegram here")
        on_whatsapp = await thread_of(page, "WhatsApp here")
        await owner_replies(page, on_telegram, "Are you there?")
        await owner_replies(page, on_whatsapp, "Are you there too?")
        telegram = await delivery_where(page, on_telegram, is_retrying, "a retry due")
        whatsapp = await delivery_where(page, on_whatsapp, is_retrying, "a retry due")
    assert (telegram["channel"], telegram["kind"]) == ("telegram", "visitor_notify")
    assert telegram["error"].startswith("Telegram answered 500")
    assert (whatsapp["channel"], whatsapp["kind"]) == ("whatsapp", "visitor_notify")
    assert whatsapp["error"].startswith("Meta answered 500")
    assert [c.status for c in bot.calls(SEND)] == [500]  # the next try is half a minute off
    assert sent_texts(bot) == []


def is_retrying(delivery: dict[str, Any]) -> bool:
    return delivery["status"] == "pending" and delivery["attempts"] >= 1


async def test_a_hung_send_times_out_and_is_retried_once(
    make_relay: Callable[..., RunningRelay], fakes: Fakes
) -> None:
    """Costs the relay's send timeout, shortened for the test."""
    bot, graph = fakes
    app_relay = make_relay(
        telegram_api_url=bot.url, meta_api_url=graph.url, app_send_timeout=APP_SEND_TIMEOUT
    )
    fast_retries(app_relay)
    await customers_write(app_relay, fakes, "Anyone there?", None)
    bot.hang_next(SEND)
    async with inbox(app_relay) as page:
        thread = await thread_of(page, "Anyone there?")
        await owner_replies(page, thread, "Yes, sorry for the wait")
        await bot.await_calls(SEND)
        sent = await delivery_where(page, thread, is_sent, DELIVERED, APP_SEND_TIMEOUT + 10)
    # Sent at the second try; the first one's trouble stays readable.
    assert sent["attempts"] == 2 and "did not answer in time" in sent["error"]
    assert len(bot.calls(SEND)) == 2 and sent_texts(bot) == ["Yes, sorry for the wait"]


async def test_a_revoked_token_fails_the_delivery_with_the_apps_reason(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, graph = fakes
    await customers_write(app_relay, fakes, "Hello bot", "Hello number")
    bot.revoke(BOT_TOKEN)
    graph.revoke(WA_TOKEN)
    async with inbox(app_relay) as page:
        on_telegram = await thread_of(page, "Hello bot")
        on_whatsapp = await thread_of(page, "Hello number")
        await owner_replies(page, on_telegram, "Hello customer")
        await owner_replies(page, on_whatsapp, "Hello customer")
        telegram = await delivery_where(page, on_telegram, is_failed, "a failed delivery")
        whatsapp = await delivery_where(page, on_whatsapp, is_failed, "a failed delivery")
    assert "Unauthorized" in telegram["error"] and "401" in telegram["error"]
    assert "Invalid OAuth access token" in whatsapp["error"]
    assert len(bot.calls(SEND)) == 1 and len(graph.calls(WHATSAPP_SEND)) == 1  # not retried
    assert bot.sent(BOT_TOKEN) == [] and graph.sent == []


async def test_telegram_throttling_waits_the_retry_after_then_delivers_once(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, _ = fakes
    fast_retries(app_relay)
    await customers_write(app_relay, fakes, "Quick question", None)
    bot.fail_next(SEND, too_many_requests(2))
    async with inbox(app_relay) as page:
        thread = await thread_of(page, "Quick question")
        await owner_replies(page, thread, "Quick answer")
        await bot.await_calls(SEND, 1)
        throttled_at = time.monotonic()
        await delivery_where(page, thread, is_sent, DELIVERED)
    # Retried once, no sooner than Telegram asked, and delivered once.
    assert time.monotonic() - throttled_at >= 2
    assert [c.status for c in bot.calls(SEND)] == [429, 200]
    assert sent_texts(bot) == ["Quick answer"]


async def test_a_long_reply_interrupted_between_pieces_is_not_sent_twice(
    make_relay: Callable[..., RunningRelay], fakes: Fakes
) -> None:
    bot, graph = fakes
    relay = make_relay(telegram_api_url=bot.url, meta_api_url=graph.url, max_body_chars=10_000)
    fast_retries(relay)
    reply = " ".join(f"word{i:04}" for i in range(1100))
    await customers_write(relay, fakes, "Tell me everything", None)
    bot.fail_next(SEND, BOT_SERVER_ERROR, after=1)  # the second piece fails once
    async with inbox(relay) as page:
        thread = await thread_of(page, "Tell me everything")
        await owner_replies(page, thread, reply)
        await delivery_where(page, thread, is_sent, DELIVERED)
    pieces = sent_texts(bot)
    assert len(pieces) == 3 and " ".join(pieces) == reply


# -- WhatsApp's 24-hour window -----------------------------------------------------------


async def test_a_reply_after_the_whatsapp_window_is_not_sent_and_says_why(
    make_relay: Callable[..., RunningRelay], fakes: Fakes
) -> None:
    bot, graph = fakes
    first = make_relay(telegram_api_url=bot.url, meta_api_url=graph.url)
    await customers_write(first, fakes, None, "Can I book a table?")
    first.stop()
    tomorrow = (datetime.now(UTC) + timedelta(hours=25)).isoformat().replace("+00:00", "Z")
    later = make_relay(telegram_api_url=bot.url, meta_api_url=graph.url, clock_start=tomorrow)
    async with inbox(later) as page:
        thread = await thread_of(page, "Can I book a table?")
        [chat] = (await thread_view(page, thread))["channels"]
        await owner_replies(page, thread, "Sorry, only just saw this")
        failed = await delivery_where(page, thread, is_failed, "a failed delivery")
    assert "24-hour window" in failed["error"]
    assert (failed["channel"], failed["attempts"]) == ("whatsapp", 1)
    closes = datetime.fromisoformat(chat["window_closes_at"].replace("Z", "+00:00"))
    written = datetime.fromisoformat(chat["last_written_at"].replace("Z", "+00:00"))
    assert (chat["kind"], closes - written) == ("whatsapp", timedelta(hours=24))
    assert chat["template"] is None
    assert graph.calls(WHATSAPP_SEND) == []


# -- kill -9 -----------------------------------------------------------------------------


class Served:
    """`porch serve` in a child process against the fakes, restartable on one database."""

    def __init__(self, tmp_path: Path, database_url: str | None, fakes: Fakes) -> None:
        bot, graph = fakes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = {"database_url": database_url} if database_url else {}
        self.env = porch_env(
            tmp_path,
            telegram_api_url=bot.url,
            meta_api_url=graph.url,
            public_url=self.url,
            app_send_timeout=str(APP_SEND_TIMEOUT),
            **settings,
        )
        self.database_url, self.path = database_url, tmp_path / "porch.sqlite3"
        self.process: PorchProcess | None = None
        add_site(self.env)
        added = subprocess.run(
            [*porch_command(), "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN],
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert added.returncode == 0, added.stderr
        self.channel = json.loads(added.stdout)
        self.secret = secret_token(bot)

    async def start(self) -> None:
        self.process = await PorchProcess.start(self.env, self.port)

    async def kill(self) -> None:
        assert self.process is not None
        await self.process.kill()

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    def raw_update(self, update: dict[str, Any]) -> bytes:
        """The update as Telegram's HTTP request, byte for byte."""
        body = json.dumps(update).encode()
        head = (
            f"POST {webhook_path(self.channel)} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {self.secret}\r\n\r\n"
        )
        return head.encode() + body

    def count(self, sql: str, *args: Any) -> int:
        with open_database(self.database_url, self.path) as db:
            return int(db.execute(sql, args).fetchone()[0])

    def stored(self, body: str) -> int:
        return self.count("SELECT COUNT(*) FROM messages WHERE body = ?", body)

    async def until_counted(
        self, what: str, sql: str, *args: Any, timeout: float = EVENT_TIMEOUT
    ) -> None:
        """Until `sql` counts a row: a state of the database no event announces."""

        async def look() -> int | None:
            return await asyncio.to_thread(self.count, sql, *args) or None

        await until(look, what, timeout)


@pytest.fixture
async def served(tmp_path: Path, database_url: str | None, fakes: Fakes) -> AsyncIterator[Served]:
    relay = Served(tmp_path, database_url, fakes)
    await relay.start()
    yield relay
    await relay.stop()


async def test_kill_9_before_a_webhook_is_answered_loses_nothing_and_doubles_nothing(
    served: Served,
) -> None:
    whole = served.raw_update(telegram_update(1, CHAT, "Stored, then the relay died"))
    half = served.raw_update(telegram_update(2, CHAT, "Cut off mid-request"))
    # Telegram's request is read and stored; the relay dies before Telegram reads the answer.
    _, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(whole)
    await writer.drain()
    stored = "SELECT COUNT(*) FROM messages WHERE body = ?"
    await served.until_counted("the update stored", stored, "Stored, then the relay died")
    await served.kill()
    writer.close()
    # Half of the next request has arrived when the relay dies.
    await served.start()
    _, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(half[: len(half) - 20])
    await writer.drain()
    await served.kill()
    writer.close()
    assert served.stored("Cut off mid-request") == 0
    # Telegram had no answer for either: it delivers both again, and again.
    await served.start()
    async with served.client() as client:
        for _ in range(3):
            for update_id, text in ((1, "Stored, then the relay died"), (2, "Cut off mid-request")):
                update = telegram_update(update_id, CHAT, text)
                await telegram_writes(client, served.channel, served.secret, update)
    assert served.stored("Stored, then the relay died") == 1
    assert served.stored("Cut off mid-request") == 1
    assert served.count("SELECT COUNT(*) FROM threads") == 1


async def test_kill_9_while_a_reply_is_being_sent_sends_it_once_after_restart(
    served: Served, fakes: Fakes
) -> None:
    bot, _ = fakes
    owner = bearer(Tokens((SECRET,)).owner_token("alpha"))
    async with served.client() as client:
        update = telegram_update(1, CHAT, "Are you there?")
        await telegram_writes(client, served.channel, served.secret, update)
        [thread] = (await client.get("/v1/owner/threads", headers=owner)).json()["threads"]
        bot.hang_next(SEND)
        reply = await client.post(
            f"/v1/owner/threads/{thread['id']}/messages",
            headers=owner,
            json={"body": "Yes, here!", "client_id": "reply-1"},
        )
        assert reply.status_code == 201, reply.text
    await bot.await_calls(SEND)  # the relay is sending it: Telegram has not answered
    await served.kill()
    bot.release_hangs()
    await served.start()
    sent = "SELECT COUNT(*) FROM outbox WHERE channel = 'telegram' AND status = 'sent'"
    await served.until_counted("the reply sent", sent, timeout=RESTART_SEND_TIMEOUT)
    assert sent_texts(bot) == ["Yes, here!"]
    assert len(bot.calls(SEND)) == 2  # the one cut off, and the one that went through
