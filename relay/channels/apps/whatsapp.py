"""WhatsApp, through Meta's Cloud API (developers.facebook.com/docs/whatsapp/cloud-api).

The owner's Meta app points its webhook at our URL with a verify token (the GET
handshake) and signs every POST with its app secret (relay.channels.apps.meta). A
message's id (wamid) identifies it; `statuses` tell what became of our replies. Replies
are POST /{phone-number-id}/messages, only within 24 hours of the customer's last
message; outside it, only an approved template may be sent. A file goes up first (POST
/{phone-number-id}/media), then in a message by its media id. A customer's image or
document carries a media id: GET /{media-id} gives a URL, fetched with the same token.
A wa.me link opens a chat with a prefilled text that carries the code.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx

from relay.channels.apps import meta
from relay.channels.apps.provider import (
    CODE_IN_TEXT,
    MB,
    Account,
    Download,
    Event,
    Incoming,
    Media,
    Outgoing,
    ProviderError,
    Receipt,
)
from relay.models import Via
from relay.store.chats import AppChannel

# What a message may carry besides text and the images and documents Porch keeps
# (MEDIA), by the Cloud API's message types.
KINDS = {
    "audio": "voice",
    "video": "video",
    "sticker": "sticker",
    "location": "location",
    "contacts": "contact",
}
MEDIA = {"image": "photo", "document": "file"}
NAMED = {**KINDS, **MEDIA}  # an image or document without its media id is noted
TEXT_TYPES = ("text", "button", "interactive")
IMAGE_LIMIT = 5 * MB  # "Images must be 8-bit, RGB or RGBA", JPEG or PNG, up to 5 MB


class WhatsApp(meta.MetaApp):
    kind: Via = Via.WHATSAPP
    label = "WhatsApp"
    text_limit = 4096
    templates = True

    def parse(self, channel: AppChannel, payload: dict[str, Any]) -> list[Event]:
        if payload.get("object") != "whatsapp_business_account":
            raise ValueError("a WhatsApp webhook has object 'whatsapp_business_account'")
        events: list[Event] = []
        for entry in payload.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                if (value.get("metadata") or {}).get("phone_number_id") != channel.account:
                    continue  # another number of the same business account
                names = {
                    c.get("wa_id"): (c.get("profile") or {}).get("name")
                    for c in value.get("contacts") or []
                }
                events += [_incoming(m, names) for m in value.get("messages") or []]
                events += [_receipt(s) for s in value.get("statuses") or []]
        return events

    async def send_text(
        self,
        http: httpx.AsyncClient,
        channel: AppChannel,
        address: str,
        text: str,
        *,
        late: bool = False,  # never: past the window only a template goes
    ) -> str | None:
        return await self._send(
            http,
            channel,
            {"to": address, "type": "text", "text": {"preview_url": False, "body": text}},
        )

    async def send_file(
        self,
        http: httpx.AsyncClient,
        channel: AppChannel,
        address: str,
        file: Outgoing,
        *,
        late: bool = False,
    ) -> str | None:
        with file.path.open("rb") as content:
            uploaded = await meta.graph(
                http,
                "POST",
                f"{self.base}/{quote(channel.account)}/media",
                channel.secrets["access_token"],
                {"messaging_product": "whatsapp", "type": file.type},
                files={"file": (file.name, content, file.type)},
            )
        if not uploaded.get("id"):
            raise ProviderError("Meta's media upload gave no media id", retry=True)
        if file.photo(IMAGE_LIMIT):
            return await self._send(
                http, channel, {"to": address, "type": "image", "image": {"id": uploaded["id"]}}
            )
        document = {"id": uploaded["id"], "filename": file.name}
        return await self._send(
            http, channel, {"to": address, "type": "document", "document": document}
        )

    async def locate(self, http: httpx.AsyncClient, channel: AppChannel, media: Media) -> Download:
        token = channel.secrets["access_token"]
        found = await meta.graph(
            http,
            "GET",
            f"{self.base}/{quote(media.ref, safe='')}",  # an id from a webhook: one segment
            token,
            params={"phone_number_id": channel.account},
        )
        url = found.get("url")
        if not isinstance(url, str) or not url:
            raise ProviderError("Meta gave no URL for this media id", retry=False)
        size = str(found.get("file_size") or "")
        return Download(
            url, {"authorization": f"Bearer {token}"}, int(size) if size.isdigit() else None
        )

    async def send_template(
        self, http: httpx.AsyncClient, channel: AppChannel, address: str, language: str
    ) -> str | None:
        assert channel.template
        template = {"name": channel.template, "language": {"code": language}}
        return await self._send(
            http, channel, {"to": address, "type": "template", "template": template}
        )

    def link(self, channel: AppChannel, code: str, text: str) -> str:
        return f"https://wa.me/{re.sub(r'[^0-9]', '', channel.handle)}?text={quote(text)}"

    def account_of(self, options: dict[str, str]) -> str:
        return options["phone_number_id"]

    async def connect(
        self, http: httpx.AsyncClient, options: dict[str, str], webhook_url: str
    ) -> Account:
        number = options["phone_number_id"]
        found = await meta.graph(
            http,
            "GET",
            f"{self.base}/{quote(number)}",
            options["access_token"],
            params={"fields": "display_phone_number,verified_name"},
        )
        display = str(found.get("display_phone_number") or "")
        if not re.sub(r"[^0-9]", "", display):
            raise ProviderError("Meta did not give this phone-number id's number", retry=False)
        keep = ("access_token", "app_secret", "verify_token")
        return Account(number, display, {key: options[key] for key in keep})

    async def disconnect(self, http: httpx.AsyncClient, channel: AppChannel) -> None:
        """The webhook belongs to the owner's Meta app: nothing to undo here."""

    async def _send(
        self, http: httpx.AsyncClient, channel: AppChannel, message: dict[str, Any]
    ) -> str | None:
        sent = await meta.graph(
            http,
            "POST",
            f"{self.base}/{quote(channel.account)}/messages",
            channel.secrets["access_token"],
            {"messaging_product": "whatsapp", "recipient_type": "individual", **message},
        )
        ids = [m.get("id") for m in sent.get("messages") or [] if isinstance(m, dict)]
        return str(ids[0]) if ids and ids[0] else None


