"""`porch demo` only: the owner's mailbox, without any mail provider.

The relay's outbox sends real SMTP to a sink in this process; /demo/mailbox shows what
arrived, as sent, and its reply form makes what a mail client makes (new text on top,
the original quoted below) and sends it over real SMTP to the relay's own ingress.
So the demo runs the whole loop: widget → outbox → mailbox → reply → pipeline → widget.

The page is server-rendered HTML and one stylesheet (/demo/mailbox.css) under a CSP
that allows nothing inline and no script at all. Its words are the catalogue's
"server.mailbox." keys (kept out of the widget's catalogue like every "server." key),
in the reader's language: see page_language.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import html
import itertools
import re
from collections import deque
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr, parsedate_to_datetime
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from relay import catalogue
from relay.channels.email.compose import mailbox
from relay.channels.email.reading import REPLY_MARKERS
from relay.web.widget import CONTENT_TYPES, Asset

KEEP = 50  # emails the demo mailbox remembers
OWNER = "owner@dupont.example"
PAGE_PATH = "/demo/mailbox"
STYLESHEET = Path(__file__).resolve().parent / "mailbox.css"
HEADERS = {
    # The page is HTML, this stylesheet and the inbox's logo: nothing inline, no script.
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    # Sign-in and resume links shown here carry tokens: never in a Referer.
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}
# The demo site's page in each language (site/index.html, site/fr/index.html).
SITE_PAGES = {"en": "/", "fr": "/fr/"}
# Links in a plain-text email, made clickable (a sign-in link opens the inbox from
# here). A link does not end in the sentence's punctuation.
LINK = re.compile(r"https?://[^\s<>\"']*[^\s<>\"'.,;:!?)\]]")


class DemoMailbox:
    def __init__(self, ingress_port: int) -> None:
        # Each email with a number of its own: the reply form names it by that, so an
        # email arriving between showing the page and sending the reply changes nothing.
        self.mails: deque[tuple[int, EmailMessage]] = deque(maxlen=KEEP)
        self.numbers = itertools.count(1)
        self.ingress_port = ingress_port
        self.stylesheet = Asset.of(STYLESHEET.read_bytes(), CONTENT_TYPES[".css"])

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        if isinstance(raw, bytes):
            message = email.message_from_bytes(raw, policy=email.policy.default)
            if isinstance(message, EmailMessage):
                self.mails.appendleft((next(self.numbers), message))
        return "250 OK"

    async def start(self, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: SMTP(self), host="127.0.0.1", port=port)

    async def page(self, request: Request) -> Response:
        shown = request.query_params
        notice = "sent" if "sent" in shown else "not_sent" if "unsent" in shown else None
        page = render_page(list(self.mails), page_language(request), notice)
        return HTMLResponse(page, headers=HEADERS)

    async def style(self, request: Request) -> Response:
        response = self.stylesheet.response(request, "no-cache")  # revalidated by ETag
        response.headers.update(HEADERS)
        return response

    async def reply(self, request: Request) -> Response:
        # Only this page may post here: another site open in the same browser must not
        # be able to answer as the owner (a form POST carries no CORS preflight).
        if request.headers.get("origin") not in (
            None,
            f"{request.url.scheme}://{request.url.netloc}",
        ):
            return Response("cross-origin form refused", status_code=403)
        form = await request.form()
        number, text = str(form.get("mail", "")), str(form.get("text", "")).strip()
        language = str(form.get("lang", ""))
        keep = {"lang": language} if language in catalogue.LANGUAGES else {}
        original = next((m for n, m in self.mails if str(n) == number), None)
        if original is None or original["Reply-To"] is None or not text:
            return RedirectResponse(page_url(**keep, unsent="1"), status_code=303)
        await aiosmtplib.send(
            client_reply(original, text), hostname="127.0.0.1", port=self.ingress_port
        )
        return RedirectResponse(page_url(**keep, sent="1"), status_code=303)

    def routes(self) -> list[Route]:
        return [
            Route(PAGE_PATH, self.page, methods=["GET"]),
            Route("/demo/mailbox.css", self.style, methods=["GET"]),
            Route(f"{PAGE_PATH}/reply", self.reply, methods=["POST"]),
        ]


def page_language(request: Request) -> str:
    """?lang= (the page's own language links), else the first of the browser's languages
    that the catalogue has, else English. Not the demo site's language setting: the demo
    site is English and French at once (/ and /fr/), and whoever opens this page is the
    person trying Porch, whose browser says what they read."""
    chosen = request.query_params.get("lang")
    if chosen in catalogue.LANGUAGES:
        return chosen
    return preferred_language(request.headers.get("accept-language", ""))


def preferred_language(header: str) -> str:
    """The catalogue language an Accept-Language header ranks first (RFC 9110 12.5.4:
    by q, then by order; q=0 means "not this one")."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _, parameters = item.partition(";")
        quality = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                continue
        primary = tag.strip().partition("-")[0].lower()
        if 0 < quality <= 1 and primary in catalogue.LANGUAGES:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else catalogue.DEFAULT_LANGUAGE


def page_url(**query: str) -> str:
    return f"{PAGE_PATH}?{urlencode(query)}" if query else PAGE_PATH


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


# -- the page ---------------------------------------------------------------------------


def render_page(mails: list[tuple[int, EmailMessage]], language: str, notice: str | None) -> str:
    say = partial(catalogue.text, language=language)
    esc = html.escape
    other_languages = "".join(
        f'<a href="{esc(page_url(lang=other))}" lang="{other}" hreflang="{other}">'
        f"{esc(catalogue.text('server.mailbox.language_name', other))}</a>"
        for other in catalogue.LANGUAGES
        if other != language
    )
    if notice:
        role = "status" if notice == "sent" else "alert"
        notice_html = (
            f'<p class="notice {notice}" role="{role}">{esc(say(f"server.mailbox.{notice}"))}</p>'
        )
    else:
        notice_html = ""
    if mails:
        count = say(
            f"server.mailbox.count.{'one' if len(mails) == 1 else 'other'}", count=len(mails)
        )
        listing = (
            f'<h2 class="count">{esc(count)}</h2><ol class="mails">'
            + "".join(render_mail(number, mail, language) for number, mail in mails)
            + "</ol>"
        )
    else:
        listing = (
            f'<div class="empty"><h2>{esc(say("server.mailbox.empty_title"))}</h2>'
            f"<p>{esc(say('server.mailbox.empty'))}</p>"
            f'<p><a class="primary" href="{SITE_PAGES.get(language, "/")}">'
            f"{esc(say('server.mailbox.site'))}</a></p></div>"
        )
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark"><meta name="robots" content="noindex">'
        f"<title>{esc(say('server.mailbox.title'))}</title>"
        '<link rel="icon" href="/inbox/static/icon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/demo/mailbox.css"></head><body>'
        '<header class="topbar"><span class="brand">'
        '<img class="logo" src="/inbox/static/icon.svg" alt="" width="30" height="30">'
        f'<span>Porch</span></span><span class="pill">{esc(say("server.mailbox.demo"))}</span>'
        f'<nav class="links"><a href="{esc(page_url(lang=language))}">'
        f"{esc(say('server.mailbox.refresh'))}</a>"
        f'<a href="{SITE_PAGES.get(language, "/")}">{esc(say("server.mailbox.site"))}</a>'
        f'<a href="/inbox/">{esc(say("server.mailbox.inbox"))}</a>{other_languages}</nav></header>'
        f'<main class="mailbox"><h1>{esc(say("server.mailbox.heading"))}</h1>'
        f'<p class="lead">{esc(say("server.mailbox.intro"))}</p>'
        f"{notice_html}{listing}</main></body></html>"
    )


def render_mail(number: int, mail: EmailMessage, language: str) -> str:
    say = partial(catalogue.text, language=language)
    esc = html.escape
    name, address = parseaddr(str(mail["From"] or ""))
    initial = next((c for c in name or address if c.isalnum()), "?").upper()
    subject = str(mail["Subject"] or "") or say("server.mailbox.no_subject")
    fields = [("from", "From"), ("to", "To"), ("reply_to", "Reply-To")]
    envelope = "".join(
        f"<div><dt>{esc(say(f'server.mailbox.{key}'))}</dt><dd>{esc(str(mail[header]))}</dd></div>"
        for key, header in fields
        if mail[header] is not None
    )
    to_visitor = parseaddr(str(mail["To"] or ""))[1].lower() != OWNER
    note = f'<p class="note">{esc(say("server.mailbox.to_visitor"))}</p>' if to_visitor else ""
    reply_to = parseaddr(str(mail["Reply-To"] or ""))[1]
    form = (
        f'<form class="reply" method="post" action="{PAGE_PATH}/reply">'
        f'<input type="hidden" name="mail" value="{number}">'
        f'<input type="hidden" name="lang" value="{language}">'
        f'<label for="reply-{number}">{esc(say("server.mailbox.reply_label"))}</label>'
        f'<textarea id="reply-{number}" name="text" rows="3" required'
        f' aria-describedby="hint-{number}"></textarea><div class="reply-actions">'
        f'<p class="hint" id="hint-{number}">'
        f"{esc(say('server.mailbox.reply_hint', address=reply_to))}</p>"
        f'<button class="primary" type="submit">{esc(say("server.mailbox.send"))}</button>'
        "</div></form>"
        if reply_to
        else ""
    )
    return (
        f'<li><article class="mail" aria-labelledby="subject-{number}">'
        f'<header class="mail-head"><span class="avatar" aria-hidden="true">{esc(initial)}</span>'
        f'<div class="titles"><h3 id="subject-{number}">{esc(subject)}</h3>'
        f'<p class="sender">{esc(name or address)}</p></div>{render_time(mail)}</header>'
        f'<dl class="envelope">{envelope}</dl>{note}'
        f'<div class="body">{render_body(mail)}</div>{form}</article></li>'
    )


def render_time(mail: EmailMessage) -> str:
    """When it was sent, on this machine's clock: `porch demo` runs where it is read."""
    try:
        moment = parsedate_to_datetime(str(mail["Date"])).astimezone()
    except (TypeError, ValueError):  # no Date, or one that is no date
        return ""
    return f'<time datetime="{moment.isoformat()}">{moment:%Y-%m-%d %H:%M}</time>'


def render_body(mail: EmailMessage) -> str:
    """The plain-text part as sent, links clickable; our reply marker and quoted lines
    shown as a mail client would, set apart from the new text."""
    part = mail.get_body(("plain",))
    text: str = part.get_content() if part is not None else ""
    lines = []
    for line in text.rstrip("\n").splitlines():
        if line.strip() in REPLY_MARKERS:
            lines.append(f'<span class="marker">{html.escape(line)}</span>')
        elif line.startswith(">"):
            lines.append(f'<span class="quoted">{linked(line)}</span>')
        else:
            lines.append(linked(line))
    return "\n".join(lines)


def linked(text: str) -> str:
    """Escaped text whose http(s) links are links."""
    parts, last = [], 0
    for match in LINK.finditer(text):
        url = html.escape(match.group())
        parts += [html.escape(text[last : match.start()]), f'<a href="{url}">{url}</a>']
        last = match.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)
