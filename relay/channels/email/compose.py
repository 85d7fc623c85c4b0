"""Writing the emails Porch sends: to the owner for new visitor messages (one
conversation, or a digest of many), to the visitor for owner replies they have not
seen, sign-in links to the inbox, notices to the senders of refused replies. Plain
text plus simple HTML; a message's files are links (file_links.py).

Visitor-written text never reaches a header unsanitised (CR, LF and NUL removed, and
the stdlib's header encoder does the rest); in HTML it is always escaped. Address
headers are built from the stdlib's Address objects, never by joining strings, and a
name shown as a sender holds no character that could make it read as an address.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import partial
from urllib.parse import quote

from relay import catalogue
from relay.channels.email.file_links import FileLinks
from relay.channels.email.reading import LOOP_HEADER, REPLY_MARKERS
from relay.models import Author, Links, Message
from relay.sites.availability import site_zone
from relay.store.digest import DigestJob, DigestThread, LoginJob
from relay.store.held import NoticeJob
from relay.store.mail import MailJob

# The line a reply is written above, in each language: relay/channels/email/extract.py
# recognises every one of them in replies, whatever the client quotes.
MARKERS = dict(zip(catalogue.LANGUAGES, REPLY_MARKERS, strict=True))
MAX_HEADER_TEXT = 78  # a display name or subject longer than a line is cut
VISITOR_NAME_IN_SENDER = 40  # of "Ann via Bar Bakery": room left for the site's name
# A digest quotes the latest few messages of a conversation; the inbox has the rest.
DIGEST_MESSAGES_PER_THREAD = 10


# RFC 5322 3.2.3 specials but ".": in a display name they make it read as an address
# ("alerts@bank.example"), a group ("Bank:") or a list (","). Quoting should keep them
# inert, but mail clients show the name alone, and Python before 3.12.10 drops the
# quotes when it folds a long header (CPython gh-80222): they are replaced, not quoted.
# And "=": "=?utf-8?b?PGFAYi5jPg==?=" is an RFC 2047 encoded word that the stdlib
# itself decodes into the header it writes ("<a@b.c>"), and so would a mail client.
SENDER_NAME_SPECIALS = str.maketrans(dict.fromkeys('()<>[]:;@\\,"=', " "))


def header_text(text: str | None, fallback: str) -> str:
    """Text fit for a header: no CR/LF/NUL (header injection), no runs of space, and no
    RFC 2047 encoded word: the stdlib decodes "=?utf-8?q?=0D=0ABcc:_x@y?=" into the
    header it writes, CR LF and all, before folding it (so would a reader)."""
    cleaned = " ".join((text or "").replace("\0", " ").replace("=?", "= ?").split())
    return (cleaned or fallback)[:MAX_HEADER_TEXT]


def sender_name(text: str | None, fallback: str, limit: int = MAX_HEADER_TEXT) -> str:
    """A name fit to show as a sender: header_text without specials or invisible format
    characters (a right-to-left override reorders what the reader sees). NFKC first,
    so that look-alikes such as the full-width "＠" count as what they look like."""
    folded = unicodedata.normalize("NFKC", text or "").translate(SENDER_NAME_SPECIALS)
    visible = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    return header_text(visible, fallback)[:limit].strip()


def mailbox(address: str, name: str | None = None) -> Address:
    """An address header's value: the stdlib quotes and encodes the name itself."""
    return Address(display_name=name or "", addr_spec=address)


def thread_root_id(thread: str, domain: str) -> str:
    """A Message-ID every email of a thread refers to, so mail clients group them."""
    return f"<thread.{thread}@{domain}>"


def notification_subject(site_name: str, visitor_name: str | None, language: str) -> str:
    """Stable per thread: mail clients group by subject as well as by References."""
    say = partial(catalogue.text, language=language)
    site = header_text(site_name, say("server.owner.site"))
    visitor = sender_name(visitor_name, say("server.owner.visitor"))
    return header_text(say("server.owner.subject", site=site, visitor=visitor), site)


def owner_notification(
    job: MailJob, *, sender: str, reply_domain: str, links: Links
) -> EmailMessage:
    assert job.tag is not None
    say = partial(catalogue.text, language=job.language)
    visitor = header_text(job.visitor_name, say("server.owner.visitor"))
    site = header_text(job.site.name, say("server.owner.site"))
    you = say("server.owner.you")
    message = _base(job, sender=sender, reply_domain=reply_domain)
    # The visitor's name is cut, never the site's: "… via Bar Bakery" says who sent it.
    shown = sender_name(job.visitor_name, say("server.owner.visitor"), VISITOR_NAME_IN_SENDER)
    message["From"] = mailbox(
        sender, say("server.owner.from", visitor=shown, site=sender_name(site, site))
    )
    message["Reply-To"] = mailbox(f"r+{job.tag}@{reply_domain}")
    message["Subject"] = notification_subject(job.site.name, job.visitor_name, job.language)
    # The marker comes first: a reply is written above it, and everything from it down
    # (the visitor's own words included) is cut, whatever the mail client quotes.
    marker = MARKERS[job.language]
    new_seqs = {m.seq for m in job.new}
    earlier = [m for m in job.recent if m.seq not in new_seqs]
    files = FileLinks(links, say)
    expiry = files.expiry([*job.new, *earlier])
    lines = [marker, "", *_bodies(job.new, files), "", *expiry, *([""] if expiry else [])]
    if earlier:
        lines += [say("server.owner.earlier"), "", *_history(earlier, visitor, you, files)]
    if job.visitor_email:
        lines += ["", say("server.owner.left_address", visitor=visitor, email=job.visitor_email)]
    if job.thread.page:
        lines += [say("server.owner.started_on", page=job.thread.page)]
    text = "\n".join(lines) + "\n"
    message.set_content(text)
    earlier_title = say("server.owner.earlier")
    message.add_alternative(
        _html(
            job.new,
            earlier,
            visitor,
            you,
            files,
            note=None,
            marker=marker,
            earlier_title=earlier_title,
        ),
        subtype="html",
    )
    return message


def visitor_notification(
    job: MailJob,
    *,
    sender: str,
    reply_domain: str,
    unsubscribe_url: str,
    link: str,
    links: Links,
) -> EmailMessage:
    say = partial(catalogue.text, language=job.language)
    site = header_text(job.site.name, say("server.visitor.business"))
    message = _base(job, sender=sender, reply_domain=reply_domain)
    message["From"] = mailbox(sender, sender_name(site, say("server.visitor.business")))
    message["Subject"] = header_text(say("server.visitor.subject", site=site), site)
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    go_on, stop = say("server.visitor.continue"), say("server.visitor.stop")
    files = FileLinks(links, say)
    expiry = files.expiry(job.new)
    lines = [say("server.visitor.intro", site=site), "", *_bodies(job.new, files), ""]
    lines += [*expiry, *([""] if expiry else [])]
    marker = None
    if job.tag is not None:  # they may answer by email: from the address we wrote to
        message["Reply-To"] = mailbox(f"r+{job.tag}@{reply_domain}", site)
        marker = MARKERS[job.language]
        lines = [marker, "", *lines, say("server.visitor.reply")]
    lines += [f"{go_on} ({say('server.visitor.link_once')}): {link}", ""]
    lines += [say("server.visitor.why"), f"{stop}: {unsubscribe_url}"]
    message.set_content("\n".join(lines) + "\n")
    note = f'<p><a href="{html.escape(link)}">{html.escape(go_on)}</a></p>'
    note += (
        f'<p style="color:#666;font-size:12px">{html.escape(say("server.visitor.why"))}'
        f' <a href="{html.escape(unsubscribe_url)}">{html.escape(stop)}</a>.</p>'
    )
    message.add_alternative(
        _html(job.new, [], site, "", files, note=note, marker=marker), subtype="html"
    )
    return message


def resume_link_email(job: MailJob, *, sender: str, reply_domain: str, link: str) -> EmailMessage:
    say = partial(catalogue.text, language=job.language)
    site = header_text(job.site.name, say("server.visitor.business"))
    message = _base(job, sender=sender, reply_domain=reply_domain)
    message["From"] = mailbox(sender, sender_name(site, say("server.visitor.business")))
    message["Subject"] = header_text(say("server.resume.subject", site=site), site)
    intro = say("server.resume.intro", site=site)
    after = f"{say('server.resume.expiry')} {say('server.resume.ignore')}"
    message.set_content(f"{intro}\n\n{link}\n\n{after}\n")
    message.add_alternative(
        "<!doctype html><html><body>"
        f"<p>{html.escape(intro)}</p>"
        f'<p><a href="{html.escape(link)}">{html.escape(say("server.visitor.continue"))}</a></p>'
        f'<p style="color:#666;font-size:12px">{html.escape(after)}</p></body></html>',
        subtype="html",
    )
    return message


