"""The outbox worker: sends queued emails, retries with backoff, records failures.

Delivery is at least once: an email is marked sent only after the SMTP server took
it, so a crash in between sends it again on restart, with the same Message-ID
(receivers' duplicate filters recognise it). A mail server that is down only delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from relay.channels.email.compose import (
    digest_email,
    login_email,
    owner_notification,
    resume_link_email,
    visitor_notification,
)
from relay.channels.email.smtp_ingress import BOUNCE_LOCAL_PART
from relay.config import Config
from relay.errors import StoreUnavailable
from relay.store import Store
from relay.store.mail import MailJob, SentJob
from relay.store.outbox_rows import MailKind, OutboxItem, later
from relay.tokens import Tokens

log = logging.getLogger("porch.mail")

RETRY_BASE = 30.0  # seconds before the first retry; doubles each time
RETRY_CAP = 3600.0  # never wait more than an hour between tries
MAX_ATTEMPTS = 30  # ~ a day of tries at the cap: then it is a failure someone must see
IDLE_RECHECK = 60.0  # seconds: look at the outbox even if nothing woke us
SEND_TIMEOUT = 60.0  # seconds for one SMTP conversation
STORE_RETRY = 1.0  # seconds between tries while the database is unavailable


@dataclass(frozen=True)
class SmtpServer:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool  # smtps://: TLS from the first byte
    # smtp://: STARTTLS whenever the server offers it (aiosmtplib's default)

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        implicit_tls = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname or "localhost",
            port=parts.port or (465 if implicit_tls else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit_tls,
        )

    async def send(self, message: EmailMessage, *, bounces_to: str) -> None:
        await aiosmtplib.send(
            message,
            sender=bounces_to,  # the envelope sender: where delivery failures go
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            timeout=SEND_TIMEOUT,
        )


class OutboxWorker:
    def __init__(self, store: Store, tokens: Tokens, config: Config) -> None:
        self.store = store
        self.tokens = tokens
        self.config = config
        self.server = SmtpServer.from_url(config.smtp_url)
        self.wake = asyncio.Event()
        self.retry_base = RETRY_BASE

    async def run(self) -> None:
        while True:
            try:
                await self._run()
            except StoreUnavailable:  # the database restarts: what is queued stays queued
                log.warning("outbox paused: the database is unavailable")
                await asyncio.sleep(STORE_RETRY)

    async def _run(self) -> None:
        # Several relays share a PostgreSQL outbox: an email another relay is sending
        # now is not interrupted; one claimed longer ago than any send takes was.
        lease = 2 * SEND_TIMEOUT if self.store.shared else 0.0
        await self.store.requeue_interrupted(claimed_before=later(-lease))
        while True:
            if lease and random.random() < 1 / 64:  # now and then, not each time round
                await self.store.requeue_interrupted(claimed_before=later(-lease))
            due = await self.store.due_mail()
            for item in due:
                try:
                    await self.deliver(item)
                except Exception as error:  # one bad email must not stop all the others
                    log.exception("mail %s to %s could not be sent", item.id, item.recipient)
                    await self.store.mail_failed(item, f"{type(error).__name__}: {error}")
            if due:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), await self._idle_for())
            self.wake.clear()

    async def _idle_for(self) -> float:
        next_at = await self.store.next_mail_at()
        if next_at is None:
            return IDLE_RECHECK
        due_in = (datetime.fromisoformat(next_at) - datetime.now(UTC)).total_seconds()
        return min(IDLE_RECHECK, max(0.01, due_in))

    async def deliver(self, item: OutboxItem) -> None:
        composed = await self._compose(item)
        if composed is None:  # cancelled: seen already, nothing new, nobody to tell
            return
        job, message = composed
        domain = self.config.reply_domain
        try:
            await self.server.send(message, bounces_to=f"{BOUNCE_LOCAL_PART}@{domain}")
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600:  # permanent: retrying cannot help
                await self.store.mail_failed(item, f"{error.code} {error.message}")
                log.warning("mail %s to %s refused: %s", item.id, item.recipient, error)
                return
            await self._retry(item, f"{error.code} {error.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            await self._retry(item, f"{type(error).__name__}: {error}")
        else:
            await self.store.mail_sent(job)

    async def _compose(self, item: OutboxItem) -> tuple[SentJob, EmailMessage] | None:
        """Claim the email and write it; None if it was cancelled instead."""
        sender = self.config.mail_sender
        domain = self.config.reply_domain
        if item.kind == MailKind.DIGEST:
            digest = await self.store.prepare_digest(
                item, lambda thread: self.tokens.reply_tag(thread, item.recipient)
            )
            if digest is None:
                return None
            return digest, digest_email(
                digest, sender=sender, reply_domain=domain, base_url=self.config.base_url
            )
        if item.kind == MailKind.LOGIN:
            login = await self.store.prepare_login(item)
            if login is None:
                return None
            # Minted now, never stored: the outbox row holds no way into the inbox.
            token = self.tokens.login_token(item.recipient)
            link = f"{self.config.base_url}/inbox/#login={token}"
            return login, login_email(login, sender=sender, reply_domain=domain, link=link)
        assert item.thread is not None
        owner = item.kind == MailKind.OWNER
        tag = self.tokens.reply_tag(item.thread, item.recipient) if owner else None
        job = await self.store.prepare_mail(item, tag)
        if job is None:
            return None
        if owner:
            return job, owner_notification(job, sender=sender, reply_domain=domain)
        if item.kind == MailKind.RESUME:
            link = self._resume_link(job, job.page)
            return job, resume_link_email(job, sender=sender, reply_domain=domain, link=link)
        token = self.tokens.unsubscribe_token(item.recipient, job.site.id)
        url = f"{self.config.base_url}/v1/unsubscribe/{token}"
        # The way back is a resume link: it opens the conversation in whatever
        # browser reads the email, and confirms the address.
        return job, visitor_notification(
            job,
            sender=sender,
            reply_domain=domain,
            unsubscribe_url=url,
            link=self._resume_link(job, job.thread.page),
        )

    def _resume_link(self, job: MailJob, page: str | None) -> str:
        token = self.tokens.resume_token(
            job.thread.visitor, job.site.id, job.item.recipient, job.visitor_epoch
        )
        base = (page or "").partition("#")[0] or job.site.origins[0] + "/"
        return f"{base}#porch={token}"

    async def _retry(self, item: OutboxItem, error: str) -> None:
        if item.attempts + 1 >= MAX_ATTEMPTS:
            await self.store.mail_failed(item, f"gave up after {MAX_ATTEMPTS} tries: {error}")
            return
        ceiling = min(RETRY_CAP, self.retry_base * 2**item.attempts)
        delay = ceiling / 2 + random.random() * ceiling / 2  # jitter: no thundering herd
        log.info("mail %s to %s: %s; retry in %.0f s", item.id, item.recipient, error, delay)
        await self.store.mail_retry(item, error, delay)
