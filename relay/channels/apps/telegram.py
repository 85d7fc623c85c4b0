"""Telegram, through the Bot API (https://core.telegram.org/bots/api).

Connecting a bot calls getMe (its id and username) and setWebhook with a random
secret_token that Telegram sends back in X-Telegram-Bot-Api-Secret-Token on every
update; the bot token is never in the webhook URL. An update's update_id identifies it.
Replies are sendMessage calls, plain text of at most 4,096 characters, and sendPhoto
or sendDocument uploads for their files. A customer's photo or document is fetched with
getFile, then from {api}/file/bot{token}/{file_path}. A deep link t.me/BOT?start=CODE
opens the chat with "/start CODE".
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx
from starlette.datastructures import Headers, QueryParams

from relay.channels.apps.provider import (
    MB,
    Account,
    Download,
    Event,
    Incoming,
    Media,
    MediaTooLarge,
    Outgoing,
    ProviderError,
    is_code,
    no_templates,
)
from relay.config import Config
from relay.models import Via
from relay.store.chats import AppChannel

# A Bot API URL carries the bot's token: {base}/bot{token}/{method}.
TOKEN_IN_URL = re.compile(r"/bot[^/\s]+/")


class HideTokens(logging.Filter):
    """httpx logs each request's URL at INFO (the relay's default level): the token in
    it is masked before any handler sees the record, so it never reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                TOKEN_IN_URL.sub("/bot<hidden>/", str(arg)) if "/bot" in str(arg) else arg
                for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(HideTokens())

# What a message may carry besides text and the photos and documents Porch keeps
# (_media), by the Bot API's field names.
KINDS = {
    "voice": "voice",
    "audio": "voice",
    "video": "video",
    "video_note": "video",
    "animation": "video",
    "sticker": "sticker",
    "location": "location",
    "venue": "location",
    "contact": "contact",
}


RETRY_AFTER_CAP = 3600  # seconds: a longer wait asked of us is taken as an hour
# getFile: "bots can download files of up to 20MB in size"; past it, this description.
DOWNLOAD_LIMIT = 20 * MB
FILE_TOO_BIG = "file is too big"
PHOTO_LIMIT = 10 * MB  # sendPhoto: "The photo must be at most 10 MB in size"; else a document

Upload = dict[str, tuple[str, BinaryIO, str]]  # a multipart field: (file name, content, type)


