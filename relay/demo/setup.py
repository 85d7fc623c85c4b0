"""`porch demo` only: the bakery answers a new conversation by itself, so a first-time
user sees a live reply, the unread badge and the tab title without a second terminal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from relay.conversations import Actor, Conversations
from relay.conversations.bus import Bus
from relay.demo.mailbox import DemoMailbox
from relay.models import Author, Event, MessageAdded, Via
from relay.tasks import background

DEMO_SITE = "demo"
WELCOME = Actor(Author.SYSTEM, Via.WIDGET)
REPLY_DELAY = 2.5  # seconds: long enough to close the panel and see the badge arrive
REPLIES = {
    "en": "Thanks for writing! This is the Porch demo, so this first answer is automatic. "
    "The bakery got your message by email: open /demo/mailbox to answer it from the "
    "mailbox, /inbox to answer from the owner's inbox (the sign-in link is in the "
    'terminal), or run: porch reply {thread} "your text" {flags}',
    "fr": "Merci pour votre message ! Ceci est la démo de Porch : cette première réponse est "
    "automatique. La boulangerie a reçu votre message par e-mail : ouvrez /demo/mailbox "
    "pour y répondre depuis sa messagerie, /inbox pour répondre depuis la boîte de "
    "réception du commerçant (le lien de connexion est dans le terminal), ou lancez : "
    'porch reply {thread} "votre texte" {flags}',
}


async def answer_new_threads(conversations: Conversations, bus: Bus, cli_flags: str) -> None:
    """Reply once to each new demo conversation (idempotent by client_id)."""
    pending: set[asyncio.Task[None]] = set()
    events: asyncio.Queue[Event] = asyncio.Queue()
    with bus.watch_site(DEMO_SITE, events.put_nowait):
        while True:
            event = await events.get()
            if not isinstance(event, MessageAdded) or event.message.author is not Author.VISITOR:
                continue
            thread = await conversations.store.get_thread(event.message.thread)
            if thread is None or thread.owner_read_seq > 0:  # the owner already answered
                continue
            language = "fr" if thread.page and "/fr/" in thread.page else "en"
            body = REPLIES[language].format(thread=thread.id, flags=cli_flags).strip()
            task = asyncio.create_task(_reply_later(conversations, thread.id, body))
            pending.add(task)
            task.add_done_callback(pending.discard)


async def _reply_later(conversations: Conversations, thread: str, body: str) -> None:
    await asyncio.sleep(REPLY_DELAY)  # a person takes a moment, too
    # The relay itself answers, in the widget the visitor wrote from.
    await conversations.post(thread, WELCOME, body, f"demo-welcome-{thread}")


@dataclass(frozen=True)
class Setup:
    cli_flags: str  # what other `porch` commands need to reach this demo
    mailbox: DemoMailbox
    mailbox_port: int  # where the outbox's SMTP lands


@contextlib.asynccontextmanager
async def running(conversations: Conversations, bus: Bus, setup: Setup) -> AsyncIterator[None]:
    sink = await setup.mailbox.start(setup.mailbox_port)
    try:
        async with background(answer_new_threads(conversations, bus, setup.cli_flags), "demo"):
            yield
    finally:
        sink.close()
        await sink.wait_closed()
