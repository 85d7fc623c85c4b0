"""Email: notifications to owners (and unseen replies to visitors) out, owners' replies in.

Inbound: an SMTP listener, an IMAP mailbox or a provider's webhook hands raw mail to the
pipeline (inbound.py), which reads it and proves its thread by the reply tag, then
hands it to the channel-agnostic accept step. Outbound: EmailSender (outbox.py) writes
each delivery row from what is unread when it leaves.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from relay.models import Via

# The channel's parts are imported where they are used: importing this package is also
# how `porch mail inspect` reaches reading.py, and it needs neither SMTP nor IMAP nor the
# store (tests/test_cli_startup.py).
if TYPE_CHECKING:
    import asyncio

    from starlette.routing import BaseRoute

    from relay.channels.accept import Accept
    from relay.channels.channel import SendResult
    from relay.config import Config
    from relay.store import Store
    from relay.store.outbox_rows import OutboxItem
    from relay.tokens import Tokens

__all__ = ["EmailChannel"]


class EmailChannel:
    name = Via.EMAIL

    def __init__(self, store: Store, tokens: Tokens, config: Config, accept: Accept) -> None:
        from relay.channels.email.inbound import Pipeline
        from relay.channels.email.outbox import EmailSender
        from relay.channels.email.unsubscribe import Unsubscribe
        from relay.channels.email.webhooks import Webhooks

        self.config = config
        self.pipeline = Pipeline(store, tokens, accept, config)
        # None when no SMTP server is configured: nothing is queued on this channel then.
        self.sender = EmailSender(store, tokens, config) if config.mail_enabled else None
        self._webhooks = Webhooks(config, self.pipeline)
        self._unsubscribe = Unsubscribe(store, tokens)

    def routes(self) -> list[BaseRoute]:
        return [*self._unsubscribe.routes(), *self._webhooks.routes()]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        from relay.channels.email.imap import poll_mailbox
        from relay.channels.email.smtp_ingress import start_smtp_ingress
        from relay.tasks import background

        async with contextlib.AsyncExitStack() as stack:
            if self.config.imap_url:
                await stack.enter_async_context(
                    background(poll_mailbox(self.pipeline, self.config.imap_url), "imap")
                )
            if self.config.smtp_port:
                ingress = await start_smtp_ingress(
                    self.pipeline, self.config.reply_domain, self.config.host, self.config.smtp_port
                )
                stack.push_async_callback(_close, ingress)
            yield

    async def send(self, delivery: OutboxItem) -> SendResult:
        assert self.sender is not None, "deliveries are queued only when mail is enabled"
        return await self.sender.send(delivery)


async def _close(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()
