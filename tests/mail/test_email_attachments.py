"""Photos and files over email, on a real relay with its real SMTP ingress: an owner's
emailed reply with a photo lands in the thread (re-encoded, no metadata); a customer
emails a PDF; files the relay does not take become a note; a signature's logo is not a
file; notifications link to files (links that last as long as an email is read) and
never carry them."""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import aiosmtplib
import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from PIL import Image

from relay.channels.email.reading import REPLY_MARKERS, inspect
from relay.channels.email.smtp_ingress import MAX_MESSAGE_BYTES
from relay.tokens import ATTACHMENT_SALT, EMAILED_ATTACHMENT_MAX_AGE
from tests.mail.conftest import OWNER, REPLY_DOMAIN, mail_relay, next_owner_message
from tests.mail.smtp_sink import SinkServer
from tests.mail.test_reply_loop import reply_to, send_to_relay
from tests.mail.test_visitor_email import (
    CUSTOMER,
    customer_mail,
    smtp_send,
    thread_messages,
    threads_of,
)
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, start_thread, tampered
from tests.test_attachments import PDF, stored

HOUR = 3600
WINDOWS_PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" * 64
FILE_LINE = "📎 "  # how a notification's text lists a file


@pytest.fixture
def relay(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> RunningRelay:
    return mail_relay(make_relay, sink)


def photo_with_gps(
    kind: str = "JPEG", size: tuple[int, int] = (64, 48), noise: bool = False
) -> bytes:
    """A phone's photo: the maker and where it was taken in its EXIF. Noise makes it
    compress badly, so that it weighs what a real photo does."""
    image = Image.new("RGB", size, (200, 120, 40))
    if noise:
        pixels = random.Random(7).randbytes(size[0] * size[1] * 3)
        image = Image.frombytes("RGB", size, pixels)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # GPS
    out = io.BytesIO()
    image.save(out, kind, exif=exif)
    return out.getvalue()


async def notified_reply(
    relay: RunningRelay, sink: SinkServer
) -> tuple[dict[str, Any], EmailMessage]:
    """A visitor's thread and the owner's notification of it (with its Reply-To)."""
    async with relay.client() as client:
        started = await start_thread(client, "Can you make this cake?")
    notification = await sink.sink.next()
    assert notification["To"] == OWNER
    return started, notification


async def download(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as anyone:  # no Authorization header, no cookie
        return await anyone.get(url)


# ---------------------------------------------------------------- inbound


@BOTH_ENGINES
async def test_an_owners_emailed_photo_lands_in_the_thread_without_its_metadata(
    relay: RunningRelay, sink: SinkServer
) -> None:
    started, notification = await notified_reply(relay, sink)
    original = photo_with_gps()
    assert Image.open(io.BytesIO(original)).getexif()  # as a phone sends it
    reply = reply_to(notification, "Yes! Like this one?")
    reply.add_attachment(original, "image", "jpeg", filename="IMG_2041.JPG")
    await send_to_relay(relay, reply)

    message = await next_owner_message(relay, started["token"])
    assert (message["body"], message["via"]) == ("Yes! Like this one?", "email")
    [photo] = message["attachments"]
    assert (photo["name"], photo["type"]) == ("IMG_2041.jpg", "image/jpeg")
    got = await download(photo["url"])
    assert got.status_code == 200 and len(got.content) == photo["size"]
    image = Image.open(io.BytesIO(got.content))
    assert image.size == (64, 48) and not image.getexif()  # re-encoded: no maker, no GPS
    rows, [blob] = stored(relay)  # the photo, and no scratch file left behind
    assert rows == 1 and blob.read_bytes() == got.content


@BOTH_ENGINES
async def test_a_reply_of_only_a_photo_posts_it_with_no_text(
    relay: RunningRelay, sink: SinkServer
) -> None:
    started, notification = await notified_reply(relay, sink)
    reply = reply_to(notification, "")  # nothing above the quote
    assert REPLY_MARKERS[0] in reply.get_content()
    reply.add_attachment(photo_with_gps("PNG"), "image", "png", filename="cake.png")
    await send_to_relay(relay, reply)

    message = await next_owner_message(relay, started["token"])
    assert message["body"] == ""
    assert [(a["name"], a["type"]) for a in message["attachments"]] == [("cake.png", "image/png")]


@BOTH_ENGINES
async def test_a_customer_emails_a_pdf_and_the_files_go_both_ways(
    relay: RunningRelay, sink: SinkServer
) -> None:
    # A customer writes to the site's address with a PDF: the conversation opens with
    # their words, their file follows as their next message.
    mail = customer_mail("hello@alpha.example", "Here is the plan of my kitchen.")
    mail.add_attachment(PDF, "application", "pdf", filename="kitchen plan.pdf")
    await smtp_send(relay, mail, f"contact+alpha@{REPLY_DOMAIN}")
    [(thread, *_)] = threads_of(relay)
    opening, files = await thread_messages(relay, thread)
    assert (opening["author"], opening["body"], opening["attachments"]) == (
        "visitor",
        "Here is the plan of my kitchen.",
        [],
    )
    assert (files["author"], files["via"], files["body"]) == ("visitor", "email", "")
    [plan] = files["attachments"]
    assert (plan["name"], plan["type"]) == ("kitchen plan.pdf", "application/pdf")
    assert (await download(plan["url"])).content == PDF

    # The owner answers with a price list: the customer's email lists it with a link,
    # and does not carry it.
    async with relay.client(origin=None) as client:
        owner = bearer(relay.owner_token())
        path = f"/v1/owner/threads/{thread}/attachments"
        sent = await client.post(path, files={"file": ("prices.pdf", PDF)}, headers=owner)
        assert sent.status_code == 201, sent.text
        posted = await client.post(
            f"/v1/owner/threads/{thread}/messages",
            headers=owner,
            json={"body": "Our prices:", "attachments": [sent.json()["id"]]},
        )
        assert posted.status_code == 201, posted.text
    answer = await next_mail_to(sink, CUSTOMER)
    link = linked_file(answer, "prices.pdf")
    assert (await download(link)).content == PDF

    # The customer answers the email with a photo: theirs, in the same thread.
    reply_address = parseaddr(answer["Reply-To"])[1]
    reply = customer_mail(reply_address, f"Thanks! Our oven:\n\n> {REPLY_MARKERS[0]}")
    reply.add_attachment(photo_with_gps(), "image", "jpeg", filename="oven.jpg")
    await smtp_send(relay, reply, reply_address)
    last = (await thread_messages(relay, thread))[-1]
    assert (last["author"], last["body"]) == ("visitor", "Thanks! Our oven:")
    assert [a["name"] for a in last["attachments"]] == ["oven.jpg"]

    # A new mail of a photo alone: the new conversation opens with its subject.
    photo_only = customer_mail("hello@alpha.example", "", sender="bob@customer.example")
    photo_only.add_attachment(photo_with_gps(), "image", "jpeg", filename="wall.jpg")
    await smtp_send(relay, photo_only, f"contact+alpha@{REPLY_DOMAIN}")
    [_, (bobs, *_)] = threads_of(relay)
    opening, files = await thread_messages(relay, bobs)
    assert (opening["body"], opening["attachments"]) == ("A cake for Saturday", [])
    assert (files["body"], [a["name"] for a in files["attachments"]]) == ("", ["wall.jpg"])


@BOTH_ENGINES
async def test_files_the_relay_does_not_take_become_a_note_and_nothing_is_kept(
    relay: RunningRelay, sink: SinkServer
) -> None:
    started, notification = await notified_reply(relay, sink)
    reply = reply_to(notification, "The installer and the page:")
    reply.add_attachment(WINDOWS_PROGRAM, "application", "octet-stream", filename="setup.exe")
    reply.add_attachment("<script>alert(1)</script>", "html", filename="page.html")
    await send_to_relay(relay, reply)

    message = await next_owner_message(relay, started["token"])
    assert message["attachments"] == []
    lines = message["body"].split("\n\n")
    assert lines[0] == "The installer and the page:"
    assert [line.split(" ")[0] for line in lines[1:]] == ["(setup.exe", "(page.html"]
    assert all("not kept" in line for line in lines[1:])
    assert stored(relay) == (0, [])  # no row, no blob, no scratch file


@BOTH_ENGINES
async def test_a_signatures_logo_is_not_a_file_but_a_pasted_photo_is(
    relay: RunningRelay, sink: SinkServer
) -> None:
    started, notification = await notified_reply(relay, sink)
    reply = reply_to(notification, "Here it is.")
    logo = photo_with_gps("PNG", (40, 20))
    pasted = photo_with_gps("PNG", (120, 90), noise=True)
    assert len(logo) < 10 * 1024 < len(pasted)
    reply.add_alternative(
        '<p>Here it is.</p><img src="cid:pasted@alpha"><p>--<br><img src="cid:logo@alpha">'
        " Alpha Bakery</p>",
        subtype="html",
    )
    html = reply.get_body(("html",))
    assert html is not None
    html.add_related(logo, "image", "png", cid="<logo@alpha>", filename="image001.png")
    html.add_related(pasted, "image", "png", cid="<pasted@alpha>", filename="image002.png")
    await send_to_relay(relay, reply)

    message = await next_owner_message(relay, started["token"])
    assert message["body"] == "Here it is."
    assert [a["name"] for a in message["attachments"]] == ["image002.png"]


@BOTH_ENGINES
async def test_a_15_mb_message_comes_in_through_smtp(relay: RunningRelay, sink: SinkServer) -> None:
    with relay.db() as db:  # the site takes files up to 25 MB (an operator's setting)
        db.execute("UPDATE sites SET settings = ? WHERE id = 'alpha'", ('{"max_file_mb": 25}',))
    relay.services.conversations.site_changed("alpha")
    started, notification = await notified_reply(relay, sink)
    big = PDF[:-6] + b"%" + b"0" * 11_500_000 + b"\n%%EOF\n"  # a scanned plan
    reply = reply_to(notification, "The full plan.")
    reply.add_attachment(big, "application", "pdf", filename="plan.pdf")
    raw = reply.as_bytes()
    assert 15_000_000 < len(raw) < MAX_MESSAGE_BYTES  # over the old 10 MB cap
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=relay.config.smtp_port) as smtp:
        await smtp.ehlo()
        assert smtp.esmtp_extensions["size"] == str(MAX_MESSAGE_BYTES)
        await smtp.sendmail(OWNER, [parseaddr(reply["To"])[1]], raw)

    message = await next_owner_message(relay, started["token"])
    [plan] = message["attachments"]
    assert (plan["name"], plan["size"]) == ("plan.pdf", len(big))


# ---------------------------------------------------------------- outbound


@BOTH_ENGINES
async def test_the_owners_email_links_the_visitors_pdf_for_days_and_does_not_carry_it(
    relay: RunningRelay, sink: SinkServer
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "Hello")
        await sink.sink.next()  # the first message's notification
        token = bearer(started["token"])
        sent = await client.post(
            "/v1/thread/attachments", files={"file": ("menu.pdf", PDF)}, headers=token
        )
        assert sent.status_code == 201, sent.text
        posted = await client.post(
            "/v1/thread/messages",
            headers=token,
            json={"body": "", "client_id": "c-menu", "attachments": [sent.json()["id"]]},
        )
        assert posted.status_code == 201, posted.text
    mail = await next_mail_to(sink, OWNER)
    assert [part.get_content_type() for part in mail.walk() if not part.is_multipart()] == [
        "text/plain",
        "text/html",
    ]
    link = linked_file(mail, "menu.pdf", size=f"{len(PDF)} bytes")
    got = await download(link)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"].startswith("attachment")
    assert "Links to files work for 30 days." in text_of(mail)
    html = mail.get_body(("html",))
    assert html is not None and f'href="{link}"' in html.get_content()

    # The emailed link still works when the owner reads the email hours later; the
    # widget's link (renewed on every read of the thread) does not.
    plain = sent.json()["url"]
    two_hours = 2 * HOUR
    assert (await download(signed_ago(relay, link, two_hours))).content == PDF
    assert (await download(signed_ago(relay, plain, HOUR - 60))).content == PDF
    for dead in (
        signed_ago(relay, plain, two_hours),
        signed_ago(relay, link, EMAILED_ATTACHMENT_MAX_AGE + 60),
        tampered(link.rsplit("/", 1)[0]) + "/menu.pdf",
    ):
        assert (await download(dead)).status_code == 404, dead


# ---------------------------------------------------------------- reading


def test_inspect_lists_files_with_decoded_names_and_not_the_mails_machinery() -> None:
    raw = b"\r\n".join(
        [
            b"From: owner@alpha.example",
            b"To: r+abc@reply.example",
            b"Subject: Re: cake",
            b"Message-ID: <names@alpha.example>",
            b"MIME-Version: 1.0",
            b'Content-Type: multipart/mixed; boundary="b"',
            b"",
            b"--b",
            b"Content-Type: text/plain; charset=utf-8",
            b"",
            b"Voici.",
            b"--b",
            b"Content-Type: application/pdf",
            b"Content-Disposition: attachment;"
            b" filename*=UTF-8''g%C3%A2teau%20pr%C3%A9f%C3%A9r%C3%A9.pdf",
            b"Content-Transfer-Encoding: base64",
            b"",
            b"JVBERi0xLjQK",
            b"--b",
            b'Content-Type: application/pdf; name="=?UTF-8?B?ZMOpY29yLnBkZg==?="',
            b"Content-Transfer-Encoding: base64",
            b"",
            b"JVBERi0xLjQK",
            b"--b",
            b'Content-Type: image/png; name="C:\\\\Users\\\\ann\\\\ph\x07oto.png"',
            b"Content-Transfer-Encoding: base64",
            b"",
            b"iVBORw0KGgo=",
            b"--b",
            b"Content-Type: image/jpeg",
            b"Content-Transfer-Encoding: base64",
            b"",
            b"/9j/4AAQ",
            b"--b",
            b"Content-Type: application/pkcs7-signature; name=smime.p7s",
            b"Content-Disposition: attachment; filename=smime.p7s",
            b"",
            b"signature",
            b"--b--",
            b"",
        ]
    )
    found = inspect(raw).to_json()
    assert found["body"] == "Voici."
    assert found["attachments"] == [
        {"name": "gâteau préféré.pdf", "type": "application/pdf", "size": 9},
        {"name": "décor.pdf", "type": "application/pdf", "size": 9},
        {"name": "photo.png", "type": "image/png", "size": 8},  # no path, no control
        {"name": "image.jpg", "type": "image/jpeg", "size": 6},  # named from its type
    ]  # the S/MIME signature is the mail's machinery, not a file


# ---------------------------------------------------------------- helpers


async def next_mail_to(sink: SinkServer, recipient: str) -> EmailMessage:
    """The next email to `recipient` that lists a file (others are skipped)."""
    while True:
        mail = await sink.sink.next()
        if mail["To"] == recipient and FILE_LINE in text_of(mail):
            return mail


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]


def linked_file(mail: EmailMessage, name: str, size: str | None = None) -> str:
    """The link of the file `name` in the email's text: `📎 name (size) <link>`."""
    for line in text_of(mail).splitlines():
        if line.startswith(f"{FILE_LINE}{name} ("):
            label, _, link = line.partition(" <")
            if size is not None:
                assert label == f"{FILE_LINE}{name} ({size})"
            return link.removesuffix(">")
    raise AssertionError(f"no link to {name!r} in:\n{text_of(mail)}")


def signed_ago(relay: RunningRelay, url: str, seconds: int) -> str:
    """The same download link, signed `seconds` ago with the relay's keys and salt: its
    payload is read back from the real token, so the test knows nothing of its shape."""
    base, token, name = url.rsplit("/", 2)
    keys = list(reversed(relay.config.secret_keys))  # itsdangerous signs with the last
    payload = URLSafeTimedSerializer(keys, salt=ATTACHMENT_SALT).loads(token)

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - seconds

    then = URLSafeTimedSerializer(keys, salt=ATTACHMENT_SALT, signer=Then)
    return f"{base}/{then.dumps(payload)}/{name}"
