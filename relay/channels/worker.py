"""A channel's delivery worker: sends the delivery rows queued on one channel, retries
with backoff, records failures.

Delivery is at least once: a row is marked sent only after the channel handed it over
(the SMTP server took the email), so a crash in between sends it again on restart; a
channel makes that harmless (an email keeps its Message-ID, which receivers' duplicate
filters recognise). A provider that is down only delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from relay.channels.backoff import equal_jitter
from relay.channels.channel import Failed, Outbound, Retry, Sent
from relay.errors import StoreUnavailable
from relay.store import Store
from relay.store.outbox_rows import OutboxItem, later

log = logging.getLogger("porch.deliveries")

RETRY_BASE = 30.0  # seconds before the first retry; doubles each time
RETRY_CAP = 3600.0  # never wait more than an hour between tries
MAX_ATTEMPTS = 30  # ~ a day of tries at the cap: then it is a failure someone must see
IDLE_RECHECK = 60.0  # seconds: look at the outbox even if nothing woke us
STORE_RETRY = 1.0  # seconds between tries while the database is unavailable


class DeliveryWorker:
    def __init__(
        self, store: Store, channel: Outbound, *, send_timeout: float, concurrency: int = 1
    ) -> None:
        self.store = store
        self.channel = channel
        # Deliveries at once. One for channels whose deliveries to a person must keep
        # their order (an email, a chat); more where each goes to its own endpoint (a
        # device's push service), so one that hangs holds nobody else's up.
        self.concurrency = concurrency
        self._sending: dict[int, asyncio.Task[None]] = {}
        # Several relays share a PostgreSQL outbox: a delivery another relay is sending
        # now is not interrupted; one claimed longer ago than any send takes was.
        self.lease = 2 * send_timeout if store.shared else 0.0
        self.wake = asyncio.Event()
        self.retry_base = RETRY_BASE

    async def run(self) -> None:
        while True:
            try:
                await self._run()
            except StoreUnavailable:  # the database restarts: what is queued stays queued
                log.warning("%s deliveries paused: the database is unavailable", self.channel.name)
                await asyncio.sleep(STORE_RETRY)

    async def _run(self) -> None:
        await self.store.requeue_interrupted(self.channel.name, claimed_before=later(-self.lease))
        try:
            while True:
                if self.lease:  # a relay that died mid-send: its claims outlive their lease
                    await self.store.requeue_interrupted(
                        self.channel.name, claimed_before=later(-self.lease)
                    )
                due = await self.store.due_deliveries(self.channel.name)
                due = [item for item in due if item.id not in self._sending]
                if self.concurrency == 1:
                    for item in due:
                        await self._deliver_safely(item)
                else:
                    for item in due[: self.concurrency - len(self._sending)]:
                        self._start(item)
                if due and len(self._sending) < self.concurrency:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), await self._idle_for())
                self.wake.clear()
        finally:  # the relay stops: what was on its way is sent again after the restart
            for task in self._sending.values():
                task.cancel()

    def _start(self, item: OutboxItem) -> None:
        task = asyncio.create_task(self._deliver_safely(item))
        self._sending[item.id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._sending.pop(item.id, None)
            self.wake.set()  # a place is free, and rows may be waiting for it

        task.add_done_callback(done)

    async def _deliver_safely(self, item: OutboxItem) -> None:
        try:
            await self.deliver(item)
        except Exception as error:  # one bad delivery must not stop all the others
            log.exception("delivery %s to %s failed", item.id, item.recipient)
            await self.store.delivery_failed(item, f"{type(error).__name__}: {error}")

    async def _idle_for(self) -> float:
        # While claims may be waiting out their lease, look again once it is over.
        recheck = min(IDLE_RECHECK, self.lease) if self.lease else IDLE_RECHECK
        next_at = await self.store.next_delivery_at(self.channel.name)
        if next_at is None:
            return recheck
        due_in = (datetime.fromisoformat(next_at) - datetime.now(UTC)).total_seconds()
        return min(recheck, max(0.01, due_in))

    async def deliver(self, item: OutboxItem) -> None:
        result = await self.channel.send(item)
        if isinstance(result, Sent):
            await self.store.delivery_sent(item, result.upto_seq)
        elif isinstance(result, Failed):
            await self.store.delivery_failed(item, result.error)
            log.warning("delivery %s to %s refused: %s", item.id, item.recipient, result.error)
        elif isinstance(result, Retry):
            await self._retry(item, result.error, result.after)

    async def _retry(self, item: OutboxItem, error: str, after: float = 0.0) -> None:
        if item.attempts + 1 >= MAX_ATTEMPTS:
            await self.store.delivery_failed(item, f"gave up after {MAX_ATTEMPTS} tries: {error}")
            return
        ceiling = min(RETRY_CAP, self.retry_base * 2**item.attempts)
        delay = equal_jitter(ceiling)
        delay = max(delay, min(after, RETRY_CAP))  # never sooner than asked, within reason
        log.info("delivery %s to %s: %s; retry in %.0f s", item.id, item.recipient, error, delay)
        await self.store.delivery_retry(item, error, delay)
