"""Reading inbound mail: what an email that came back to r+TAG@<reply domain> says.

Pure functions over raw RFC 5322 bytes: no I/O, no store, no configuration. `inspect` tells
an owner's reply from an automatic reply or a bounce (classify.py), finds the conversation
tag and the sender, decodes the body to text (any charset, any transfer encoding, HTML
through inscriptis), keeps only the new text of a reply (extract.py) and takes out the
files it carries (attachments.py). Whether the sender may post to that conversation is
decided elsewhere: nothing here trusts the From header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from inscriptis import get_annotated_text  # type: ignore[import-untyped,unused-ignore]
from inscriptis.css_profiles import CSS_PROFILES  # type: ignore[import-untyped,unused-ignore]
from inscriptis.html_properties import Display  # type: ignore[import-untyped,unused-ignore]
from inscriptis.model.config import ParserConfig  # type: ignore[import-untyped,unused-ignore]
from inscriptis.model.html_element import HtmlElement  # type: ignore[import-untyped,unused-ignore]

from relay.channels.email.attachments import MailFile, files_of
from relay.channels.email.classify import (
    LOOP_HEADER,
    Headers,
    classify,
    decoded_subject,
    mime_parts,
)
from relay.channels.email.extract import REPLY_MARKERS, new_text

__all__ = [
    "LOOP_HEADER",
    "REPLY_MARKERS",
    "Inspection",
    "UnreadableEmail",
    "inspect",
    "tag_of",
]

# Where the reply address may appear, in the order it is looked for: the owner's client puts
# Reply-To into To (or Cc with "reply all"); forwarding setups keep it in Delivered-To or
# X-Original-To only.
TOKEN_HEADERS = ("to", "cc", "delivered-to", "x-original-to")

# r+TAG@domain, TAG in base32's lowercase alphabet. Case-insensitive because some clients and
# servers upper-case addresses; the tag is reported lowercased.
TAG_ADDRESS = re.compile(r"r\+([a-z2-7]+)@[^@\s]+", re.IGNORECASE)
# A site's own address at the relay, contact+SITE@REPLY_DOMAIN: where the business
# forwards hello@ (mail to it starts a conversation).
CONTACT_ADDRESS = re.compile(r"contact\+([a-z0-9][a-z0-9-]{0,38}[a-z0-9])@[^@\s]+", re.IGNORECASE)

# At least one of these must be present for bytes to count as an email: the parser accepts
# anything, and "hello: world" alone is not a message.
EMAIL_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "received",
        "return-path",
        "delivered-to",
        "mime-version",
        "content-type",
    }
)


# Declared charsets that are really their superset in practice: mail labelled Latin-1 is most
# often written on Windows (curly quotes, €), and "ascii" text regularly carries 8-bit bytes.
CHARSET_SUPERSETS = {
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
}

# Our rule: text labelled with one of these single-byte charsets whose bytes are nonetheless
# valid UTF-8 was written in UTF-8 by a misconfigured program (webmail, scripts). Real Latin-1
# text practically never forms valid multi-byte UTF-8 sequences, so UTF-8 is tried first.
OFTEN_MISLABELLED = frozenset(
    {
        "iso-8859-1",
        "latin-1",
        "latin1",
        "iso-8859-15",
        "windows-1252",
        "cp1252",
        "us-ascii",
        "ascii",
    }
)

# Tried after the declared charset: UTF-8 is what nearly everything sends nowadays, cp1252 is
# what old Windows clients send without saying so, latin-1 decodes any byte (last resort).
FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")

# Our rule: the quoted history of an HTML reply, written as "> " lines as in a text reply, so
# that extract.py tells it from what the owner typed above, between or below it (rendered
# as plain text the quote would look like the owner's, and an answer below it would be cut
# with it). Only blockquotes that mail apps use for quoting: Apple Mail, Thunderbird and
# Roundcube mark them type="cite", Gmail and Proton Mail by class; Gmail's "indent" button
# also makes a <blockquote>, but a bare one, around the owner's own text. Gmail's quote
# <div> also holds the attribution line above its <blockquote>, Yahoo's the whole history.
QUOTE_LABEL = "quote"
QUOTE_ELEMENTS = {
    "blockquote#type=cite": [QUOTE_LABEL],
    "blockquote#class=gmail_quote": [QUOTE_LABEL],
    "blockquote#class=protonmail_quote": [QUOTE_LABEL],
    "div#class=gmail_quote": [QUOTE_LABEL],
    "div#class=yahoo_quoted": [QUOTE_LABEL],
}

# Firefox's defaults: no extra indentation of nested <div>s (Outlook nests them deeply).
HTML_CONFIG = ParserConfig(
    css=CSS_PROFILES["strict"], display_links=True, annotation_rules=QUOTE_ELEMENTS
)

# Our rule: HTML written by Word (Outlook desktop, Windows Mail) sets p.MsoNormal margins to 0 in
# a stylesheet, which inscriptis does not apply, and marks blank lines with empty paragraphs.
# Rendered with default margins, "Regards,<p>Pierre" would come out with a blank line between.
# The blank-line paragraphs hold only <o:p>&nbsp;</o:p>, which inscriptis drops as whitespace:
# a <br> in its place keeps the blank line.
WORD_HTML = re.compile(r"class=[\"']?MsoNormal", re.IGNORECASE)
WORD_EMPTY_PARAGRAPH = re.compile(r"<o:p>\s*&nbsp;\s*</o:p>", re.IGNORECASE)
WORD_HTML_CONFIG = ParserConfig(
    css={**CSS_PROFILES["strict"], "p": HtmlElement(display=Display.block)},
    display_links=True,
    annotation_rules=QUOTE_ELEMENTS,
)

# inscriptis writes links as [text](url); a chat wants "text <url>", or the bare url when the
# text is the url itself (as Outlook makes every typed address).
HTML_LINK = re.compile(r"\[([^\]\n]*)\]\(((?:https?|mailto):[^)\s]*)\)")


class UnreadableEmail(ValueError):
    """The bytes are not an email at all (empty, or no headers)."""


@dataclass(frozen=True)
class Inspection:
    kind: str  # "reply" | "auto_reply" | "bounce"
    body: str  # the new text of a reply; "" for auto_reply and bounce
    token: str | None  # tag of the first r+TAG@ address (To, Cc, Delivered-To, X-Original-To)
    sender: str | None  # bare From address, lowercased; display names never trusted
    message_id: str | None  # Message-ID without angle brackets
    bounced: tuple[str, ...] = ()  # bounces: permanently failed recipients, lowercased
    hard_bounce: bool = False  # a permanent (5.x.x) failure
    recipients: tuple[str, ...] = ()  # To, Cc, Delivered-To, X-Original-To, lowercased
    files: tuple[MailFile, ...] = ()  # a reply's attachments and body images, not decoration
    subject: str = ""  # decoded

    def to_json(self) -> dict[str, object]:
        found: dict[str, object] = {
            "kind": self.kind,
            "body": self.body,
            "token": self.token,
            "from": self.sender,
            "message_id": self.message_id,
        }
        if self.files:  # only then: most replies carry none
            found["attachments"] = [file.to_json() for file in self.files]
        return found


def inspect(raw: bytes) -> Inspection:
    """Read one inbound email. Raises UnreadableEmail only for bytes that are no email."""
    msg = _parse(raw)
    headers = _headers(msg)
    sender = _sender(headers)
    verdict = classify(msg, headers, sender)
    reply = verdict.kind == "reply"
    return Inspection(
        kind=verdict.kind,
        body=new_text(body_text(msg)) if reply else "",
        token=_token(headers),
        sender=sender,
        message_id=_message_id(headers),
        bounced=verdict.bounced,
        hard_bounce=verdict.hard_bounce,
        recipients=tuple(
            dict.fromkeys(a.lower() for name in TOKEN_HEADERS for a in _addresses(headers, name))
        ),
        files=files_of(msg) if reply else (),
        subject=decoded_subject(headers),
    )


def tag_of(address: str) -> str | None:
    """The tag of an r+TAG@domain address, lowercased ("R+AbC@x.example" -> "abc"); None for
    any other address. Also accepts "Name <r+tag@domain>"."""
    bare = parseaddr(address)[1] if "<" in address else address.strip()
    match = TAG_ADDRESS.fullmatch(bare)
    return match.group(1).lower() if match else None


def contact_site_of(address: str) -> str | None:
    """The site of a contact+SITE@domain address, lowercased; None for any other."""
    match = CONTACT_ADDRESS.fullmatch(address.strip())
    return match.group(1).lower() if match else None


def _parse(raw: bytes) -> Message:
    if not raw or not bytes(raw).strip():
        raise UnreadableEmail("empty message")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(bytes(raw))
    except RecursionError:  # the stdlib parser recurses once per nested multipart
        raise UnreadableEmail("MIME structure nested too deeply to parse") from None
    names = {name.lower() for name in msg}
    if not names & EMAIL_HEADERS:
        raise UnreadableEmail("no email headers")
    return msg


def _headers(msg: Message) -> Headers:
    """Headers as the sender wrote them: unfolded, never parsed by the email package (whose
    header parser can raise on malformed values). 8-bit bytes are read as UTF-8."""
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        unfolded = re.sub(r"\r?\n(?=[ \t])", "", text).strip()
        headers.setdefault(name.strip().lower(), []).append(unfolded)
    return headers


def _addresses(headers: Headers, name: str) -> list[str]:
    return [address for _, address in getaddresses(list(headers.get(name, ()))) if address]


def _sender(headers: Headers) -> str | None:
    addresses = _addresses(headers, "from")
    return addresses[0].lower() if addresses else None


def _token(headers: Headers) -> str | None:
    for name in TOKEN_HEADERS:
        for address in _addresses(headers, name):
            tag = tag_of(address)
            if tag:
                return tag
    return None


def _message_id(headers: Headers) -> str | None:
    values = headers.get("message-id", ())
    if not values:
        return None
    value = values[0].strip()
    bracketed = re.search(r"<([^<>\s]+)>", value)
    if bracketed:
        return bracketed.group(1)
    return value.strip("<>").strip() or None


# ---------------------------------------------------------------- body text


def body_text(msg: Message) -> str:
    """The text of the body. text/plain wins over HTML unless it is blank (some clients send
    an empty plain alternative); HTML is converted with inscriptis."""
    plain = _first_part(msg, "text/plain")
    if plain is not None:
        text = decode_part(plain)
        if text.strip():
            return _unflow_if_flowed(plain, text)
    html = _first_part(msg, "text/html")
    if html is not None:
        return html_to_text(decode_part(html))
    return ""


def _first_part(msg: Message, content_type: str) -> Message | None:
    """The first inline part of that type, outside attachments and attached messages."""
    for part in mime_parts(msg):
        if part.get_content_type() == content_type and not _is_attachment(part):
            return part
    return None


def _is_attachment(part: Message) -> bool:
    return (part.get_content_disposition() or "") == "attachment"


def decode_part(part: Message) -> str:
    """Text of a leaf part: transfer encoding undone, charset honoured when it can be, never
    raising (wrong, unknown or missing charsets fall back to UTF-8, cp1252, latin-1)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # the email package can choke on broken base64 or QP; read what is there
        data = None
    if not isinstance(data, bytes):
        raw = part.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    return decode_bytes(data, _charset_of(part))


