"""Continue in the app, for WhatsApp and Messenger, and one customer on three apps:
the links' formats (wa.me with the code in a prefilled text, m.me with ?ref=), the chat
each binds to the widget's thread (WhatsApp by the prefilled text; Messenger by Get
Started's postback in a new conversation or by a referral in an existing one), and a
thread continued on Telegram, WhatsApp and Messenger at once: one thread, three chats,
each owner reply to the chat last written from, the whole transcript on the site."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from tests.apps_support import (
    BOT_TOKEN,
    CHAT,
    PAGE_ID,
    PAGE_TOKEN,
    PHONE_ID,
    PSID,
    WA_USER,
    Fakes,
    add_messenger,
    add_telegram,
    add_whatsapp,
    meta_writes,
    owner_replies,
    secret_token,
    telegram_writes,
    thread_view,
    until,
    wa_text,
)
from tests.fakes.graph_api import MESSENGER_SEND, WHATSAPP_SEND, FakeGraphApi
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.webhooks import (
    messenger_message,
    messenger_postback_referral,
    messenger_referral,
    telegram_update,
    whatsapp_status,
)
from tests.support import RunningRelay, bearer, start_thread
from tests.test_inbox_api import inbox

pytestmark = pytest.mark.parametrize("engine", ["sqlite", "postgres"], indirect=True)

WA_LINK = "https://wa.me/33612345678?text="  # WA_NUMBER's digits
PREFILL = "Hello! I am continuing my conversation with Alpha Bakery (#{code})"
OTHER_PSID = "6161"  # a second Messenger customer


async def continue_in(client: httpx.AsyncClient, token: str, channel: dict[str, Any]) -> Any:
    """The widget's "Continue on …": the link and its code."""
    link = await client.post(
        "/v1/thread/continue", json={"channel": channel["id"]}, headers=bearer(token)
    )
    assert link.status_code == 201, link.text
    return link.json()


def linked_note(app: str) -> str:
    return f"This conversation continues on {app}: replies will arrive there too."


def whatsapp_texts(graph: FakeGraphApi) -> list[str]:
    return [str(c.body["text"]["body"]) for c in graph.sent if c.body and c.body.get("text")]


def messenger_texts(graph: FakeGraphApi, psid: str) -> list[str]:
    return [
        str(c.body["message"]["text"])
        for c in graph.sent
        if c.body and c.body.get("recipient") == {"id": psid} and "text" in c.body["message"]
    ]


def telegram_texts(bot: FakeBotApi) -> list[str]:
    return [str(message["text"]) for message in bot.sent(BOT_TOKEN)]


