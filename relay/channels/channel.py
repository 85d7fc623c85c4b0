"""What a channel is to the relay: a way people write in and are written to.

A channel has
- a name, registered as a message's `via` (relay.models.Via);
- an inbound side: its routes (a provider's webhook) and what runs while the relay
  runs (`running()`: a mailbox poller, a listener). They verify and parse, then hand
  each message to relay.channels.accept, which drops duplicates, authorises the
  sender for the thread and posts through the one write path (relay.conversations);
- an outbound side: `send(delivery)`, called by its DeliveryWorker (relay.channels.
  worker) for each delivery row the notification policy queued on it, answering
  Sent, Retry or Failed; retries, backoff and the failure state are the worker's.

Adding a channel is adding a package under relay/channels/ with a class meeting this
protocol, and listing it where the app is built (relay/app.py).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from starlette.routing import BaseRoute

from relay.models import Via
from relay.store.outbox_rows import OutboxItem


@dataclass(frozen=True)
class Sent:
    upto_seq: int | None = None  # the last message it told of: the next one starts after


@dataclass(frozen=True)
class Retry:
    error: str  # a temporary failure: the worker tries again later, with backoff
    after: float = 0.0  # seconds the provider asked us to wait at least


@dataclass(frozen=True)
class Failed:
    error: str  # permanent: retrying cannot help; shown by `porch mail status`


@dataclass(frozen=True)
class Skipped:
    """Claiming found nothing left to say, or nobody to say it to: the row was cancelled."""


SendResult = Sent | Retry | Failed | Skipped


class Outbound(Protocol):
    """What a DeliveryWorker sends through: a channel, or Web Push (relay/push), which
    only delivers."""

    @property
    def name(self) -> str: ...

    async def send(self, delivery: OutboxItem) -> SendResult: ...


class Channel(Protocol):
    name: Via

    def routes(self) -> list[BaseRoute]:
        """HTTP routes of its inbound side (webhooks), and any pages it serves."""
        ...

    def running(self) -> AbstractAsyncContextManager[None]:
        """Its inbound side's listeners and pollers, for as long as the relay runs; a
        listener that cannot start (a port taken) fails the relay's start."""
        ...

    async def send(self, delivery: OutboxItem) -> SendResult:
        """Claim the delivery, write it from what is unread now, and hand it over."""
        ...
