"""Photos and files over the messaging apps, against the local fakes of the Bot API and
the Graph API: a customer's photo or document lands in the thread as an attachment
(judged and re-encoded like any upload), one that cannot be had is a note beside the
text, a redelivery fetches nothing twice; the owner's reply reaches each app with its
files as uploads of the kept bytes, and a retry sends only what the app lacks."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from tests.apps_support import (
    BOT_TOKEN,
    CHAT,
    PAGE_ID,
    PAGE_TOKEN,
    PHONE_ID,
    PSID,
    WA_TOKEN,
    WA_USER,
    Fakes,
    add_messenger,
    add_telegram,
    add_whatsapp,
    attachment_bytes,
    delivery_where,
    meta_writes,
    owner_replies,
    secret_token,
    telegram_writes,
    thread_view,
    wa_document,
    wa_image,
    wa_text,
)
from tests.fakes.graph_api import (
    CDN,
    MEDIA_DOWNLOAD,
    MEDIA_LOOKUP,
    MEDIA_UPLOAD,
    MESSENGER_SEND,
    SERVER_ERROR,
    WHATSAPP_SEND,
)
from tests.fakes.telegram_api import DOWNLOAD
from tests.fakes.telegram_api import SERVER_ERROR as BOT_SERVER_ERROR
from tests.fakes.webhooks import (
    messenger_attachment,
    messenger_message,
    telegram_document,
    telegram_photo,
    telegram_update,
)
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay
from tests.test_attachments import PDF, png_with_gps
from tests.test_inbox_api import Inbox, inbox

pytestmark = BOTH_ENGINES

PHOTO = png_with_gps()  # a phone's photo: EXIF with the maker and where it was taken
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>\n"
FAST_RETRY = 0.05  # seconds before a delivery's first retry, instead of half a minute
SENT = "a delivery sent"


def is_sent(delivery: dict[str, Any]) -> bool:
    return bool(delivery["status"] == "sent")


async def only_thread(page: Inbox) -> dict[str, Any]:
    """The one conversation of the test, as the inbox shows it."""
    [summary] = await page.threads()
    return await thread_view(page, summary["id"])


def files_of(message: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["name"], a["type"]) for a in message["attachments"]]


def assert_reencoded(data: bytes) -> None:
    """A PNG of the photo with nothing of its metadata."""
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.size) == ("PNG", (64, 48))
    assert not image.getexif() and b"PhoneMaker" not in data


async def telegram_chat(relay: RunningRelay, fakes: Fakes, first: str = "Hello") -> Any:
    """Alpha's bot, and a customer who wrote `first` to it."""
    bot, _ = fakes
    channel = add_telegram(relay)
    async with relay.client(origin=None) as client:
        await telegram_writes(client, channel, secret_token(bot), telegram_update(1, CHAT, first))
    return channel


# -- what customers send -----------------------------------------------------------------


