"""What every route shares, built once per app and kept on app.state.services."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import quote

from starlette.requests import HTTPConnection

from relay.answers.finder import Finder
from relay.attachments.blobs import Blobs
from relay.channels.accept import Accept
from relay.channels.apps.channel import MessagingApp
from relay.channels.channel import Channel
from relay.channels.worker import DeliveryWorker
from relay.clock import Clock
from relay.config import Config
from relay.conversations import Conversations
from relay.conversations.bus import Bus
from relay.conversations.files import Files
from relay.conversations.presence import Presence
from relay.limits import RateLimiter
from relay.models import Attached
from relay.push.vapid import VapidKey, installation_key
from relay.store import Store
from relay.tokens import Tokens

MINUTE = 60.0
HOUR = 3600.0


@dataclass
class Limits:
    messages_by_visitor: RateLimiter
    messages_by_ip: RateLimiter
    threads_by_ip: RateLimiter
    links_by_visitor: RateLimiter
    codes_by_visitor: RateLimiter
    logins_by_ip: RateLimiter
    logins_by_email: RateLimiter
    suggestions_by_ip: RateLimiter
    uploads_by_visitor: RateLimiter
    push_by_visitor: RateLimiter
    push_checks_by_ip: RateLimiter

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        return cls(
            messages_by_visitor=RateLimiter(config.visitor_messages_per_minute, MINUTE),
            messages_by_ip=RateLimiter(config.ip_messages_per_minute, MINUTE),
            threads_by_ip=RateLimiter(config.threads_per_ip_per_hour, HOUR),
            # Resume links are emails: a handful an hour is plenty for one person.
            links_by_visitor=RateLimiter(5, HOUR),
            # Codes that open a messaging app: each menu opening asks for one per app.
            codes_by_visitor=RateLimiter(30, HOUR),
            # Sign-in links: enough for a typo and a retry, not for mail-bombing an owner.
            logins_by_ip=RateLimiter(20, HOUR),
            logins_by_email=RateLimiter(5, HOUR),
            # Suggestions while typing: the widget asks at most every 300 ms of typing.
            suggestions_by_ip=RateLimiter(config.suggestions_per_minute, MINUTE),
            uploads_by_visitor=RateLimiter(config.visitor_uploads_per_minute, MINUTE),
            # Subscribing a device looks its push service's name up: a browser does it
            # once, again when its subscription changes; a handful an hour is plenty.
            push_by_visitor=RateLimiter(10, HOUR),
            # Whether a site serves its push worker: the widget asks once per page view
            # where it would offer notifications, and the answer is kept (relay/web/push.py).
            push_checks_by_ip=RateLimiter(60, MINUTE),
        )


@dataclass
class Services:
    config: Config
    store: Store
    tokens: Tokens
    bus: Bus
    limits: Limits
    conversations: Conversations  # the one write path of messages
    accept: Accept  # every channel's inbound step
    channels: dict[str, Channel]  # by name (a message's via)
    apps: dict[str, MessagingApp]  # the messaging apps among them, by kind
    workers: dict[str, DeliveryWorker]  # the channels that can deliver now, by name
    clock: Clock  # business hours and digests (PORCH_CLOCK_START moves it in tests)
    presence: Presence  # which sites have an owner at the inbox
    blobs: Blobs  # the bytes of photos and files
    files: Files  # keeps a file for a conversation, however it came
    answers: Finder  # the owner's answers for what visitors write
    # site → (when it goes stale, on the monotonic clock; its typical reply seconds)
    reply_times: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    vapid: VapidKey | None = None  # the installation's push key, once read (push_key)
    # origin → (fresh until, on the monotonic clock; whether it serves /porch-sw.js):
    # relay/web/push.py keeps it, one entry per registered origin asked about.
    push_workers: dict[str, tuple[float, asyncio.Future[bool]]] = field(default_factory=dict)

    def link(self, attached: Attached) -> str:
        """An attachment's download link (relay/web/attachments.py serves it): signed,
        it works for ATTACHMENT_MAX_AGE; each read of a thread makes new ones."""
        token = self.tokens.attachment_token(attached.id)
        return f"{self.config.base_url}/v1/attachments/{token}/{quote(attached.name)}"

    async def push_key(self) -> VapidKey:
        """The installation's VAPID key pair (relay/push/vapid.py): read, or made, on
        first need and kept; it never changes, and every relay of the database has it."""
        if self.vapid is None:
            self.vapid = await installation_key(self.store)
        return self.vapid


def services(connection: HTTPConnection) -> Services:
    return connection.app.state.services  # type: ignore[no-any-return]


def client_ip(connection: HTTPConnection) -> str:
    # uvicorn already replaced this with X-Forwarded-For for trusted proxies.
    return connection.client.host if connection.client else "unknown"
