"""Web Push as a delivery channel: the push rows notify.py queued are sent here by the
channel's DeliveryWorker (relay/channels/worker.py), with its retries and backoff, like
email. Outbound only: devices are added through the visitor's and the inbox's routes.

What the device shows is the JSON every Porch service worker reads (widget/porch-sw.js,
the inbox's sw.js): {"title", "body", "url", "tag"}; `tag` is the thread, so a newer
notification of a conversation replaces the older on the device, as the `Topic` header
does at the push service for one not yet delivered.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.routing import BaseRoute

from relay.catalogue import text
from relay.channels.channel import Failed, Retry, SendResult, Sent, Skipped
from relay.config import Config
from relay.push.sender import Result, send, topic_for
from relay.push.vapid import VapidKey, installation_key
from relay.store import Store
from relay.store.contacts import PUSH
from relay.store.outbox_rows import DeliveryKind, OutboxItem
from relay.store.push import PushJob

# Seconds a push service keeps a notification for a device that is offline: a phone off
# for a weekend still hears of the customer who wrote (owners); a reply is news for a
# day or two (visitors), then the email has said it.
OWNER_TTL = 4 * 24 * 3600
VISITOR_TTL = 2 * 24 * 3600
# An owner whose phone was told of a message gets the email about it this much later,
# only if the thread is still unread then: opening the notification (or the inbox)
# makes it unneeded, and a phone that was off or muted still has the email behind it.
EMAIL_AFTER_PUSH = 10 * 60
BODY_CHARS = 240  # a notification shows two or three lines; the rest is in the thread
SHOWN = 3  # messages gathered into one push: the last ones


class PushChannel:
    name = PUSH

    def __init__(self, store: Store, config: Config, http: httpx.AsyncClient) -> None:
        self.store = store
        self.config = config
        self.http = http
        self._key: VapidKey | None = None

    def routes(self) -> list[BaseRoute]:
        return []  # devices subscribe through relay/web/push.py and the inbox's API

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        yield

    async def send(self, delivery: OutboxItem) -> SendResult:
        job = await self.store.prepare_push(delivery)
        if job is None:
            return Skipped()
        if self._key is None:
            self._key = await installation_key(self.store)
        owner = delivery.kind == DeliveryKind.OWNER
        outcome = await send(
            self.http,
            job.device,
            self.message(job),
            key=self._key,
            subject=self.config.push_contact,
            ttl=OWNER_TTL if owner else VISITOR_TTL,
            urgency="high" if owner else "normal",  # a customer is waiting
            topic=topic_for(job.thread.id),
            allow=self.config.push_allow,
        )
        if outcome.result is Result.DELIVERED:
            if owner and job.device.owner_email:
                await self.store.postpone_owner_email(
                    job.thread.id, job.device.owner_email, EMAIL_AFTER_PUSH
                )
            return Sent(job.upto_seq)
        if outcome.result is Result.GONE:
            await self.store.push_device_gone(
                delivery, f"the device unsubscribed: {outcome.reason}"
            )
            return Skipped()
        if outcome.result is Result.RETRY:
            return Retry(outcome.reason, float(outcome.retry_after or 0))
        return Failed(outcome.reason)

    def message(self, job: PushJob) -> dict[str, Any]:
        """What the device shows: for an owner, who wrote on which site and a tap opens
        the thread in the inbox; for a visitor, the business's reply and a tap opens the
        page they wrote from, where the widget has their conversation."""
        say = job.language
        lines = [self._line(message.body, len(message.attachments), say) for message in job.new]
        body = "\n".join(lines[-SHOWN:])
        if len(body) > BODY_CHARS:
            body = body[: BODY_CHARS - 1].rstrip() + "…"
        if job.item.kind == DeliveryKind.OWNER:
            who = job.visitor_name or text("server.push.visitor", say)
            title = f"{who} · {job.site.name}"
            url = f"{self.config.base_url}/inbox/#t={job.thread.id}"
        else:
            title = job.site.name
            url = (job.thread.page or "").partition("#")[0] or job.site.origins[0] + "/"
        return {"title": title, "body": body, "url": url, "tag": job.thread.id}

    @staticmethod
    def _line(body: str, files: int, language: str) -> str:
        if body.strip():
            return " ".join(body.split())
        return text("server.push.files", language, count=files)