async def test_a_telegram_photo_with_a_caption_is_one_message_with_the_photo_reencoded(
    make_relay: Callable[..., RunningRelay], fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the relay's default level: httpx logs each URL
    bot, graph = fakes
    relay = make_relay(telegram_api_url=bot.url, meta_api_url=graph.url, log_level="info")
    channel = await telegram_chat(relay, fakes)
    # Telegram sends each size of the photo; only the largest is the customer's photo.
    bot.add_file(BOT_TOKEN, "AgAC-2-1280", PHOTO, "photos/file_2.jpg")
    async with relay.client(origin=None) as client:
        photo = telegram_photo(2, CHAT, caption="This cake, for Saturday")
        await telegram_writes(client, channel, secret_token(bot), photo)
    async with inbox(relay) as page:
        view = await only_thread(page)
        first, second = view["messages"]
        kept = await attachment_bytes(second["attachments"][0])
    assert (first["body"], first["attachments"]) == ("Hello", [])
    assert (second["author"], second["via"]) == ("visitor", "telegram")
    assert second["body"] == "This cake, for Saturday"
    assert files_of(second) == [("photo.png", "image/png")]
    assert_reencoded(kept)
    [asked] = bot.calls("getFile")
    assert (asked.token, asked.params["file_id"]) == (BOT_TOKEN, "AgAC-2-1280")
    [fetched] = bot.calls(DOWNLOAD)
    assert (fetched.token, fetched.params["file_path"]) == (BOT_TOKEN, "photos/file_2.jpg")
    # The download's URL carries the bot token: the relay logs it masked.
    assert "/file/bot<hidden>/photos/file_2.jpg" in caplog.text
    assert BOT_TOKEN not in caplog.text and BOT_TOKEN.split(":")[1] not in caplog.text


async def test_a_telegram_pdf_keeps_its_name_and_bytes(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, _ = fakes
    channel = await telegram_chat(app_relay, fakes, "Can you quote this?")
    bot.add_file(BOT_TOKEN, "BQAC-plan", PDF, "documents/file_7.pdf")
    async with app_relay.client(origin=None) as client:
        document = telegram_document(2, CHAT, "BQAC-plan", "kitchen plan.pdf", len(PDF))
        await telegram_writes(client, channel, secret_token(bot), document)
    async with inbox(app_relay) as page:
        _, message = (await only_thread(page))["messages"]
        kept = await attachment_bytes(message["attachments"][0])
    assert message["body"] == ""  # no caption: the file is the message
    assert files_of(message) == [("kitchen plan.pdf", "application/pdf")]
    assert kept == PDF


async def test_whatsapp_images_and_documents_are_fetched_with_the_numbers_token(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    _, graph = fakes
    channel = add_whatsapp(app_relay)
    graph.add_media(PHONE_ID, "7001", PHOTO, "image/png")
    graph.add_media(PHONE_ID, "7002", PDF, "application/pdf")
    async with app_relay.client(origin=None) as client:
        await meta_writes(client, channel, wa_text("Hi!", "wamid.t1"))
        await meta_writes(client, channel, wa_image("wamid.i1", "7001", caption="The leak"))
        await meta_writes(client, channel, wa_document("wamid.d1", "7002", "invoice 42.pdf"))
    async with inbox(app_relay) as page:
        _, image, document = (await only_thread(page))["messages"]
        photo = await attachment_bytes(image["attachments"][0])
        pdf = await attachment_bytes(document["attachments"][0])
    assert (image["body"], files_of(image)) == ("The leak", [("photo.png", "image/png")])
    assert (document["body"], files_of(document)) == ("", [("invoice 42.pdf", "application/pdf")])
    assert_reencoded(photo)
    assert pdf == PDF
    lookups = graph.calls(MEDIA_LOOKUP)
    assert [(c.node, c.token, c.query) for c in lookups] == [
        (media, WA_TOKEN, {"phone_number_id": PHONE_ID}) for media in ("7001", "7002")
    ]
    assert [(c.node, c.token, c.status) for c in graph.calls(MEDIA_DOWNLOAD)] == [
        ("7001", WA_TOKEN, 200),
        ("7002", WA_TOKEN, 200),
    ]


async def test_a_messenger_image_is_fetched_from_its_url_without_a_token(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    _, graph = fakes
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    channel = add_messenger(app_relay)
    url = graph.add_cdn_file("490123_n.png", PHOTO, "image/png")
    async with app_relay.client(origin=None) as client:
        await meta_writes(client, channel, messenger_message(PAGE_ID, PSID, "Hello page", "m.1"))
        await meta_writes(client, channel, messenger_attachment(PAGE_ID, PSID, "m.2", url=url))
    async with inbox(app_relay) as page:
        _, message = (await only_thread(page))["messages"]
        kept = await attachment_bytes(message["attachments"][0])
    assert (message["via"], files_of(message)) == ("messenger", [("photo.png", "image/png")])
    assert_reencoded(kept)
    [fetched] = graph.calls(CDN)
    assert (fetched.node, fetched.token) == ("490123_n.png", None)  # a CDN gets no token


async def test_a_new_chat_that_opens_with_a_photo_starts_its_thread_with_it(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, _ = fakes
    channel = add_telegram(app_relay)
    bot.add_file(BOT_TOKEN, "AgAC-1-1280", PHOTO, "photos/file_1.jpg")
    async with app_relay.client(origin=None) as client:
        await telegram_writes(client, channel, secret_token(bot), telegram_photo(1, CHAT))
    async with inbox(app_relay) as page:
        opening, photo = (await only_thread(page))["messages"]
    assert (opening["body"], opening["attachments"]) == ("[Sent a photo on Telegram]", [])
    assert (photo["author"], photo["body"], files_of(photo)) == (
        "visitor",
        "",
        [("photo.png", "image/png")],
    )


# -- what cannot be had is said ------------------------------------------------------------


async def test_a_failed_or_oversized_download_is_a_note_and_the_text_still_posts(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, graph = fakes
    telegram = await telegram_chat(app_relay, fakes)
    whatsapp = add_whatsapp(app_relay)
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    messenger = add_messenger(app_relay)
    with app_relay.db() as db:  # alpha now keeps files up to 1 MB
        db.execute("UPDATE sites SET settings = ? WHERE id = 'alpha'", ('{"max_file_mb": 1}',))
    graph.add_media(PHONE_ID, "7101", PHOTO, "image/png")
    graph.fail_next(MEDIA_DOWNLOAD, SERVER_ERROR)
    # Served as a stream, without a Content-Length: counted as it comes, cut at the limit.
    big = graph.add_cdn_file("big.pdf", PDF + b"%" * 1_500_000, "application/pdf", chunked=True)
    async with app_relay.client(origin=None) as client:
        # Telegram says the document's size: past the limit, it is not even asked for.
        huge = telegram_document(2, CHAT, "BQAC-huge", "scan.pdf", 30_000_000, caption="Scan")
        await telegram_writes(client, telegram, secret_token(bot), huge)
        await meta_writes(client, whatsapp, wa_image("wamid.i2", "7101", caption="See this"))
        payload = messenger_attachment(PAGE_ID, PSID, "m.9", "file", url=big, text="Big one")
        await meta_writes(client, messenger, payload)
    async with inbox(app_relay) as page:
        bodies = {}
        for summary in await page.threads():
            message = (await thread_view(page, summary["id"]))["messages"][-1]
            assert message["attachments"] == []
            bodies[message["via"]] = message["body"]
    assert bodies == {
        "telegram": "Scan\n[Sent a file on Telegram, over the 1 MB Porch keeps here:"
        " open Telegram to see it]",
        "whatsapp": "See this\n[Sent a photo on WhatsApp: open WhatsApp to see it]",
        "messenger": "Big one\n[Sent a file on Messenger, over the 1 MB Porch keeps here:"
        " open Messenger to see it]",
    }
    assert bot.calls("getFile") == [] and bot.calls(DOWNLOAD) == []
    assert [c.status for c in graph.calls(MEDIA_DOWNLOAD)] == [500]
    assert [c.status for c in graph.calls(CDN)] == [200]  # the relay stopped reading it
    scratch = app_relay.config.data_dir / "blobs" / "tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []  # nothing left behind


async def test_a_messenger_attachment_off_metas_cdn_is_never_fetched(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """A site's own Meta app signs its webhooks: its owner could name any address for
    the relay to fetch and show them, such as a service only the relay's host reaches."""
    _, graph = fakes
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    channel = add_messenger(app_relay)
    inside = f"{app_relay.url}/healthz"  # its JSON would be kept as a text file
    async with app_relay.client(origin=None) as client:
        for mid, url in (("m.1", inside), ("m.2", "http://169.254.169.254/latest/meta-data/")):
            payload = messenger_attachment(PAGE_ID, PSID, mid, "file", url=url, text="Look")
            await meta_writes(client, channel, payload)
    async with inbox(app_relay) as page:
        messages = (await only_thread(page))["messages"]
    note = "Look\n[Sent a file on Messenger: open Messenger to see it]"
    assert [(m["body"], m["attachments"]) for m in messages] == [(note, [])] * 2


async def test_a_file_porch_does_not_take_is_noted_by_name(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, _ = fakes
    channel = await telegram_chat(app_relay, fakes)
    bot.add_file(BOT_TOKEN, "BQAC-page", HTML, "documents/file_3.pdf")
    async with app_relay.client(origin=None) as client:
        # Named a PDF, but judged by its bytes: a web page, which Porch never keeps.
        document = telegram_document(2, CHAT, "BQAC-page", "menu.pdf", len(HTML), caption="Menu")
        await telegram_writes(client, channel, secret_token(bot), document)
    async with inbox(app_relay) as page:
        _, message = (await only_thread(page))["messages"]
    assert message["attachments"] == []
    assert message["body"] == (
        "Menu\n\n(menu.pdf was sent but not kept: it is too large or of a kind Porch does"
        " not take.)"
    )


async def test_a_redelivered_update_is_fetched_and_posted_once(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, _ = fakes
    channel = await telegram_chat(app_relay, fakes)
    bot.add_file(BOT_TOKEN, "AgAC-2-1280", PHOTO, "photos/file_2.jpg")
    async with app_relay.client(origin=None) as client:
        for _ in range(3):  # Telegram had no answer in time: it delivers again
            photo = telegram_photo(2, CHAT, caption="Once")
            await telegram_writes(client, channel, secret_token(bot), photo)
    async with inbox(app_relay) as page:
        messages = (await only_thread(page))["messages"]
    assert [(m["body"], len(m["attachments"])) for m in messages] == [("Hello", 0), ("Once", 1)]
    assert len(bot.calls("getFile")) == 1 and len(bot.calls(DOWNLOAD)) == 1
    with app_relay.db() as db:
        assert db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0] == 1


# -- what the owner sends ------------------------------------------------------------------


def fast_retries(relay: RunningRelay) -> None:
    for kind in ("telegram", "whatsapp", "messenger"):
        relay.services.workers[kind].retry_base = FAST_RETRY


async def kept_files(page: Inbox, thread: str) -> tuple[bytes, bytes]:
    """The photo and the PDF of the owner's reply, as the relay keeps them."""
    reply = (await thread_view(page, thread))["messages"][-1]
    photo, pdf = reply["attachments"]
    return await attachment_bytes(photo), await attachment_bytes(pdf)


REPLY = "Here is the cake, and the price list"
FILES = (("cake.jpg", PHOTO), ("prices.pdf", PDF))


async def test_the_owners_photo_and_pdf_reach_each_app_after_the_text(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, graph = fakes
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    await telegram_chat(app_relay, fakes, "On Telegram")
    whatsapp, messenger = add_whatsapp(app_relay), add_messenger(app_relay)
    async with app_relay.client(origin=None) as client:
        await meta_writes(client, whatsapp, wa_text("On WhatsApp", "wamid.t1"))
        await meta_writes(
            client, messenger, messenger_message(PAGE_ID, PSID, "On Messenger", "m.1")
        )
    async with inbox(app_relay) as page:
        threads = {t["last_message"]["via"]: t["id"] for t in await page.threads()}
        for thread in threads.values():
            await owner_replies(page, thread, REPLY, FILES)
        for thread in threads.values():
            await delivery_where(page, thread, is_sent, SENT)
        photo, pdf = await kept_files(page, threads["telegram"])
    assert_reencoded(photo)

    # Telegram: the text, then a photo and a document, each a multipart upload.
    assert [c.method for c in bot.calls() if c.method.startswith("send")] == [
        "sendMessage",
        "sendPhoto",
        "sendDocument",
    ]
    [text] = bot.calls("sendMessage")
    assert (str(text.params["chat_id"]), text.params["text"]) == (str(CHAT), REPLY)
    [sent_photo] = bot.calls("sendPhoto")
    [sent_pdf] = bot.calls("sendDocument")
    assert str(sent_photo.params["chat_id"]) == str(CHAT) == str(sent_pdf.params["chat_id"])
    upload = sent_photo.files["photo"]
    assert (upload.filename, upload.content_type, upload.content) == (
        "cake.png",
        "image/png",
        photo,
    )
    upload = sent_pdf.files["document"]
    assert (upload.filename, upload.content_type, upload.content) == (
        "prices.pdf",
        "application/pdf",
        PDF,
    )

    # WhatsApp: each file uploaded to the number, then sent by its media id.
    uploads = graph.calls(MEDIA_UPLOAD)
    assert [(c.node, c.token, c.body) for c in uploads] == [
        (PHONE_ID, WA_TOKEN, {"messaging_product": "whatsapp", "type": kind})
        for kind in ("image/png", "application/pdf")
    ]
    assert [c.files["file"].content for c in uploads] == [photo, PDF]
    media_ids = [c.answer["id"] for c in uploads if c.answer]
    sends = [c.body for c in graph.calls(WHATSAPP_SEND) if c.body]
    assert [s["to"] for s in sends] == [WA_USER] * 3
    assert [(s["type"], s[s["type"]]) for s in sends] == [
        ("text", {"preview_url": False, "body": REPLY}),
        ("image", {"id": media_ids[0]}),
        ("document", {"id": media_ids[1], "filename": "prices.pdf"}),
    ]
    assert graph.media(media_ids[0]).content == photo

    # Messenger: the text, then each file as `filedata` of a multipart message.
    text_call, photo_call, pdf_call = graph.calls(MESSENGER_SEND)
    assert text_call.body is not None and text_call.body["message"] == {"text": REPLY}
    for call, kind, name, content in (
        (photo_call, "image", "cake.png", photo),
        (pdf_call, "file", "prices.pdf", PDF),
    ):
        assert (call.node, call.token, call.status) == (PAGE_ID, PAGE_TOKEN, 200)
        assert call.body == {
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {"attachment": {"type": kind, "payload": {"is_reusable": False}}},
        }
        assert (call.files["filedata"].filename, call.files["filedata"].content) == (name, content)


async def test_a_retry_sends_only_what_the_app_does_not_have_yet(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, graph = fakes
    fast_retries(app_relay)
    await telegram_chat(app_relay, fakes, "On Telegram")
    whatsapp = add_whatsapp(app_relay)
    async with app_relay.client(origin=None) as client:
        await meta_writes(client, whatsapp, wa_text("On WhatsApp", "wamid.t1"))
    bot.fail_next("sendDocument", BOT_SERVER_ERROR)  # the PDF fails once
    graph.fail_next(WHATSAPP_SEND, SERVER_ERROR, after=2)  # the PDF's message fails once
    async with inbox(app_relay) as page:
        threads = {t["last_message"]["via"]: t["id"] for t in await page.threads()}
        for thread in threads.values():
            await owner_replies(page, thread, REPLY, FILES)
        sent = {via: await delivery_where(page, t, is_sent, SENT) for via, t in threads.items()}
    assert (sent["telegram"]["attempts"], sent["whatsapp"]["attempts"]) == (2, 2)
    assert [(c.method, c.status) for c in bot.calls() if c.method.startswith("send")] == [
        ("sendMessage", 200),
        ("sendPhoto", 200),
        ("sendDocument", 500),
        ("sendDocument", 200),
    ]
    got = bot.sent(BOT_TOKEN)
    assert [next(k for k in ("text", "photo", "document") if k in m) for m in got] == [
        "text",
        "photo",
        "document",
    ]
    assert [c.status for c in graph.calls(WHATSAPP_SEND)] == [200, 200, 500, 200]
    assert [c.body["type"] for c in graph.sent if c.body] == ["text", "image", "document"]
    # The PDF went up again for its second try: an upload the customer never sees.
    assert [c.files["file"].filename for c in graph.calls(MEDIA_UPLOAD)] == [
        "cake.png",
        "prices.pdf",
        "prices.pdf",
    ]