def digest_email(
    job: DigestJob, *, sender: str, reply_domain: str, base_url: str, links: Links
) -> EmailMessage:
    """Many conversations in one email, each with a link to the inbox and a mailto:
    link to its own reply address (the digest itself has no Reply-To: which thread
    would an answer belong to?)."""
    say = partial(catalogue.text, language=job.language)
    summary = say(
        "server.digest.subject",
        messages=_counted(say, "messages", job.message_count),
        conversations=_counted(say, "conversations", len(job.threads)),
    )
    message = _automatic(job.item.recipient, f"{job.item.id}.digest", _domain(sender, reply_domain))
    message["From"] = mailbox(sender, "Porch")
    message["Subject"] = header_text(summary, "Porch")
    footer = say(
        "server.digest.footer", schedule=say(f"server.digest.{job.mode}"), url=f"{base_url}/inbox/"
    )
    files = FileLinks(links, say)
    sections = [
        _digest_section(entry, job.language, base_url, reply_domain, files) for entry in job.threads
    ]
    lines = [summary + ".", ""]
    for section_lines, _ in sections:
        lines += section_lines
    expiry = files.expiry([m for entry in job.threads for m in entry.new])
    message.set_content("\n".join([*lines, *expiry, footer]) + "\n")
    message.add_alternative(
        f"<!doctype html><html><body><p><b>{html.escape(summary)}.</b></p>"
        + "".join(section_html for _, section_html in sections)
        + "".join(f'<p style="color:#666;font-size:12px">{html.escape(t)}</p>' for t in expiry)
        + f'<p style="color:#666;font-size:12px">{html.escape(footer)}</p></body></html>',
        subtype="html",
    )
    return message


def _digest_section(
    entry: DigestThread, language: str, base_url: str, reply_domain: str, files: FileLinks
) -> tuple[list[str], str]:
    """One conversation of a digest: (text lines, HTML)."""
    say = partial(catalogue.text, language=language)
    visitor = header_text(entry.visitor_name or entry.visitor_email, say("server.digest.visitor"))
    heading = say("server.digest.heading", visitor=visitor, site=entry.site.name)
    reply_subject = "Re: " + notification_subject(entry.site.name, entry.visitor_name, language)
    open_url = f"{base_url}/inbox/#t={quote(entry.thread.id)}"  # the page routes #t=ID
    # RFC 6068: "+" may stand as it is in the address; the subject is percent-encoded.
    reply_url = f"mailto:r+{entry.tag}@{reply_domain}?subject={quote(reply_subject, safe='')}"
    shown = entry.new[-DIGEST_MESSAGES_PER_THREAD:]
    earlier = len(entry.new) - len(shown)
    zone = site_zone(entry.site.settings)
    lines = [f"== {heading} ==", ""]
    parts = [
        '<div style="margin:0 0 16px;padding-top:8px;border-top:1px solid #ddd">'
        f"<p><b>{html.escape(heading)}</b></p>"
    ]
    if earlier:
        lines += [say("server.digest.earlier", count=earlier), ""]
        parts.append(
            f'<p style="color:#888">{html.escape(say("server.digest.earlier", count=earlier))}</p>'
        )
    for m in shown:
        moment = datetime.fromisoformat(m.created_at).astimezone(zone)
        when = f"{moment:%Y-%m-%d %H:%M} {moment.tzname()}"
        lines += [f"{when}:", *m.body.splitlines(), *files.lines(m), ""]
        parts.append(
            '<blockquote style="margin:0 0 8px;padding-left:8px;border-left:3px solid #ccc">'
            f'<span style="color:#888">{html.escape(when)}</span><br>{_paragraphs(m.body)}'
            f"{files.html(m)}</blockquote>"
        )
    lines += [
        f"{say('server.digest.open')}: {open_url}",
        f"{say('server.digest.reply')}: {reply_url}",
        "",
    ]
    parts.append(
        f'<p><a href="{html.escape(open_url)}">{html.escape(say("server.digest.open"))}</a> · '
        f'<a href="{html.escape(reply_url)}">{html.escape(say("server.digest.reply"))}</a></p>'
        "</div>"
    )
    return lines, "".join(parts)


def login_email(job: LoginJob, *, sender: str, reply_domain: str, link: str) -> EmailMessage:
    """A sign-in link to the inbox, in the owner's language. No reply address: there
    is nothing to answer, and nothing in it but the link."""
    say = partial(catalogue.text, language=job.language)
    message = _automatic(job.item.recipient, f"{job.item.id}.login", _domain(sender, reply_domain))
    message["From"] = mailbox(sender, "Porch")
    message["Subject"] = say("server.login.subject")
    message.set_content(
        f"{say('server.login.intro')}\n\n{link}\n\n"
        f"{say('server.login.expiry')} {say('server.login.ignore')}\n"
    )
    message.add_alternative(
        "<!doctype html><html><body>"
        f"<p>{html.escape(say('server.login.intro'))}</p>"
        f'<p><a href="{html.escape(link)}">{html.escape(say("server.login.action"))}</a></p>'
        f'<p style="color:#666;font-size:12px">{html.escape(say("server.login.expiry"))} '
        f"{html.escape(say('server.login.ignore'))}</p></body></html>",
        subtype="html",
    )
    return message