class Telegram:
    kind: Via = Via.TELEGRAM
    label = "Telegram"
    text_limit = 4096
    window: float | None = None  # a bot may write to a chat that wrote to it, at any time
    human_window: float | None = None
    templates = False
    download_limit = DOWNLOAD_LIMIT

    def __init__(self, config: Config) -> None:
        self.base = config.telegram_api_url.rstrip("/")

    def verify(self, channel: AppChannel, headers: Headers, raw: bytes) -> bool:
        given = headers.get("x-telegram-bot-api-secret-token", "")
        return hmac.compare_digest(given.encode(), channel.secrets["webhook_secret"].encode())

    def handshake(self, channel: AppChannel, query: QueryParams) -> str | None:
        return None  # Telegram does not verify webhook URLs with a GET

    def parse(self, channel: AppChannel, payload: dict[str, Any]) -> list[Event]:
        update_id = payload.get("update_id")
        if not isinstance(update_id, int):
            raise ValueError("a Telegram update has an integer update_id")
        message = payload.get("message")
        # Edits, channel posts, group chats: not a customer writing to the business.
        if not isinstance(message, dict) or message.get("chat", {}).get("type") != "private":
            return []
        sender = message.get("from") or {}
        name = " ".join(
            part for part in (sender.get("first_name"), sender.get("last_name")) if part
        )
        text = str(message.get("text") or message.get("caption") or "")
        code, command_only = None, False
        if text == "/start" or text.startswith("/start "):
            argument = text[len("/start") :].strip()
            code = argument if is_code(argument) else None
            command_only, text = True, ""
        return [
            Incoming(
                external_id=str(update_id),
                address=str(message["chat"]["id"]),
                name=name or sender.get("username"),
                text=text,
                kinds=tuple(dict.fromkeys(KINDS[k] for k in KINDS if k in message)),
                code=code,
                command_only=command_only,
                media=_media(message),
            )
        ]

    async def send_template(
        self, http: httpx.AsyncClient, channel: AppChannel, address: str, language: str
    ) -> str | None:
        raise no_templates(self.label)  # no reply window: never needed

    async def send_text(
        self,
        http: httpx.AsyncClient,
        channel: AppChannel,
        address: str,
        text: str,
        *,
        late: bool = False,  # never: no window
    ) -> str | None:
        result = await self._call(
            http, channel.secrets["bot_token"], "sendMessage", {"chat_id": address, "text": text}
        )
        return str(result.get("message_id")) if isinstance(result, dict) else None

    async def send_file(
        self,
        http: httpx.AsyncClient,
        channel: AppChannel,
        address: str,
        file: Outgoing,
        *,
        late: bool = False,
    ) -> str | None:
        method, field = (
            ("sendPhoto", "photo") if file.photo(PHOTO_LIMIT) else ("sendDocument", "document")
        )
        with file.path.open("rb") as content:
            result = await self._call(
                http,
                channel.secrets["bot_token"],
                method,
                {"chat_id": address},
                {field: (file.name, content, file.type)},
            )
        return str(result.get("message_id")) if isinstance(result, dict) else None

    async def locate(self, http: httpx.AsyncClient, channel: AppChannel, media: Media) -> Download:
        token = channel.secrets["bot_token"]
        try:
            found = await self._call(http, token, "getFile", {"file_id": media.ref})
        except ProviderError as error:
            if FILE_TOO_BIG in error.reason:
                raise MediaTooLarge() from None
            raise
        path = found.get("file_path") if isinstance(found, dict) else None
        if not isinstance(path, str) or not path:
            raise ProviderError("Telegram's getFile gave no file_path", retry=False)
        return Download(f"{self.base}/file/bot{token}/{quote(path)}", size=_size(found))

    def link(self, channel: AppChannel, code: str, text: str) -> str:
        return f"https://t.me/{quote(channel.handle)}?start={code}"

    def account_of(self, options: dict[str, str]) -> str:
        return options["bot_token"].split(":", 1)[0]  # a token starts with its bot's id

    async def connect(
        self, http: httpx.AsyncClient, options: dict[str, str], webhook_url: str
    ) -> Account:
        token = options["bot_token"]
        me = await self._call(http, token, "getMe", {})
        if not isinstance(me, dict) or not me.get("username"):
            raise ProviderError("Telegram's getMe did not name the bot", retry=False)
        secret = secrets.token_urlsafe(32)
        await self._call(
            http,
            token,
            "setWebhook",
            {"url": webhook_url, "secret_token": secret, "allowed_updates": ["message"]},
        )
        return Account(
            str(me["id"]), str(me["username"]), {"bot_token": token, "webhook_secret": secret}
        )

    async def disconnect(self, http: httpx.AsyncClient, channel: AppChannel) -> None:
        await self._call(http, channel.secrets["bot_token"], "deleteWebhook", {})

    async def _call(
        self,
        http: httpx.AsyncClient,
        token: str,
        method: str,
        params: dict[str, Any],
        files: Upload | None = None,
    ) -> Any:
        """One Bot API method, JSON or, with `files`, a multipart upload. Errors are
        worded here, never from httpx's own messages, which would repeat the URL and the
        token in it."""
        url = f"{self.base}/bot{token}/{method}"
        try:
            if files:
                response = await http.post(url, data=params, files=files)
            else:
                response = await http.post(url, json=params)
        except httpx.TimeoutException:
            raise ProviderError(f"Telegram's {method} did not answer in time", retry=True) from None
        except httpx.HTTPError as error:
            raise ProviderError(
                f"Telegram is unreachable ({type(error).__name__})", retry=True
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = {}
        if isinstance(data, dict) and data.get("ok"):
            return data.get("result")
        description = data.get("description") if isinstance(data, dict) else None
        reason = f"Telegram answered {response.status_code}" + (
            f": {description}" if description else ""
        )
        if response.status_code in (401, 404):
            raise ProviderError(f"the bot token was refused (revoked?): {reason}", retry=False)
        if response.status_code == 403:
            raise ProviderError(f"the customer blocked the bot: {reason}", retry=False)
        retry = response.status_code >= 500 or response.status_code == 429
        raise ProviderError(reason, retry=retry, after=_retry_after(data))


def _media(message: dict[str, Any]) -> tuple[Media, ...]:
    """The photo (its largest size) or the document a message carries."""
    if "animation" in message:  # a GIF also comes as a document: a video, noted as one
        return ()
    sizes = [s for s in message.get("photo") or [] if isinstance(s, dict) and s.get("file_id")]
    if sizes:
        largest = max(
            sizes, key=lambda s: (_int(s.get("width")) * _int(s.get("height")), _size(s) or 0)
        )
        return (Media("photo", str(largest["file_id"]), "photo", _size(largest)),)
    document = message.get("document")
    if isinstance(document, dict) and document.get("file_id"):
        name = str(document.get("file_name") or "file")
        return (Media("file", str(document["file_id"]), name, _size(document)),)
    return ()


def _size(found: Any) -> int | None:
    size = found.get("file_size") if isinstance(found, dict) else None
    return size if isinstance(size, int) and size >= 0 else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _retry_after(data: Any) -> float:
    """The seconds a 429 tells us to wait (ResponseParameters.retry_after), else 0."""
    parameters = data.get("parameters") if isinstance(data, dict) else None
    after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return float(min(after, RETRY_AFTER_CAP)) if isinstance(after, int) and after > 0 else 0.0