def _incoming(message: dict[str, Any], names: dict[Any, Any]) -> Incoming:
    kind = message.get("type")
    text = ""
    if kind == "text":
        text = str((message.get("text") or {}).get("body") or "")
    elif kind == "button":  # a tap on a template's quick reply
        text = str((message.get("button") or {}).get("text") or "")
    elif kind == "interactive":
        reply = message.get("interactive") or {}
        text = str((reply.get("button_reply") or reply.get("list_reply") or {}).get("title") or "")
    else:
        text = str((message.get(kind) or {}).get("caption") or "") if kind else ""
    found = CODE_IN_TEXT.search(text)
    sender = str(message["from"])
    media = _media(str(kind), message.get(str(kind)))
    return Incoming(
        external_id=str(message["id"]),
        address=sender,
        name=names.get(sender),
        text=text,
        kinds=(NAMED.get(str(kind), "other"),) if kind not in TEXT_TYPES and not media else (),
        code=found.group(1) if found else None,
        media=media,
    )


def _media(kind: str, content: Any) -> tuple[Media, ...]:
    """The image or document a message carries, by its media id."""
    if kind not in MEDIA or not isinstance(content, dict) or not content.get("id"):
        return ()
    name = str(content.get("filename") or MEDIA[kind]) if kind == "document" else "photo"
    return (Media(MEDIA[kind], str(content["id"]), name),)


def _receipt(status: dict[str, Any]) -> Receipt:
    errors = status.get("errors") or []
    error = None
    if errors and isinstance(errors[0], dict):
        detail = (errors[0].get("error_data") or {}).get("details")
        error = f"WhatsApp: {errors[0].get('title') or errors[0].get('message')}" + (
            f" ({detail})" if detail else ""
        )
    return Receipt(str(status["id"]), str(status.get("status")), error)
