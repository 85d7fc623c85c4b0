"""Writing the emails Porch sends: to the owner for new visitor messages, to the
visitor for owner replies they have not seen. Plain text plus simple HTML.

Visitor-written text never reaches a header unsanitised (CR, LF and NUL removed, and
the stdlib's header encoder does the rest); in HTML it is always escaped.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

from relay.mail.reading import LOOP_HEADER, REPLY_MARKERS
from relay.models import Author, Message
from relay.store.mail import MailJob

MARKER = REPLY_MARKERS[0]  # English: the marker's text is matched, never shown as UI
MAX_HEADER_TEXT = 78  # a display name or subject longer than a line is cut


def header_text(text: str | None, fallback: str) -> str:
    """Text fit for a header: no CR/LF/NUL (header injection), no runs of space."""
    cleaned = " ".join((text or "").replace("\0", " ").split())
    return (cleaned or fallback)[:MAX_HEADER_TEXT]


def thread_root_id(thread: str, domain: str) -> str:
    """A Message-ID every email of a thread refers to, so mail clients group them."""
    return f"<thread.{thread}@{domain}>"


def owner_notification(job: MailJob, *, sender: str, reply_domain: str) -> EmailMessage:
    assert job.tag is not None
    visitor = header_text(job.visitor_name, "A visitor")
    site = header_text(job.site.name, "your site")
    message = _base(job, sender=sender, reply_domain=reply_domain)
    message["From"] = formataddr((f"{visitor} via {site}", sender))
    message["Reply-To"] = f"r+{job.tag}@{reply_domain}"
    # Stable per thread: mail clients group by subject as well as by References.
    message["Subject"] = header_text(f"{site}: conversation with {visitor}", site)
    # The marker comes first: a reply is written above it, and everything from it down
    # (the visitor's own words included) is cut, whatever the mail client quotes.
    new_seqs = {m.seq for m in job.new}
    earlier = [m for m in job.recent if m.seq not in new_seqs]
    lines = [MARKER, "", *_bodies(job.new), ""]
    if earlier:
        lines += ["Earlier in this conversation:", "", *_history(earlier, visitor, "You")]
    if job.visitor_email:
        lines += ["", f"{visitor} left the address {job.visitor_email}."]
    if job.thread.page:
        lines += [f"Started on {job.thread.page}"]
    text = "\n".join(lines) + "\n"
    message.set_content(text)
    message.add_alternative(
        _html(job.new, earlier, visitor, "You", note=None, marker=True), subtype="html"
    )
    return message


def visitor_notification(
    job: MailJob, *, sender: str, reply_domain: str, unsubscribe_url: str, link: str
) -> EmailMessage:
    site = header_text(job.site.name, "The business")
    message = _base(job, sender=sender, reply_domain=reply_domain)
    message["From"] = formataddr((site, sender))
    message["Subject"] = header_text(f"{site} replied to your message", site)
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    lines = [f"{site} answered you:", "", *_bodies(job.new), ""]
    lines += [f"Continue the conversation (this link works once, for 30 minutes): {link}", ""]
    lines += [
        "You get this email because you left your address in the chat.",
        f"Stop these emails: {unsubscribe_url}",
    ]
    message.set_content("\n".join(lines) + "\n")
    note = f'<p><a href="{html.escape(link)}">Continue the conversation</a></p>'
    note += (
        '<p style="color:#666;font-size:12px">You get this email because you left your address'
        f' in the chat. <a href="{html.escape(unsubscribe_url)}">Stop these emails</a>.</p>'
    )
    message.add_alternative(
        _html(job.new, [], site, "You", note=note, marker=False), subtype="html"
    )
    return message


def resume_link_email(job: MailJob, *, sender: str, reply_domain: str, link: str) -> EmailMessage:
    site = header_text(job.site.name, "The business")
    message = _base(job, sender=sender, reply_domain=reply_domain)
    message["From"] = formataddr((site, sender))
    message["Subject"] = header_text(f"Your conversation with {site}", site)
    text = (
        f"Open this link on the device where you want to continue your conversation "
        f"with {site}:\n\n{link}\n\nIt works once, for 30 minutes. If you did not ask "
        "for it, ignore this email: nothing happens without the link.\n"
    )
    message.set_content(text)
    message.add_alternative(
        "<!doctype html><html><body>"
        f"<p>Open this link on the device where you want to continue your conversation "
        f"with {html.escape(site)}:</p>"
        f'<p><a href="{html.escape(link)}">Continue the conversation</a></p>'
        '<p style="color:#666;font-size:12px">It works once, for 30 minutes. If you did '
        "not ask for it, ignore this email.</p></body></html>",
        subtype="html",
    )
    return message


def _base(job: MailJob, *, sender: str, reply_domain: str) -> EmailMessage:
    message = EmailMessage()
    message["To"] = job.item.recipient
    message["Date"] = format_datetime(datetime.now(UTC))
    domain = reply_domain or parseaddr(sender)[1].rpartition("@")[2] or "porch.invalid"
    # One Message-ID per outbox row: a retried send is recognisably the same email.
    message["Message-ID"] = f"<outbox.{job.item.id}.{job.thread.id}@{domain}>"
    root = thread_root_id(job.thread.id, domain)
    message["In-Reply-To"] = root
    message["References"] = root
    # RFC 3834: machine-written, must not trigger auto-replies; Exchange: no OOF either.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message[LOOP_HEADER] = "1"
    return message


def _bodies(messages: list[Message]) -> list[str]:
    lines: list[str] = []
    for i, message in enumerate(messages):
        if i:
            lines.append("")
        lines.extend(message.body.splitlines())
    return lines


def _history(messages: list[Message], visitor: str, owner: str) -> list[str]:
    lines = []
    for message in messages:
        who = visitor if message.author is Author.VISITOR else owner
        lines.append(f"{who}, {message.created_at[:16].replace('T', ' ')} UTC:")
        lines.extend(f"> {line}" if line else ">" for line in message.body.splitlines())
        lines.append("")
    return lines


def _html(
    new: list[Message],
    recent: list[Message],
    visitor: str,
    owner: str,
    note: str | None,
    marker: bool,
) -> str:
    def paragraphs(text: str) -> str:
        return "<br>".join(html.escape(line) for line in text.splitlines())

    parts = [f'<p style="color:#888">{html.escape(MARKER)}</p>'] if marker else []
    parts += [f'<div style="font-size:15px">{paragraphs(m.body)}</div><br>' for m in new]
    if recent:
        parts.append('<p style="color:#888">Earlier in this conversation:</p>')
        for message in recent:
            who = visitor if message.author is Author.VISITOR else owner
            parts.append(
                '<blockquote style="margin:0 0 8px;padding-left:8px;border-left:3px solid #ccc">'
                f"<b>{html.escape(who)}</b><br>{paragraphs(message.body)}</blockquote>"
            )
    if note:
        parts.append(note)
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"