async def test_whatsapp_link_prefills_the_code_and_binds_the_chat(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    _, graph = fakes
    channel = add_whatsapp(app_relay)
    async with app_relay.client() as client:
        started = await start_thread(client, "Do you bake on Sundays?")
        token, thread = started["token"], started["thread"]["id"]
        link = await continue_in(client, token, channel)
        prefill = PREFILL.format(code=link["code"])
        assert link["url"] == WA_LINK + quote(prefill)
        assert unquote(link["url"].removeprefix(WA_LINK)) == prefill
    async with app_relay.client(origin=None) as client:
        # The customer sends the prefilled text: it binds, and is not posted itself.
        await meta_writes(client, channel, wa_text(prefill, "wamid.bind"))
        await meta_writes(client, channel, wa_text("Hello from WhatsApp", "wamid.2"))
        # The same text from another number later: the code is spent, it binds nothing.
        other = wa_text(prefill, "wamid.other")
        other["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "33799999999"
        await meta_writes(client, channel, other)
    async with inbox(app_relay) as page:
        view = await thread_view(page, thread)
        assert [(c["kind"], c["handle"]) for c in view["channels"]] == [
            ("whatsapp", "+33 6 12 34 56 78")
        ]
        bodies = [(m["author"], m["via"], m["body"]) for m in view["messages"]]
        assert bodies == [
            ("visitor", "widget", "Do you bake on Sundays?"),
            ("system", "whatsapp", linked_note("WhatsApp")),
            ("visitor", "whatsapp", "Hello from WhatsApp"),
        ]
        assert len(await page.threads()) == 2  # the other number started its own thread
        await owner_replies(page, thread, "Yes, until noon.")
        await until_sent(page, thread, "whatsapp", 2)  # the note's, then the reply's
    # The chat got the note, then the reply; the other number got nothing of this thread.
    assert whatsapp_texts(graph) == [linked_note("WhatsApp"), "Yes, until noon."]
    assert {c.body["to"] for c in graph.sent if c.body} == {WA_USER}


async def test_messenger_link_binds_a_new_and_an_existing_conversation(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    _, graph = fakes
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    channel = add_messenger(app_relay)
    async with app_relay.client() as client:
        first = await start_thread(client, "First visitor")
        second = await start_thread(client, "Second visitor")
        new = await continue_in(client, first["token"], channel)
        existing = await continue_in(client, second["token"], channel)
    for link in (new, existing):
        assert link["url"] == f"https://m.me/{PAGE_ID}?ref={link['code']}"
    async with app_relay.client(origin=None) as client:
        # A person new to the page taps Get Started; one who has written before opens
        # the link in their existing conversation (a referral event).
        await meta_writes(client, channel, messenger_postback_referral(PAGE_ID, PSID, new["code"]))
        await meta_writes(
            client, channel, messenger_referral(PAGE_ID, OTHER_PSID, existing["code"])
        )
        await meta_writes(
            client, channel, messenger_message(PAGE_ID, PSID, "From Messenger", "m.2")
        )
    async with inbox(app_relay) as page:
        for started, psid in ((first, PSID), (second, OTHER_PSID)):
            thread = started["thread"]["id"]
            view = await thread_view(page, thread)
            assert [c["kind"] for c in view["channels"]] == ["messenger"]
            assert view["messages"][1]["body"] == linked_note("Messenger")
            await owner_replies(page, thread, f"Reply to {psid}")
            await until_sent(page, thread, "messenger", 2)  # the note's, then the reply's
        first_view = await thread_view(page, first["thread"]["id"])
        assert first_view["messages"][-2]["body"] == "From Messenger"
        assert len(await page.threads()) == 2  # no thread of their own: both continue
    assert messenger_texts(graph, PSID) == [linked_note("Messenger"), f"Reply to {PSID}"]
    assert messenger_texts(graph, OTHER_PSID) == [
        linked_note("Messenger"),
        f"Reply to {OTHER_PSID}",
    ]


async def test_one_thread_three_chats(app_relay: RunningRelay, fakes: Fakes) -> None:
    bot, graph = fakes
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    telegram, whatsapp = add_telegram(app_relay), add_whatsapp(app_relay)
    messenger = add_messenger(app_relay)
    async with app_relay.client() as client:
        started = await start_thread(client, "From the widget")
        token, thread = started["token"], started["thread"]["id"]
        codes = {
            kind: (await continue_in(client, token, channel))["code"]
            for kind, channel in (("tg", telegram), ("wa", whatsapp), ("ms", messenger))
        }
    async with app_relay.client(origin=None) as client:
        start = telegram_update(1, CHAT, f"/start {codes['tg']}")
        await telegram_writes(client, telegram, secret_token(bot), start)
        bind = messenger_postback_referral(PAGE_ID, PSID, codes["ms"])
        await meta_writes(client, messenger, bind)
        await meta_writes(client, whatsapp, wa_text(PREFILL.format(code=codes["wa"]), "w.1"))
        await meta_writes(client, whatsapp, wa_text("Hello from WhatsApp", "wamid.2"))
    async with inbox(app_relay) as page:
        view = await thread_view(page, thread)
        # All three chats, the one last written from first.
        assert [c["kind"] for c in view["channels"]] == ["whatsapp", "messenger", "telegram"]
        assert len(await page.threads()) == 1
        await owner_replies(page, thread, "Reply one")
        await until_sent(page, thread, "whatsapp", 2)
        # The customer writes from Messenger now: the next reply follows them there.
        async with app_relay.client(origin=None) as client:
            await meta_writes(
                client, messenger, messenger_message(PAGE_ID, PSID, "Now here", "m.3")
            )
        view = await thread_view(page, thread)
        assert [c["kind"] for c in view["channels"]][0] == "messenger"
        await owner_replies(page, thread, "Reply two")
        await until_sent(page, thread, "messenger", 2)
    # Each chat got its own "continues on" note; each reply went to one chat only.
    assert whatsapp_texts(graph) == [linked_note("WhatsApp"), "Reply one"]
    assert messenger_texts(graph, PSID) == [linked_note("Messenger"), "Reply two"]
    assert telegram_texts(bot) == [linked_note("Telegram")]
    # The site has the whole conversation, whichever app each part came from.
    async with app_relay.client() as client:
        shown = await client.get("/v1/thread", headers=bearer(token))
    assert shown.status_code == 200, shown.text
    said = [m["body"] for m in shown.json()["messages"] if m["author"] != "system"]
    assert said == ["From the widget", "Hello from WhatsApp", "Reply one", "Now here", "Reply two"]
    assert [c.status for c in graph.calls(WHATSAPP_SEND) + graph.calls(MESSENGER_SEND)] == [200] * 4


async def until_sent(page: Any, thread: str, channel: str, n: int) -> None:
    """Until `n` replies of the thread were sent on `channel` (its note and a reply)."""

    async def look() -> bool | None:
        deliveries = (await thread_view(page, thread))["deliveries"]
        sent = [d for d in deliveries if d["channel"] == channel and d["status"] == "sent"]
        return True if len(sent) >= n else None

    await until(look, f"{n} sends on {channel}")


async def test_a_reply_whatsapp_failed_to_deliver_goes_on_messenger(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """A reply that reached one app is not sent again on another; one the app took and
    then reported failed (a status webhook) is: the customer never had it."""
    _, graph = fakes
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    whatsapp, messenger = add_whatsapp(app_relay), add_messenger(app_relay)
    async with app_relay.client() as client:
        started = await start_thread(client, "From the widget")
        token, thread = started["token"], started["thread"]["id"]
        codes = {
            kind: (await continue_in(client, token, channel))["code"]
            for kind, channel in (("wa", whatsapp), ("ms", messenger))
        }
    async with app_relay.client(origin=None) as client:
        await meta_writes(
            client, messenger, messenger_postback_referral(PAGE_ID, PSID, codes["ms"])
        )
        await meta_writes(client, whatsapp, wa_text(PREFILL.format(code=codes["wa"]), "w.1"))
        await meta_writes(client, whatsapp, wa_text("Hello from WhatsApp", "wamid.2"))
    async with inbox(app_relay) as page:
        await owner_replies(page, thread, "Reply one")
        await until_sent(page, thread, "whatsapp", 2)
        answer = graph.calls(WHATSAPP_SEND)[-1].answer
        assert answer is not None
        wamid = answer["messages"][0]["id"]
        async with app_relay.client(origin=None) as client:
            await meta_writes(client, whatsapp, whatsapp_status(PHONE_ID, wamid, "failed", WA_USER))
            await meta_writes(
                client, messenger, messenger_message(PAGE_ID, PSID, "Now here", "m.3")
            )
        await owner_replies(page, thread, "Reply two")
        await until_sent(page, thread, "messenger", 2)
    texts = messenger_texts(graph, PSID)
    assert "Reply one" in texts and "Reply two" in texts
