"""Reading inbound mail: what an email that came back to r+TAG@<reply domain> says.

Pure functions over raw RFC 5322 bytes: no I/O, no store, no configuration. `inspect` tells
an owner's reply from an automatic reply or a bounce, finds the conversation tag and the
sender, and extracts only the new text of a reply (see extract.py). Whether the sender may
post to that conversation is decided elsewhere: nothing here trusts the From header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from relay.mail.classify import LOOP_HEADER, Headers, classify
from relay.mail.extract import REPLY_MARKERS, reply_text

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

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "body": self.body,
            "token": self.token,
            "from": self.sender,
            "message_id": self.message_id,
        }


def inspect(raw: bytes) -> Inspection:
    """Read one inbound email. Raises UnreadableEmail only for bytes that are no email."""
    msg = _parse(raw)
    headers = _headers(msg)
    sender = _sender(headers)
    verdict = classify(msg, headers, sender)
    return Inspection(
        kind=verdict.kind,
        body=reply_text(msg) if verdict.kind == "reply" else "",
        token=_token(headers),
        sender=sender,
        message_id=_message_id(headers),
        bounced=verdict.bounced,
        hard_bounce=verdict.hard_bounce,
    )


def tag_of(address: str) -> str | None:
    """The tag of an r+TAG@domain address, lowercased ("R+AbC@x.example" -> "abc"); None for
    any other address. Also accepts "Name <r+tag@domain>"."""
    bare = parseaddr(address)[1] if "<" in address else address.strip()
    match = TAG_ADDRESS.fullmatch(bare)
    return match.group(1).lower() if match else None


def _parse(raw: bytes) -> Message:
    if not raw or not bytes(raw).strip():
        raise UnreadableEmail("empty message")
    msg = BytesParser(policy=policy.default).parsebytes(bytes(raw))
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
