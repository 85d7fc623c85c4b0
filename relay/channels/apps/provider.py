"""What a messaging app is to Porch: how its webhooks are verified and read, how a reply
is sent, how a chat is opened with a code. One module per app implements Provider
(telegram.py, whatsapp.py, messenger.py); relay.channels.apps.channel does the rest,
the same way for every app."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from starlette.datastructures import Headers, QueryParams

from relay.models import Via
from relay.store.chats import AppChannel

DAY = 24 * 3600.0
WEEK = 7 * DAY
MB = 1_000_000  # as a site's max_file_mb counts
# What every app shows as a photo (re-encoded JPEG and PNG); other images go as files.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png"})
# A code that binds a widget thread to a chat: 14 characters of an alphabet without
# look-alikes (no l/1, o/0) are 70 random bits, and a code lives 15 minutes, once.
CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
CODE_LENGTH = 14
CODE_TTL = 15 * 60.0
CODE_IN_TEXT = re.compile(rf"#([{CODE_ALPHABET}]{{{CODE_LENGTH}}})\b")


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def is_code(text: str) -> bool:
    return len(text) == CODE_LENGTH and all(c in CODE_ALPHABET for c in text)


@dataclass(frozen=True)
class Media:
    """A photo or file a customer's message carries, as the app names it: fetched only
    once the message is known to be new (Provider.locate, then a download)."""

    kind: str  # "photo" or "file", as the catalogue's server.chat.kind.* names it
    ref: str  # what finds it: Telegram's file_id, WhatsApp's media id, Messenger's URL
    name: str  # the sender's file name, else the kind's (Accept adds the real extension)
    size: int | None = None  # in bytes, when the webhook says


@dataclass(frozen=True)
class Download:
    """Where a Media's bytes are, and what the app wants to hand them out."""

    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # a token, at Meta
    size: int | None = None  # in bytes, when the app says


@dataclass(frozen=True)
class Outgoing:
    """A photo or file of the owner's reply, as the relay keeps it."""

    name: str
    type: str  # judged from its bytes
    size: int
    path: Path  # its blob

    def photo(self, limit: int) -> bool:
        """Whether the app shows it as a photo (`limit`: the app's largest one)."""
        return self.type in PHOTO_TYPES and self.size <= limit


class MediaTooLarge(Exception):
    """A photo or file over what the relay fetches for this site (and app)."""


@dataclass(frozen=True)
class Incoming:
    """A customer's message, as the app delivered it."""

    external_id: str  # the app's id for it: the same id again is a duplicate
    address: str  # the chat: where replies go
    name: str | None  # the customer's name in the app
    text: str  # may be empty when `kinds` or `media` say what else came
    kinds: tuple[str, ...] = ()  # what came that Porch does not take: voice, location…
    code: str | None = None  # a code from "continue in the app"
    command_only: bool = False  # a /start, or an opening: nothing to post by itself
    media: tuple[Media, ...] = ()  # photos and files, to fetch into the thread


@dataclass(frozen=True)
class Receipt:
    """What the app says of a message we sent: sent, delivered, read, failed."""

    external_id: str
    status: str
    error: str | None = None


Event = Incoming | Receipt


class ProviderError(Exception):
    """A send that did not go through; `retry`: a later try may (5xx, 429, timeouts)."""

    def __init__(
        self, reason: str, *, retry: bool, window_closed: bool = False, after: float = 0.0
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.window_closed = window_closed
        self.after = after  # seconds the app told us to wait before trying again


@dataclass(frozen=True)
class Account:
    """What connecting an account to a site found out and keeps."""

    account: str  # the bot's id, the phone-number id, the page id
    handle: str  # public: what links to a chat name (bot username, number, page)
    secrets: dict[str, str]


class Provider(Protocol):
    kind: Via
    label: str  # the app's name, as people write it
    text_limit: int  # the longest text one message may carry
    window: float | None  # seconds after the customer's last message a reply may go
    # Seconds after it a person's reply may still go, sent `late` (Messenger's HUMAN_AGENT
    # tag: 7 days); None: nothing goes after `window`.
    human_window: float | None
    templates: bool  # an approved template may go outside the window (WhatsApp)
    download_limit: int  # the largest file the relay fetches from the app, in bytes

    def verify(self, channel: AppChannel, headers: Headers, raw: bytes) -> bool:
        """Whether the webhook request really comes from the app, for this channel."""
        ...

    def handshake(self, channel: AppChannel, query: QueryParams) -> str | None:
        """The answer to the app's GET verification of the webhook URL (None: refuse)."""
        ...

    def parse(self, channel: AppChannel, payload: dict[str, Any]) -> list[Event]:
        """The events in a webhook payload; ValueError when it is not the app's shape."""
        ...

    async def send_text(
        self,
        http: httpx.AsyncClient,
        channel: AppChannel,
        address: str,
        text: str,
        *,
        late: bool = False,
    ) -> str | None:
        """Send one text; the app's id for it. ProviderError when refused. `late`: past
        `window`, within `human_window`: sent as a person's reply (only then given)."""
        ...

    async def send_file(
        self,
        http: httpx.AsyncClient,
        channel: AppChannel,
        address: str,
        file: Outgoing,
        *,
        late: bool = False,
    ) -> str | None:
        """Send one photo or file (uploaded from its blob); the app's id for it."""
        ...

    async def locate(self, http: httpx.AsyncClient, channel: AppChannel, media: Media) -> Download:
        """Where to download a customer's photo or file. ProviderError when the app
        refuses, MediaTooLarge when it says the file is over what it hands out."""
        ...

    async def send_template(
        self, http: httpx.AsyncClient, channel: AppChannel, address: str, language: str
    ) -> str | None:
        """Send the channel's approved template, which apps allow outside the reply
        window; ProviderError when the app has none."""
        ...

    def link(self, channel: AppChannel, code: str, text: str) -> str:
        """A URL that opens a chat with the account carrying `code` (`text`: what a
        prefilled message says around it, for apps that carry the code in the text)."""
        ...

    def account_of(self, options: dict[str, str]) -> str:
        """Which account the options connect (one site per account)."""
        ...

    async def connect(
        self, http: httpx.AsyncClient, options: dict[str, str], webhook_url: str
    ) -> Account:
        """Check the credentials with the app and register the webhook where the app
        lets us; ProviderError when the app refuses."""
        ...

    async def disconnect(self, http: httpx.AsyncClient, channel: AppChannel) -> None:
        """Undo what connect registered at the app (best effort)."""
        ...


def no_templates(label: str) -> ProviderError:
    return ProviderError(f"{label} has no approved templates to send", retry=False)


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut at a paragraph, line or word end when
    one is near enough, else hard."""
    pieces = []
    while len(text) > limit:
        cut = max(text.rfind(sep, limit // 2, limit) for sep in ("\n\n", "\n", " "))
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces
