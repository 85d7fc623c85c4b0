"""`porch demo` only: the owner's mailbox, without any mail provider.

The relay's outbox sends real SMTP to a sink in this process; /demo/mailbox shows what
arrived, as sent, and its reply form makes what a mail client makes (new text on top,
the original quoted below) and sends it over real SMTP to the relay's own ingress.
So the demo runs the whole loop: widget → outbox → mailbox → reply → pipeline → widget.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import html
from collections import deque
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from relay.channels.email.compose import mailbox

KEEP = 50  # emails the demo mailbox remembers
OWNER = "owner@dupont.example"


class DemoMailbox:
    def __init__(self, ingress_port: int) -> None:
        self.mails: deque[EmailMessage] = deque(maxlen=KEEP)
        self.ingress_port = ingress_port

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        if isinstance(raw, bytes):
            message = email.message_from_bytes(raw, policy=email.policy.default)
            if isinstance(message, EmailMessage):
                self.mails.appendleft(message)
        return "250 OK"

    async def start(self, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: SMTP(self), host="127.0.0.1", port=port)

    async def page(self, request: Request) -> Response:
        items = [self._render(i, mail) for i, mail in enumerate(self.mails)]
        body = "".join(items) or (
            "<p>No email yet. Write in the chat bubble on the "
            '<a href="/">bakery site</a>: the owner\'s notification lands here.</p>'
        )
        return HTMLResponse(PAGE.format(body=body))

    async def reply(self, request: Request) -> Response:
        # Only this page may post here: another site open in the same browser must not
        # be able to answer as the owner (a form POST carries no CORS preflight).
        if request.headers.get("origin") not in (
            None,
            f"{request.url.scheme}://{request.url.netloc}",
        ):
            return Response("cross-origin form refused", status_code=403)
        form = await request.form()
        index, text = str(form.get("mail", "")), str(form.get("text", "")).strip()
        if index not in {str(i) for i in range(len(self.mails))} or not text:
            return RedirectResponse("/demo/mailbox", status_code=303)
        original = self.mails[int(index)]
        await aiosmtplib.send(
            client_reply(original, text), hostname="127.0.0.1", port=self.ingress_port
        )
        return RedirectResponse("/demo/mailbox?sent=1", status_code=303)

    def _render(self, index: int, mail: EmailMessage) -> str:
        part = mail.get_body(("plain",))
        text = part.get_content() if part is not None else ""
        can_reply = mail["Reply-To"] is not None
        form = (
            (
                f'<form method="post" action="/demo/mailbox/reply"><input type="hidden" '
                f'name="mail" value="{index}"><label>Reply as the owner<br><textarea name="text" '
                'rows="3" required></textarea></label><br><button type="submit">Send reply'
                "</button></form>"
            )
            if can_reply
            else ""
        )
        headers = "".join(
            f"<dt>{name}</dt><dd>{html.escape(str(mail[name]))}</dd>"
            for name in ("From", "To", "Reply-To", "Subject", "Date")
            if mail[name] is not None
        )
        return f"<article><dl>{headers}</dl><pre>{html.escape(text)}</pre>{form}</article>"

    def routes(self) -> list[Route]:
        return [
            Route("/demo/mailbox", self.page, methods=["GET"]),
            Route("/demo/mailbox/reply", self.reply, methods=["POST"]),
        ]


def client_reply(original: EmailMessage, text: str) -> EmailMessage:
    """What a mail client sends when the owner presses Reply and types `text`."""
    body = original.get_body(("plain",))
    quoted = "\n".join(f"> {line}" for line in (body.get_content() if body else "").splitlines())
    reply = EmailMessage()
    reply["From"] = mailbox(parseaddr(str(original["To"]))[1] or OWNER, "Élise Dupont")
    reply["To"] = original["Reply-To"].addresses
    reply["Subject"] = "Re: " + str(original["Subject"])
    reply["Message-ID"] = make_msgid(domain="dupont.example")
    reply["In-Reply-To"] = str(original["Message-ID"])
    reply["References"] = f"{original['References'] or ''} {original['Message-ID']}".strip()
    when = str(original["Date"])
    reply.set_content(f"{text}\n\nOn {when}, {original['From']} wrote:\n{quoted}\n")
    return reply


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Owner's mailbox (demo)</title><link rel="stylesheet" href="/site.css"></head>
<body><main class="mailbox"><h1>The owner's mailbox (demo)</h1>
<p>Every visitor message reaches the owner by email. Reply here as from any mail client:
the reply travels as a real email through Porch's SMTP ingress, and only your new text
appears in the visitor's chat. <a href="/demo/mailbox">Refresh</a> · <a href="/">Bakery site</a></p>
{body}</main></body></html>"""
