"""The data Porch stores and sends, as plain frozen records with their JSON shapes."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson


class Author(enum.StrEnum):
    VISITOR = "visitor"
    OWNER = "owner"
    SYSTEM = "system"


class Via(enum.StrEnum):
    WIDGET = "widget"
    EMAIL = "email"
    INBOX = "inbox"
    API = "api"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"


class ThreadStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


def utc_now() -> str:
    """ISO-8601 UTC with milliseconds: sorts as text, parses in every browser."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    owner_emails: tuple[str, ...]
    origins: tuple[str, ...]
    # Declared, checked and read with their defaults in relay/sites/settings.py (which
    # also makes the widget's public config out of them).
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "owner_emails": list(self.owner_emails),
            "origins": list(self.origins),
            "settings": self.settings,
            "created_at": self.created_at,
        }


class NotifyMode(enum.StrEnum):
    """How an owner hears of visitor messages by email."""

    MESSAGE = "message"  # one email per conversation, gathered over a short window
    HOURLY = "hourly"  # one digest an hour
    DAILY = "daily"  # one digest a day, in the morning
    OFF = "off"


@dataclass(frozen=True)
class Owner:
    """Someone who answers: an address in some sites' owner_emails, and their choices."""

    email: str
    name: str | None = None
    language: str | None = None  # None: not chosen; the inbox follows the browser
    notify: str = NotifyMode.MESSAGE.value
    aliases: tuple[str, ...] = ()  # other addresses they may reply from


@dataclass(frozen=True)
class OwnerSession:
    """A signed-in inbox (one browser); the cookie carries the id, signed."""

    id: str
    email: str
    user_agent: str | None
    created_at: str
    last_seen_at: str


@dataclass(frozen=True)
class PushSubscription:
    """A device that takes Web Push (relay/push): what its browser's PushSubscription
    gave (endpoint, p256dh, auth) and whose it is, a visitor's or an owner's. An
    owner's device is told of every site the owner answers; `site_id` is the site it
    was made from (the row goes with that site)."""

    id: str  # "" when adding: the store makes one
    site_id: str
    endpoint: str  # a capability URL: shown to nobody
    p256dh: str  # the device's P-256 public key, base64url
    auth: str  # its 16-byte authentication secret, base64url
    visitor_id: str | None = None
    owner_email: str | None = None
    session_id: str | None = None  # an owner's inbox session: signing out removes it
    user_agent: str | None = None  # a short device label for the settings list
    created_at: str = ""

    def __post_init__(self) -> None:
        if (self.visitor_id is None) == (self.owner_email is None):
            raise ValueError("a push subscription is a visitor's or an owner's: give one")

    def to_json(self) -> dict[str, Any]:
        """As a settings list shows it: never the endpoint or the keys."""
        return {
            "id": self.id,
            "site": self.site_id,
            "user_agent": self.user_agent,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Attached:
    """A photo or file as a message carries it (relay/attachments keeps the bytes)."""

    id: str
    name: str
    type: str  # judged from the content
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "size": self.size}


# A download link for an attachment: signed and short-lived, so made by the web layer
# each time a message is read (relay/web/services.py).
Links = Callable[[Attached], str]


@dataclass(frozen=True)
class Message:
    seq: int
    thread: str
    author: Author
    body: str  # may be empty when the message carries attachments
    via: Via
    client_id: str | None
    created_at: str
    attachments: tuple[Attached, ...] = ()
    answer: str | None = None  # an automatic answer: the id of the owner's answer it sent

    def to_json(self, reader: Author, links: Links | None = None) -> dict[str, Any]:
        """The message as `reader` sees it. A client_id is shown only to the side that
        wrote it: it is that side's secret (replaying a visitor's first client_id hands
        out the visitor's token), and the other side has no use for it. Each attachment
        has its download `url` when `links` makes them (not in an export or a list)."""
        return {
            "seq": self.seq,
            "thread": self.thread,
            "author": self.author.value,
            "body": self.body,
            "via": self.via.value,
            "client_id": self.client_id if self.author is reader else None,
            "created_at": self.created_at,
            "attachments": [
                {**a.to_json(), "url": links(a)} if links else a.to_json() for a in self.attachments
            ],
            "answer": self.answer,
        }


@dataclass(frozen=True)
class Answer:
    """One of the owner's answers (relay/answers): sent automatically when a visitor's
    message matches it confidently, suggested while they type."""

    id: str
    site: str
    language: str
    question: str
    alternatives: tuple[str, ...]  # other ways visitors ask it
    answer: str
    created_at: str = ""
    updated_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "site": self.site,
            "language": self.language,
            "question": self.question,
            "alternatives": list(self.alternatives),
            "answer": self.answer,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Thread:
    id: str
    site: str
    visitor: str
    status: ThreadStatus
    page: str | None
    created_at: str
    updated_at: str
    last_seq: int
    owner_read_seq: int
    visitor_read_seq: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "site": self.site,
            "status": self.status.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_seq": self.last_seq,
            "owner_read_seq": self.owner_read_seq,
            "visitor_read_seq": self.visitor_read_seq,
        }