def refusal_notice(job: NoticeJob, *, sender: str, reply_domain: str) -> EmailMessage:
    """To the sender of a refused reply: why nothing was posted. An automatic reply
    (RFC 3834): never answered by our own pipeline nor, if the clients behave, by theirs;
    it says nothing of the conversation, which its reader may not be part of."""
    payload = job.payload
    say = partial(catalogue.text, language=payload.get("language") or "en")
    domain = _domain(sender, reply_domain)
    message = _automatic(job.item.recipient, f"{job.item.id}.notice", domain)
    message.replace_header("Auto-Submitted", "auto-replied")
    message["From"] = mailbox(sender, "Porch")
    message["Subject"] = header_text(
        say("server.refused.subject", subject=header_text(payload.get("subject"), "…")), "…"
    )
    if payload.get("in_reply_to"):
        message["In-Reply-To"] = f"<{header_text(payload['in_reply_to'], '')}>"
    reason = str(payload.get("reason") or "revoked_tag").removesuffix("_tag")
    why = say(f"server.refused.{reason}", days=payload.get("days") or 0)
    lines = [say("server.refused.intro"), why, say("server.refused.what_now")]
    message.set_content("\n\n".join(lines) + f"\n\n-- \n{say('server.refused.automatic')}\n")
    return message


def _counted(say: Callable[..., str], noun: str, count: int) -> str:
    """'3 new messages', '1 conversation': the catalogue has a form for one and more."""
    return say(f"server.digest.{noun}.{'one' if count == 1 else 'other'}", count=count)


def _domain(sender: str, reply_domain: str) -> str:
    return reply_domain or parseaddr(sender)[1].rpartition("@")[2] or "porch.invalid"


def _automatic(recipient: str, outbox_ref: str, domain: str) -> EmailMessage:
    """An email with the headers every automatic email of ours carries."""
    message = EmailMessage()
    message["To"] = mailbox(recipient)
    message["Date"] = format_datetime(datetime.now(UTC))
    # One Message-ID per outbox row: a retried send is recognisably the same email.
    message["Message-ID"] = f"<outbox.{outbox_ref}@{domain}>"
    # RFC 3834: machine-written, must not trigger auto-replies; Exchange: no OOF either.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message[LOOP_HEADER] = "1"
    return message


def _base(job: MailJob, *, sender: str, reply_domain: str) -> EmailMessage:
    domain = _domain(sender, reply_domain)
    message = _automatic(job.item.recipient, f"{job.item.id}.{job.thread.id}", domain)
    root = thread_root_id(job.thread.id, domain)
    message["In-Reply-To"] = root
    message["References"] = root
    return message


def _bodies(messages: list[Message], files: FileLinks) -> list[str]:
    lines: list[str] = []
    for i, message in enumerate(messages):
        if i:
            lines.append("")
        lines.extend([*message.body.splitlines(), *files.lines(message)])
    return lines


def _history(messages: list[Message], visitor: str, owner: str, files: FileLinks) -> list[str]:
    lines = []
    for message in messages:
        who = visitor if message.author is Author.VISITOR else owner
        lines.append(f"{who}, {message.created_at[:16].replace('T', ' ')} UTC:")
        said = [*message.body.splitlines(), *files.lines(message)]
        lines.extend(f"> {line}" if line else ">" for line in said)
        lines.append("")
    return lines


def _paragraphs(body: str) -> str:
    return "<br>".join(html.escape(line) for line in body.splitlines())


def _html(
    new: list[Message],
    recent: list[Message],
    visitor: str,
    owner: str,
    files: FileLinks,
    note: str | None,
    marker: str | None = None,
    earlier_title: str = "",
) -> str:
    parts = [f'<p style="color:#888">{html.escape(marker)}</p>'] if marker else []
    parts += [
        f'<div style="font-size:15px">{_paragraphs(m.body)}{files.html(m)}</div><br>' for m in new
    ]
    parts += [
        f'<p style="color:#666;font-size:12px">{html.escape(line)}</p>'
        for line in files.expiry([*new, *recent])
    ]
    if recent:
        parts.append(f'<p style="color:#888">{html.escape(earlier_title)}</p>')
        for message in recent:
            who = visitor if message.author is Author.VISITOR else owner
            parts.append(
                '<blockquote style="margin:0 0 8px;padding-left:8px;border-left:3px solid #ccc">'
                f"<b>{html.escape(who)}</b><br>{_paragraphs(message.body)}{files.html(message)}"
                "</blockquote>"
            )
    if note:
        parts.append(note)
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"
