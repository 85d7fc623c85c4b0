"""What every route shares, built once per app and kept on app.state.services."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from relay.channels.accept import Accept
from relay.channels.channel import Channel
from relay.channels.worker import DeliveryWorker
from relay.clock import Clock
from relay.config import Config
from relay.conversations import Conversations
from relay.conversations.bus import Bus
from relay.conversations.presence import Presence
from relay.limits import RateLimiter
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
    logins_by_ip: RateLimiter
    logins_by_email: RateLimiter

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        return cls(
            messages_by_visitor=RateLimiter(config.visitor_messages_per_minute, MINUTE),
            messages_by_ip=RateLimiter(config.ip_messages_per_minute, MINUTE),
            threads_by_ip=RateLimiter(config.threads_per_ip_per_hour, HOUR),
            # Resume links are emails: a handful an hour is plenty for one person.
            links_by_visitor=RateLimiter(5, HOUR),
            # Sign-in links: enough for a typo and a retry, not for mail-bombing an owner.
            logins_by_ip=RateLimiter(20, HOUR),
            logins_by_email=RateLimiter(5, HOUR),
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
    workers: dict[str, DeliveryWorker]  # the channels that can deliver now, by name
    clock: Clock  # business hours and digests (PORCH_CLOCK_START moves it in tests)
    presence: Presence  # which sites have an owner at the inbox
    # site → (when it goes stale, on the monotonic clock; its typical reply seconds)
    reply_times: dict[str, tuple[float, float | None]] = field(default_factory=dict)


def services(connection: HTTPConnection) -> Services:
    return connection.app.state.services  # type: ignore[no-any-return]


def client_ip(connection: HTTPConnection) -> str:
    # uvicorn already replaced this with X-Forwarded-For for trusted proxies.
    return connection.client.host if connection.client else "unknown"
