"""The SMTP ingress: an aiosmtpd server, inside the relay's own event loop, that takes
replies addressed to r+TAG@REPLY_DOMAIN, and new conversations addressed to a site's
contact+SITE@REPLY_DOMAIN, and hands them to the pipeline.

Point the reply domain's MX at it (or let a mail server forward to it). It accepts
only our reply addresses, so it cannot be used as a relay.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session

from relay.channels.accept import Outcome
from relay.channels.email.authentication import Envelope as Sender
from relay.channels.email.reading import contact_site_of, tag_of

# Our emails go out with MAIL FROM bounces@REPLY_DOMAIN, so delivery failures come
# back here, where the pipeline recognises them and stops writing to dead addresses.
BOUNCE_LOCAL_PART = "bounces"

log = logging.getLogger("porch.smtp")

# Protocol replies, named as aiosmtpd names them.
S250_OK = "250 OK"
S550_NO_SUCH_USER = "550 5.1.1 No such recipient here"
S451_TRY_LATER = "451 4.7.1 Cannot take this reply now; try again later"
S554_REJECTED = "554 5.6.0 Message not accepted"
# The largest mail taken, by SMTP, IMAP and the webhooks alike: one file as large as a
# site may allow (relay/sites/checks.py MAX_FILE_MB, 25 MB) is 33.3 MB in base64, 34.2 MB
# with its line ends (76 characters + CRLF), which leaves 7 MB of 40 MiB for headers,
# text and a photo or two. aiosmtpd holds a message in memory while it comes in, as
# lines, then joined: about four times its size at the peak (measured: ~150 MB for the
# largest), for each message arriving at once; reading it takes as much again
# (inbound.LARGE_MAIL_BYTES).
MAX_MESSAGE_BYTES = 40 * 1024 * 1024


class Receiver(Protocol):
    """The pipeline, or `porch smtp`'s forwarder to a relay's pipeline."""

    async def receive(
        self,
        raw: bytes,
        *,
        source: str,
        envelope_to: list[str] | None = None,
        envelope: Sender | None = None,
    ) -> Outcome: ...


class ReplyHandler:
    def __init__(self, pipeline: Receiver, reply_domain: str) -> None:
        self.pipeline = pipeline
        self.reply_domain = reply_domain.lower()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        local, _, domain = address.rpartition("@")
        ours = (
            tag_of(address) is not None
            or contact_site_of(address) is not None
            or local.lower() == BOUNCE_LOCAL_PART
        )
        if domain.lower() != self.reply_domain or not ours:
            return S550_NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        return S250_OK

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            return S554_REJECTED
        # Delivered-To tells the pipeline which of our addresses this came in on, as a
        # mail server would: clients that Bcc us leave no trace of it in the headers.
        prefix = "".join(f"Delivered-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos).encode()
        # What this server saw of the sender: SPF checks it, and it is kept with the mail.
        sender = Sender(
            peer_ip=str(session.peer[0]) if isinstance(session.peer, tuple) else "",
            helo=session.host_name or None,
            # aiosmtpd spells the null sender (bounces, auto-replies) "<>"; SPF then
            # checks the HELO name instead (RFC 7208 section 2.4).
            mail_from="" if envelope.mail_from in (None, "<>") else envelope.mail_from,
        )
        outcome = await self.pipeline.receive(
            prefix + raw, source="smtp", envelope_to=list(envelope.rcpt_tos), envelope=sender
        )
        if outcome.temporary:  # the sending server keeps it and tries again later
            return S451_TRY_LATER
        # Accepted or quietly dropped alike: a bounce to a forged sender would be
        # backscatter, and telling a prober what we think of its mail helps it.
        log.debug("smtp from %s: %s", envelope.mail_from, outcome.verdict)
        return S250_OK


async def start_smtp_ingress(
    pipeline: Receiver, reply_domain: str, host: str, port: int, **server: Any
) -> asyncio.Server:
    handler = ReplyHandler(pipeline, reply_domain)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, data_size_limit=MAX_MESSAGE_BYTES, hostname=reply_domain, **server),
        host=host,
        port=port,
    )
