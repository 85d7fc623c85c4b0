"""One messaging app as a channel (relay.channels.channel), the same way for each app:
its Provider (telegram.py, whatsapp.py, messenger.py) knows the app's formats, this
module what Porch does with them.

Inbound: a verified webhook's messages are handled one by one before we answer 200, so
an app that gets no answer (a relay killed mid-way) delivers again, and the duplicate
check (channel, the app's id) makes that harmless; it comes before any download. A
chat bound to a thread writes in it; a new chat starts a visitor and a thread; a code
from "continue in the app" binds the chat to the visitor's widget thread. Photos and
files are fetched (relay.channels.apps.media) and handed to Accept with the text; one
that cannot be had is a note in the thread, never a silent loss.

Outbound: an owner's reply to a customer who last wrote from this app is queued on it
(relay.conversations.notify); send() writes each new reply to the chat, its text (long
ones in pieces) then each of its files, and records each piece the app took, so a retry
never sends it twice. Past the app's reply window it fails at once, with why; an app
that takes a person's reply for longer (Messenger: 7 days) gets only the owner's then.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import httpx
from starlette.routing import BaseRoute

from relay.catalogue import text
from relay.channels.accept import Accept, Inbound, Outcome, Received, Verdict
from relay.channels.apps import media
from relay.channels.apps.provider import (
    DAY,
    MB,
    Incoming,
    Media,
    MediaTooLarge,
    Outgoing,
    Provider,
    ProviderError,
    Receipt,
    split_text,
)
from relay.channels.channel import Failed, Retry, SendResult, Sent, Skipped
from relay.clock import Clock, parse_instant
from relay.config import Config
from relay.conversations import Actor, Conversations
from relay.models import Attached, Author, Message, Started
from relay.sites.settings import LANGUAGE
from relay.store import Store
from relay.store.chats import AppChannel, ChatDelivery, insert_chat
from relay.store.contacts import chat_recipient
from relay.store.outbox_rows import DeliveryKind, OutboxItem
from relay.store.rows import Db

log = logging.getLogger("porch.apps")

T = TypeVar("T")
Piece = str | Attached  # of a reply: a text, or one of its files


class ChatTaken(Exception):
    """Another message of the same new chat started its thread first."""


class MessagingApp:
    def __init__(
        self,
        provider: Provider,
        store: Store,
        conversations: Conversations,
        accept: Accept,
        config: Config,
        clock: Clock,
        http: httpx.AsyncClient,
    ) -> None:
        self.provider = provider
        self.name = provider.kind
        self.store = store
        self.conversations = conversations
        self.accept = accept
        self.config = config
        self.clock = clock  # the reply window is judged on it (PORCH_CLOCK_START in tests)
        self.http = http

    def routes(self) -> list[BaseRoute]:
        return []  # every app's webhook is one route: relay.channels.apps.webhook

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        yield  # apps push to our webhook: nothing to poll

    # -- inbound ------------------------------------------------------------------

    async def receive(self, channel: AppChannel, event: Incoming | Receipt) -> Outcome:
        if isinstance(event, Receipt):
            await self.store.chat_receipt(channel.id, event.external_id, event.status, event.error)
            return Outcome(Verdict.POSTED)
        # Apps number messages per account (Telegram's update_id counts per bot): two
        # sites' bots may deliver the same id, so it is the channel's.
        event = dataclasses.replace(event, external_id=f"{channel.id}:{event.external_id}")
        if await self.accept.seen(self.name, event.external_id):
            return Outcome(Verdict.DUPLICATE)
        outcome = await self._incoming(channel, event)
        await self.accept.record(self.name, event.external_id, outcome)
        log.info("%s %s: %s", self.name.value, channel.id, outcome.verdict.value)
        return outcome

    async def _incoming(self, channel: AppChannel, event: Incoming) -> Outcome:
        if event.code is not None:
            thread = await self.store.bind_chat(channel.id, event.address, event.code, event.name)
            if thread is not None:
                return await self._linked(channel, event, thread)
        if event.command_only:
            return Outcome(Verdict.IGNORED)
        files, notes = await self._fetch(channel, event)
        try:
            return await self._write(channel, event, files, notes)
        finally:  # Accept removes what it was given; this, what it never was
            for received in files:
                await asyncio.to_thread(received.path.unlink, missing_ok=True)

    async def _write(
        self, channel: AppChannel, event: Incoming, files: list[Received], notes: list[str]
    ) -> Outcome:
        body = await self._body(channel, event, notes)
        if not body and not files:
            return Outcome(Verdict.EMPTY)
        chat = await self.store.chat(channel.id, event.address)
        if chat is None:
            try:
                started = await self._start(
                    channel, event, body or await self._sent(channel, event)
                )
            except ChatTaken:  # its first message, delivered twice at once: write in it
                chat = await self.store.chat(channel.id, event.address)
                assert chat is not None
            else:
                if not files:
                    return Outcome(Verdict.POSTED, started.thread.id, started.message)
                # A thread starts with a text: the files follow in a message of their own.
                return await self._post(channel, event, started.thread.id, _files(event), "", files)
        await self.store.chat_heard(channel.id, event.address, event.name)
        if files and await self.store.has_message(chat.thread, self._client_id(event.external_id)):
            # This message started the chat's thread on an earlier delivery whose files
            # did not make it: they follow it now, as they would have then.
            return await self._post(channel, event, chat.thread, _files(event), "", files)
        return await self._post(channel, event, chat.thread, event.external_id, body, files)

    async def _post(
        self,
        channel: AppChannel,
        event: Incoming,
        thread: str,
        external_id: str,
        body: str,
        files: list[Received],
    ) -> Outcome:
        sender = chat_recipient(channel.id, event.address)
        message = Inbound(
            self.name, external_id, thread, Author.VISITOR, sender, "", body, tuple(files)
        )
        return await self.accept.post(message)

    async def _start(self, channel: AppChannel, event: Incoming, body: str) -> Started:
        def bind(db: Db, started: Started) -> None:
            if not insert_chat(
                db, channel.id, event.address, started.visitor, started.thread.id, event.name
            ):
                raise ChatTaken()

        return await self.conversations.start(
            channel.site,
            body=body,
            client_id=self._client_id(event.external_id),
            name=event.name,
            page=None,
            via=self.name,
            then=bind,
        )

    async def _linked(self, channel: AppChannel, event: Incoming, thread: str) -> Outcome:
        """The chat now continues `thread`: say so there, which also confirms it in the
        app (the relay's note is sent to the chat)."""
        language = await self._language(channel, thread)
        note = text("server.chat.linked", language, app=self.provider.label)
        message, _ = await self.conversations.post(
            thread, Actor(Author.SYSTEM, self.name), note, self._client_id(event.external_id)
        )
        # A message that carried the code (WhatsApp's prefilled text) is not posted.
        return Outcome(Verdict.LINKED, thread, message)

    async def _body(self, channel: AppChannel, event: Incoming, notes: list[str]) -> str:
        """The text, a note for what came that Porch does not take (a voice message…),
        in the site's language, and `notes` on the files it could not fetch: never
        dropped without a word."""
        parts = [event.text.strip()] if event.text.strip() else []
        if event.kinds:
            language = await self._site_language(channel)
            parts += [self._note(kind, language) for kind in event.kinds]
        return "\n".join([*parts, *notes])[: self.config.max_body_chars]

    async def _sent(self, channel: AppChannel, event: Incoming) -> str:
        """What a new chat's thread opens with when its first message is only files."""
        language = await self._site_language(channel)
        what = text(f"server.chat.kind.{event.media[0].kind}", language)
        return text("server.chat.sent", language, what=what, app=self.provider.label)

    def _note(self, kind: str, language: str | None) -> str:
        what = text(f"server.chat.kind.{kind}", language)
        return text("server.chat.note", language, what=what, app=self.provider.label)

    async def _site_language(self, channel: AppChannel) -> str | None:
        site = await self.store.get_site(channel.site)
        return LANGUAGE.of(site) if site else None

    async def _fetch(
        self, channel: AppChannel, event: Incoming
    ) -> tuple[list[Received], list[str]]:
        """Each photo and file of the message in a scratch file, for Accept; a note for
        each one that is over the limit or could not be had (the app keeps it)."""
        files: list[Received] = []
        notes: list[str] = []
        if not event.media:
            return files, notes
        most = media.cap(await self.accept.files.limit(channel.site), self.provider.download_limit)
        language = await self._site_language(channel)
        for item in event.media:
            try:
                files.append(Received(item.name, await self._download(channel, item, most)))
            except MediaTooLarge:
                what = text(f"server.chat.kind.{item.kind}", language)
                label = self.provider.label
                notes.append(
                    text("server.chat.too_large", language, what=what, app=label, mb=most // MB)
                )
            except ProviderError as error:
                log.info(
                    "%s %s: a %s not fetched: %s", self.name.value, channel.id, item.kind, error
                )
                notes.append(self._note(item.kind, language))
        return files, notes

    async def _download(self, channel: AppChannel, item: Media, most: int) -> Path:
        """`item` in a new scratch file; each call to the app within the send timeout."""
        if item.size is not None and item.size > most:
            raise MediaTooLarge()
        source = await self._within(self.provider.locate(self.http, channel, item))
        scratch = await self.accept.files.scratch()
        try:
            label = self.provider.label
            await self._within(media.download(self.http, source, scratch, most, label))
        except BaseException:
            await asyncio.to_thread(scratch.unlink, missing_ok=True)
            raise
        return scratch

    async def _language(self, channel: AppChannel, thread: str) -> str | None:
        found = await self.store.visitor_language(thread)
        if found:
            return found
        site = await self.store.get_site(channel.site)
        return LANGUAGE.of(site) if site else None

    def _client_id(self, external_id: str) -> str:
        digest = hashlib.sha256(external_id.encode()).hexdigest()[:40]
        return f"{self.name.value}.{digest}"

    # -- outbound -----------------------------------------------------------------

    async def send(self, delivery: OutboxItem) -> SendResult:
        job = await self.store.prepare_chat_delivery(delivery)
        if job is None:
            return Skipped()
        if delivery.kind == DeliveryKind.TEMPLATE:
            return await self._send_template(job)
        since = (self.clock.now() - parse_instant(job.chat.last_inbound_at)).total_seconds()
        late = self.provider.window is not None and since > self.provider.window
        closed = self._window_closed(since)
        if closed:
            return Failed(closed)
        if late and not any(reply.author == Author.OWNER for reply in job.replies):
            return Failed(self._people_only(since))
        upto = None
        skip = job.pieces_sent
        for reply in job.replies:
            if late and reply.author != Author.OWNER:
                # The relay's own note (an automatic answer, a notice) is no person's
                # reply: the app's late tag is not for it. Passed over, not sent.
                upto, skip = reply.seq, 0
                continue
            pieces = self._pieces(reply)
            try:
                last_id = None
                for done, piece in enumerate(pieces[skip:], start=skip + 1):
                    last_id = await self._send_piece(job, piece, late)
                    if done < len(pieces):  # a retry must not send this piece again
                        await self.store.chat_pieces(delivery, reply.seq, done)
            except ProviderError as error:
                if error.retry:
                    return Retry(error.reason, error.after)
                return Failed(error.reason)
            # Sent: a retry of this delivery starts after it.
            await self.store.chat_progress(delivery, reply.seq, last_id)
            upto, skip = reply.seq, 0
        return Sent(upto)

    def _pieces(self, reply: Message) -> list[Piece]:
        """What the chat gets of a reply, in order: its text, cut to the app's limit,
        then each file."""
        return [*split_text(reply.body, self.provider.text_limit), *reply.attachments]

    async def _send_piece(self, job: ChatDelivery, piece: Piece, late: bool) -> str | None:
        address, channel = job.chat.address, job.channel
        if isinstance(piece, str):
            return await self._within(
                self.provider.send_text(self.http, channel, address, piece, late=late)
            )
        file = await self._outgoing(piece)
        if file is None:
            return None
        return await self._within(
            self.provider.send_file(self.http, channel, address, file, late=late)
        )

    async def _outgoing(self, attached: Attached) -> Outgoing | None:
        """The file's blob, None when it is no longer kept (its conversation erased or
        purged meanwhile): there is nothing left to send."""
        row = await self.store.attachment(attached.id)
        path = await self.accept.files.path(row.digest) if row else None
        if row is None or path is None:
            log.warning("%s: file %s is no longer kept: not sent", self.name.value, attached.id)
            return None
        return Outgoing(row.name, row.type, row.size, path)

    async def _send_template(self, job: ChatDelivery) -> SendResult:
        """The approved template the owner chose to send outside the window: it asks
        the customer to write again, which opens the window for the owner's reply."""
        language = job.language or LANGUAGE.of(job.site) or "en"
        try:
            sent_id = await self._within(
                self.provider.send_template(self.http, job.channel, job.chat.address, language)
            )
        except ProviderError as error:
            return Retry(error.reason, error.after) if error.retry else Failed(error.reason)
        await self.store.chat_progress(job.item, None, sent_id)
        return Sent()

    async def _within(self, call: Awaitable[T]) -> T:
        """One call to the app, over in PORCH_APP_SEND_TIMEOUT whatever httpx's per-phase
        timeouts allow (a slow drip): each piece renews the delivery's claim, so on a
        shared database no other relay takes it up while this one still sends (a file's
        upload and message are one piece, one call)."""
        seconds = self.config.app_send_timeout
        try:
            async with asyncio.timeout(seconds):
                return await call
        except TimeoutError:
            reason = f"{self.provider.label} did not answer in time ({seconds} s)"
            raise ProviderError(reason, retry=True) from None

    def _window_closed(self, since: float) -> str | None:
        """Why nothing may go `since` seconds after the customer's last message, on the
        relay's clock (the app would refuse it); None while something may."""
        provider = self.provider
        window = provider.human_window or provider.window
        if window is None or since <= window:
            return None
        label, hours = provider.label, since / 3600
        if provider.templates:
            return (
                f"outside {label}'s 24-hour window: the customer last wrote {hours:.0f} hours"
                " ago; only an approved template may be sent"
            )
        return (
            f"outside {label}'s reply window: it takes replies for {_days(window)} after the"
            f" customer's last message, and they last wrote {_ago(since)} ago; nothing can"
            " reach them there until they write again"
        )

    def _people_only(self, since: float) -> str:
        label, window = self.provider.label, self.provider.window or 0.0
        return (
            f"the customer last wrote {_ago(since)} ago: after {window / 3600:.0f} hours"
            f" {label} takes only a person's reply, not the relay's automatic ones"
        )


def _days(seconds: float) -> str:
    days = round(seconds / DAY)
    return "1 day" if days == 1 else f"{days} days"


def _ago(seconds: float) -> str:
    """How long ago, in the unit a person would say it."""
    return f"{seconds / 3600:.0f} hours" if seconds < 2 * DAY else _days(seconds)


def _files(event: Incoming) -> str:
    """The provider id under which a new chat's first files are posted (its text started
    the thread under the event's own)."""
    return f"{event.external_id}:files"
