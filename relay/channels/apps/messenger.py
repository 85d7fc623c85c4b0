"""Messenger, through Meta's Send API (developers.facebook.com/docs/messenger-platform).

Webhooks are verified like WhatsApp's (relay.channels.apps.meta). A message's `mid`
identifies it; our own replies come back as echoes, which are ignored. Replies go
through POST /{page-id}/messages within 24 hours of the customer's last message
(messaging_type RESPONSE), a file as multipart `filedata`. For 7 days after it, a
person's reply still goes, tagged as Meta's "Message Tags" documents for human support
(MESSAGE_TAG, HUMAN_AGENT); the relay's own notes do not (the tag is for people only);
after that, nothing goes until the customer writes again. There are no templates. A
customer's image or file comes with its URL. An m.me/PAGE?ref=CODE link delivers the
code as a referral (an existing conversation) or with the Get Started postback (a new
one).
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from relay.channels.apps import meta
from relay.channels.apps.provider import (
    MB,
    WEEK,
    Account,
    Download,
    Event,
    Incoming,
    Media,
    Outgoing,
    ProviderError,
    Receipt,
    is_code,
)
from relay.models import Via
from relay.store.chats import AppChannel

# What a message may carry besides text and the images and files Porch keeps (MEDIA),
# by the attachments' types.
KINDS = {
    "audio": "voice",
    "video": "video",
    "sticker": "sticker",
    "location": "location",
}
MEDIA = {"image": "photo", "file": "file"}
NAMED = {**KINDS, **MEDIA}  # an image or file without its URL is noted
PHOTO_LIMIT = 25 * MB  # attachments are saved "up to 25MB in size"
MAX_NAME_CHARS = 200
# Meta serves customers' attachments from its CDNs. A webhook is signed by the site's own
# Meta app, so its owner could name any address for the relay to fetch and show them
# (an internal service, a cloud's metadata): only these, or PORCH_META_API_URL's origin
# (a proxy, or the fake in tests), are fetched.
CDN_DOMAINS = ("fbcdn.net", "fbsbx.com", "facebook.com")
# A reply within 24 hours; a person's reply within 7 days, with Meta's human-support tag.
RESPONSE = {"messaging_type": "RESPONSE"}
HUMAN_AGENT = {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}


class Messenger(meta.MetaApp):
    kind: Via = Via.MESSENGER
    label = "Messenger"
    text_limit = 2000
    human_window: float | None = WEEK

    def parse(self, channel: AppChannel, payload: dict[str, Any]) -> list[Event]:
        if payload.get("object") != "page":
            raise ValueError("a Messenger webhook has object 'page'")
        events: list[Event] = []
        for entry in payload.get("entry") or []:
            if str(entry.get("id")) != channel.account:
                continue  # another page of the same Meta app
            for item in entry.get("messaging") or []:
                event = _event(item)
                if event is not None:
                    events.append(event)
        return events

    async def send_text(
        self,
        http: httpx.AsyncClient,
        channel: AppChannel,
        address: str,
        text: str,
        *,
        late: bool = False,
    ) -> str | None:
        body = {"recipient": {"id": address}, **_typed(late), "message": {"text": text}}
        sent = await self._send(http, channel, body, late)
        return str(sent["message_id"]) if sent.get("message_id") else None

    async def send_file(
        self,
        http: httpx.AsyncClient,
        channel: AppChannel,
        address: str,
        file: Outgoing,
        *,
        late: bool = False,
    ) -> str | None:
        kind = "image" if file.photo(PHOTO_LIMIT) else "file"
        message = {"attachment": {"type": kind, "payload": {"is_reusable": False}}}
        body = {"recipient": json.dumps({"id": address}), **_typed(late)}
        with file.path.open("rb") as content:
            upload: meta.Upload = {"filedata": (file.name, content, file.type)}
            sent = await self._send(
                http, channel, {**body, "message": json.dumps(message)}, late, upload
            )
        return str(sent["message_id"]) if sent.get("message_id") else None

    async def _send(
        self,
        http: httpx.AsyncClient,
        channel: AppChannel,
        body: dict[str, Any],
        late: bool,
        files: meta.Upload | None = None,
    ) -> dict[str, Any]:
        """One Send API call; a late one that Meta refuses says what it took."""
        url = f"{self.base}/{quote(channel.account)}/messages"
        token = channel.secrets["page_token"]
        try:
            return await meta.graph(http, "POST", url, token, body, files=files)
        except ProviderError as error:
            if not late or error.retry:
                raise
            raise ProviderError(
                "sent after 24 hours as a person's reply (Meta's HUMAN_AGENT tag, which"
                f" the page's Meta app must be allowed): {error.reason}",
                retry=False,
                window_closed=error.window_closed,
            ) from None

    async def locate(self, http: httpx.AsyncClient, channel: AppChannel, media: Media) -> Download:
        try:
            url, ours = httpx.URL(media.ref), httpx.URL(self.base)
        except httpx.InvalidURL:
            raise ProviderError(
                "Messenger gave an attachment URL that is not one", retry=False
            ) from None
        on_cdn = url.scheme == "https" and any(
            url.host == domain or url.host.endswith(f".{domain}") for domain in CDN_DOMAINS
        )
        if not on_cdn and (url.scheme, url.host, url.port) != (ours.scheme, ours.host, ours.port):
            raise ProviderError("Messenger gave an attachment URL off Meta's CDN", retry=False)
        return Download(media.ref)  # a CDN URL that needs no token: none is sent to it

    def link(self, channel: AppChannel, code: str, text: str) -> str:
        return f"https://m.me/{quote(channel.handle)}?ref={code}"

    def account_of(self, options: dict[str, str]) -> str:
        return options["page_id"]

    async def connect(
        self, http: httpx.AsyncClient, options: dict[str, str], webhook_url: str
    ) -> Account:
        page, token = options["page_id"], options["page_token"]
        # Checks the token, and subscribes the page to the webhook fields we read.
        await meta.graph(
            http,
            "POST",
            f"{self.base}/{quote(page)}/subscribed_apps",
            token,
            {"subscribed_fields": ["messages", "messaging_postbacks", "messaging_referrals"]},
        )
        keep = ("page_token", "app_secret", "verify_token")
        return Account(page, page, {key: options[key] for key in keep})

    async def disconnect(self, http: httpx.AsyncClient, channel: AppChannel) -> None:
        await meta.graph(
            http,
            "DELETE",
            f"{self.base}/{quote(channel.account)}/subscribed_apps",
            channel.secrets["page_token"],
        )


def _typed(late: bool) -> dict[str, str]:
    return HUMAN_AGENT if late else RESPONSE


def _event(item: dict[str, Any]) -> Event | None:
    sender = str((item.get("sender") or {}).get("id") or "")
    stamp = item.get("timestamp")
    message = item.get("message")
    if isinstance(message, dict):
        if message.get("is_echo"):
            return None  # what the page itself sent, our replies included
        attachments = [a for a in message.get("attachments") or [] if isinstance(a, dict)]
        media = tuple(m for m in map(_media, attachments) if m is not None)
        kinds = tuple(
            dict.fromkeys(
                "sticker" if _sticker(a) else NAMED.get(str(a.get("type")), "other")
                for a in attachments
                if _media(a) is None
            )
        )
        referral = (message.get("referral") or {}).get("ref")
        return Incoming(
            str(message["mid"]),
            sender,
            None,
            str(message.get("text") or ""),
            kinds,
            code=referral if isinstance(referral, str) and is_code(referral) else None,
            media=media,
        )
    postback = item.get("postback")
    referral = item.get("referral") or (postback or {}).get("referral")
    if referral is not None or postback is not None:
        ref = (referral or {}).get("ref")
        # A referral or Get Started opens the chat: it says nothing by itself.
        external = (postback or {}).get("mid") or f"open:{sender}:{stamp}"
        return Incoming(
            str(external),
            sender,
            None,
            "",
            code=ref if isinstance(ref, str) and is_code(ref) else None,
            command_only=True,
        )
    delivery = item.get("delivery")
    if isinstance(delivery, dict) and delivery.get("mids"):
        return Receipt(str(delivery["mids"][0]), "delivered")
    return None


def _media(attachment: dict[str, Any]) -> Media | None:
    """An image or file by its URL (a sticker comes as an image: it stays a note)."""
    kind = str(attachment.get("type"))
    url = (attachment.get("payload") or {}).get("url")
    if kind not in MEDIA or _sticker(attachment) or not isinstance(url, str) or not url:
        return None
    # A file's URL ends in the name it was sent with; an image's is a CDN's number.
    named = PurePosixPath(urlsplit(url).path).name[:MAX_NAME_CHARS] if kind == "file" else ""
    return Media(MEDIA[kind], url, named or MEDIA[kind])


def _sticker(attachment: dict[str, Any]) -> bool:
    return bool((attachment.get("payload") or {}).get("sticker_id"))
