"""The email channel's outbound side: claims a due email, writes it from what is unread
now, and hands it to the SMTP server. Retries and backoff are the delivery worker's
(relay/channels/worker.py); an email keeps its Message-ID on every try, so a resend
after a crash is recognised by receivers' duplicate filters."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import quote, unquote, urlsplit

import aiosmtplib

from relay.channels.channel import Failed, Retry, SendResult, Sent, Skipped
from relay.channels.email.compose import (
    digest_email,
    login_email,
    owner_notification,
    refusal_notice,
    resume_link_email,
    visitor_notification,
)
from relay.channels.email.smtp_ingress import BOUNCE_LOCAL_PART
from relay.config import Config
from relay.models import Attached
from relay.store import Store
from relay.store.mail import MailJob, SentJob
from relay.store.outbox_rows import DeliveryKind, OutboxItem
from relay.tokens import Tokens

log = logging.getLogger("porch.mail")

SEND_TIMEOUT = 60.0  # seconds for one SMTP conversation


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


class EmailSender:
    def __init__(self, store: Store, tokens: Tokens, config: Config) -> None:
        self.store = store
        self.tokens = tokens
        self.config = config
        self.server = SmtpServer.from_url(config.smtp_url)

    async def send(self, item: OutboxItem) -> SendResult:
        composed = await self._compose(item)
        if composed is None:  # cancelled: seen already, nothing new, nobody to tell
            return Skipped()
        job, message = composed
        domain = self.config.reply_domain
        # An automatic reply goes with the null sender (RFC 3834 section 3.3): whatever
        # becomes of it, nothing comes back.
        bounces_to = "" if item.kind == DeliveryKind.NOTICE else f"{BOUNCE_LOCAL_PART}@{domain}"
        try:
            await self.server.send(message, bounces_to=bounces_to)
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600:  # permanent: retrying cannot help
                return Failed(f"{error.code} {error.message}")
            return Retry(f"{error.code} {error.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return Retry(f"{type(error).__name__}: {error}")
        return Sent(job.upto_seq)

    async def _compose(self, item: OutboxItem) -> tuple[SentJob, EmailMessage] | None:
        """Claim the email and write it; None if it was cancelled instead."""
        sender = self.config.mail_sender
        domain = self.config.reply_domain
        if item.kind == DeliveryKind.DIGEST:
            digest = await self.store.prepare_digest(
                item, lambda thread: self.tokens.reply_tag(thread, item.recipient)
            )
            if digest is None:
                return None
            return digest, digest_email(
                digest,
                sender=sender,
                reply_domain=domain,
                base_url=self.config.base_url,
                links=self._link,
            )
        if item.kind == DeliveryKind.NOTICE:
            notice = await self.store.prepare_notice(item)
            if notice is None:
                return None
            return notice, refusal_notice(notice, sender=sender, reply_domain=domain)
        if item.kind == DeliveryKind.LOGIN:
            login = await self.store.prepare_login(item)
            if login is None:
                return None
            # Minted now, never stored: the outbox row holds no way into the inbox.
            token = self.tokens.login_token(item.recipient)
            link = f"{self.config.base_url}/inbox/#login={token}"
            return login, login_email(login, sender=sender, reply_domain=domain, link=link)
        assert item.thread is not None
        owner = item.kind == DeliveryKind.OWNER
        answerable = owner or item.kind == DeliveryKind.VISITOR  # a reply address
        tag = self.tokens.reply_tag(item.thread, item.recipient) if answerable else None
        job = await self.store.prepare_mail(item, tag, self.config.clock)
        if job is None:
            return None
        if owner:
            return job, owner_notification(
                job, sender=sender, reply_domain=domain, links=self._link
            )
        if item.kind == DeliveryKind.RESUME:
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
            links=self._link,
        )

    def _link(self, attached: Attached) -> str:
        """A file's download link in an email, as relay/web/services.py makes them for
        the widget and the inbox, but an emailed one: it works for days, not an hour."""
        token = self.tokens.attachment_token(attached.id, emailed=True)
        return f"{self.config.base_url}/v1/attachments/{token}/{quote(attached.name)}"

    def _resume_link(self, job: MailJob, page: str | None) -> str:
        token = self.tokens.resume_token(
            job.thread.visitor, job.site.id, job.item.recipient, job.visitor_epoch
        )
        base = (page or "").partition("#")[0] or job.site.origins[0] + "/"
        return f"{base}#porch={token}"
