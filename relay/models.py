"""The data Porch stores and sends, as plain frozen records with their JSON shapes."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any


class Author(enum.StrEnum):
    VISITOR = "visitor"
    OWNER = "owner"
    SYSTEM = "system"


class Via(enum.StrEnum):
    WIDGET = "widget"
    EMAIL = "email"
    INBOX = "inbox"
    API = "api"


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
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    def public_config(self) -> dict[str, Any]:
        """What any page may read: never owner addresses."""
        return {
            "site": self.id,
            "name": self.name,
            "greeting": self.settings.get("greeting", ""),
            "greetings": self.settings.get("greetings", {}),  # per language, else greeting
            "language": self.settings.get("language", "en"),
            "color": self.settings.get("color", "#2f6f4e"),
            "availability": self.settings.get("availability", ""),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "owner_emails": list(self.owner_emails),
            "origins": list(self.origins),
            "settings": self.settings,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Message:
    seq: int
    thread: str
    author: Author
    body: str
    via: Via
    client_id: str | None
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "thread": self.thread,
            "author": self.author.value,
            "body": self.body,
            "via": self.via.value,
            "client_id": self.client_id,
            "created_at": self.created_at,
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

    def to_json(self) -> dict[str, Any]:
        return {
            **self.thread.to_json(),
            "page": self.thread.page,
            "visitor": {
                "id": self.thread.visitor,
                "name": self.visitor_name,
                "email": self.visitor_email,
            },
            "last_message": self.last_message.to_json() if self.last_message else None,
            "unread": self.unread,
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


class _Framed:
    """Events are encoded once, however many sockets they go to."""

    def to_frame(self) -> dict[str, Any]:
        raise NotImplementedError

    @cached_property
    def frame_text(self) -> str:
        return json.dumps(self.to_frame(), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class MessageAdded(_Framed):
    site: str
    message: Message

    @property
    def thread(self) -> str:
        return self.message.thread

    def to_frame(self) -> dict[str, Any]:
        return {"type": "message", "message": self.message.to_json()}


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


Event = MessageAdded | ReadMoved | Typing | SignedOut | ThreadDeleted