@dataclass(frozen=True)
class ThreadSummary:
    """A thread as the owner's list shows it."""

    thread: Thread
    visitor_name: str | None
    visitor_email: str | None
    last_message: Message | None
    unread: int
    visitor_first_seen: str | None = None
    visitor_language: str | None = None
    # A search hit: the matching text, each term between U+0002 and U+0003 (control
    # characters no message can hold: relay/inputs.py removes them).
    match: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.thread.to_json(),
            "page": self.thread.page,
            "visitor": {
                "id": self.thread.visitor,
                "name": self.visitor_name,
                "email": self.visitor_email,
                "first_seen": self.visitor_first_seen,
                "language": self.visitor_language,
            },
            "last_message": (
                self.last_message.to_json(Author.OWNER) if self.last_message else None
            ),
            "unread": self.unread,
            "match": self.match,
        }


@dataclass(frozen=True)
class Started:
    """Result of starting a conversation; created is False for a retried request."""

    visitor: str
    thread: Thread
    message: Message
    created: bool
    epoch: int = 0  # the visitor's token epoch (a signed-in user may have signed out)


# Events: what the live socket streams. Message and read events are published by
# the store after commit; typing is ephemeral and published by the socket itself.


def frame_json(frame: dict[str, Any]) -> str:
    """Compact UTF-8 JSON, as json.dumps(separators=(",", ":"), ensure_ascii=False)
    writes it, ~20x faster: a message is encoded for each role it goes to."""
    return orjson.dumps(frame).decode()


class _Framed:
    """Events are encoded once, however many sockets they go to; one whose frame
    depends on who reads it (a message: its client_id) overrides frame_for."""

    def to_frame(self) -> dict[str, Any]:
        raise NotImplementedError

    @cached_property
    def _text(self) -> str:
        return frame_json(self.to_frame())

    def frame_for(self, reader: Author, links: Links) -> str:
        """The frame as a visitor's or an owner's socket gets it; `links` are the
        relay's (one per process), so the first socket's encoding serves them all."""
        return self._text


@dataclass(frozen=True)
class MessageAdded(_Framed):
    site: str
    message: Message

    @property
    def thread(self) -> str:
        return self.message.thread

    @cached_property
    def _texts(self) -> dict[Author, str]:
        return {}

    def frame_for(self, reader: Author, links: Links) -> str:
        text = self._texts.get(reader)
        if text is None:
            message = self.message.to_json(reader, links)
            text = self._texts[reader] = frame_json({"type": "message", "message": message})
        return text


@dataclass(frozen=True)
class ReadMoved(_Framed):
    site: str
    thread: str
    author: Author
    seq: int

    def to_frame(self) -> dict[str, Any]:
        return {"type": "read", "thread": self.thread, "author": self.author.value, "seq": self.seq}


@dataclass(frozen=True)
class Typing(_Framed):
    site: str
    thread: str
    author: Author

    def to_frame(self) -> dict[str, Any]:
        return {"type": "typing", "thread": self.thread, "author": self.author.value}


@dataclass(frozen=True)
class SignedOut(_Framed):
    """The visitor signed out everywhere: sockets on older tokens must close."""

    site: str
    thread: str
    epoch: int

    def to_frame(self) -> dict[str, Any]:
        return {"type": "signed_out", "thread": self.thread}


@dataclass(frozen=True)
class ThreadDeleted(_Framed):
    """Erased (by the visitor, an owner's erasure command, or retention)."""

    site: str
    thread: str

    def to_frame(self) -> dict[str, Any]:
        return {"type": "deleted", "thread": self.thread}


@dataclass(frozen=True)
class StatusChanged(_Framed):
    """An owner closed or reopened a thread (or a visitor's message reopened it)."""

    site: str
    thread: str
    status: ThreadStatus

    def to_frame(self) -> dict[str, Any]:
        return {"type": "status", "thread": self.thread, "status": self.status.value}


@dataclass(frozen=True)
class PresenceChanged(_Framed):
    """To visitors: an owner opened the inbox (online) or the last one left. Not on the
    bus: relay/presence.py tells the visitor sockets of the site."""

    online: bool

    def to_frame(self) -> dict[str, Any]:
        return {"type": "presence", "online": self.online}


@dataclass(frozen=True)
class HeldChanged(_Framed):
    """To owners only: an emailed reply was held in this thread, or an owner released or
    discarded one (relay/channels/email/held.py)."""

    site: str
    thread: str

    def to_frame(self) -> dict[str, Any]:
        return {"type": "held", "thread": self.thread}


Event = MessageAdded | ReadMoved | Typing | SignedOut | ThreadDeleted | StatusChanged | HeldChanged