def _charset_of(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:  # a charset parameter in RFC 2231 form that does not decode
        return None
    if not charset:
        return None
    return charset.strip().strip("\"'").lower() or None


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset (or its usual superset), then the fallbacks."""
    candidates = [CHARSET_SUPERSETS.get(charset, charset)] if charset else []
    if charset in OFTEN_MISLABELLED and not data.isascii():
        candidates.insert(0, "utf-8")
    for candidate in [*candidates, *FALLBACK_CHARSETS]:
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", "replace")  # unreachable: latin-1 decodes anything


def _unflow_if_flowed(part: Message, text: str) -> str:
    params = {k.lower(): v.lower() for k, v in part.get_params(failobj=[]) if isinstance(v, str)}
    if params.get("format") != "flowed":
        return text
    return unflow(text, delsp=params.get("delsp") == "yes")


def unflow(text: str, *, delsp: bool = False) -> str:
    """Undo RFC 3676 format=flowed (Thunderbird): a line ending in a space continues on the
    next line of the same quote depth. Without this every paragraph would arrive broken at
    72 characters, as the trailing spaces that mark the soft breaks are stripped later."""
    out: list[str] = []
    open_depth: int | None = None  # quote depth of the paragraph still being joined
    for raw in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        line = raw[depth:]
        if line.startswith(" "):  # space-stuffing, or the space after ">"
            line = line[1:]
        flowed = line.endswith(" ") and line != "-- "
        if flowed and delsp:
            line = line[:-1]
        if open_depth == depth:
            out[-1] += line
        else:
            out.append(">" * depth + (" " if depth and line else "") + line)
        open_depth = depth if flowed else None
    return "\n".join(out)


def html_to_text(html: str) -> str:
    """HTML body as text: inscriptis rendering, links kept readable, layout indentation gone,
    quoted history as "> " lines (QUOTE_ELEMENTS)."""
    config = HTML_CONFIG
    if WORD_HTML.search(html):
        config = WORD_HTML_CONFIG
        html = WORD_EMPTY_PARAGRAPH.sub("<br>", html)
    try:
        rendered = get_annotated_text(html, config)
        text = _quoted(rendered.get("text", ""), rendered.get("label", []))
    except Exception:  # lxml refuses some documents (e.g. only a comment): strip the tags
        text = re.sub(r"<[^>]*>", " ", html)
    text = HTML_LINK.sub(_readable_link, text if isinstance(text, str) else "")
    return "\n".join(line.strip() for line in text.split("\n"))


def _quoted(text: str, labels: list[tuple[int, int, str]]) -> str:
    """Each line inside a quoting element gets one ">" per element it is inside."""
    # Depth changes at each quote's start (+1) and end (-1), swept once in text order.
    changes = sorted(
        change
        for start, end, label in labels
        if label == QUOTE_LABEL
        for change in ((start, 1), (end, -1))
    )
    lines, depth, next_change, offset = [], 0, 0, 0
    for line in text.split("\n"):
        first = offset + len(line) - len(line.lstrip())
        while next_change < len(changes) and changes[next_change][0] <= first:
            depth += changes[next_change][1]
            next_change += 1
        lines.append(f"{'>' * depth} {line.strip()}" if depth and line.strip() else line)
        offset += len(line) + 1
    return "\n".join(lines)


def _readable_link(match: re.Match[str]) -> str:
    label, url = match.group(1).strip(), match.group(2)
    if not label or label in (url, url.removeprefix("mailto:")):
        return label or url
    return f"{label} <{url}>"
