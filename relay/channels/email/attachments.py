"""The files an inbound email carries: its attachments, and the images in its body that
are content (a photo pasted into the text) rather than decoration (a signature's logo).

Pure, like reading.py: MIME parts in, names and bytes out. What a file really is, and
whether the relay takes it, is judged later from its bytes (relay/attachments/kinds.py):
the type here is only what the mail declares, for `porch mail inspect`.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass, field
from email.message import Message

from relay.attachments.uploads import clean_name
from relay.channels.email.classify import mime_parts
from relay.inputs import MAX_ATTACHMENTS

# Our rule for decoration: an image the HTML body shows by its Content-ID ("cid:") and
# smaller than this is part of the layout (a signature's logo, social icons, Outlook's
# image001.png), not something the sender means to send. A photo is tens of kilobytes
# at the very least, even shrunk by a phone's mail app; an image the sender attached,
# or pasted without the HTML referring to it, is always a file.
DECORATION_BYTES = 10 * 1024

# Parts that are the mail's own machinery, never something a person attached: the
# signatures and keys of S/MIME and OpenPGP (Thunderbird attaches the sender's key),
# delivery and read reports.
MACHINERY = frozenset(
    {
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
        "application/pgp-encrypted",
        "application/pgp-keys",
        "message/delivery-status",
        "message/disposition-notification",
    }
)
# An email attached to the email (forwarded "as attachment"): passed on as a file, so
# that the relay refuses it with a note in the thread rather than nothing at all.
ATTACHED_MAIL = frozenset({"message/rfc822", "message/global"})

# One message carries at most MAX_ATTACHMENTS files; the channel's accept step notes
# each one past that in the thread. Past twice as many, a mail is not a person's: the
# rest are not even saved.
MAX_FILES = 2 * MAX_ATTACHMENTS

CID_REFERENCE = re.compile(r"cid:([^\"'\s<>()]+)", re.IGNORECASE)


@dataclass(frozen=True)
class MailFile:
    name: str  # decoded (RFC 2231, encoded words), no path; from its type when it had none
    type: str  # as the mail declares it, lowercased
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "size": self.size}


def files_of(msg: Message) -> tuple[MailFile, ...]:
    """The files of a mail, in order; its text and HTML bodies and decoration are not."""
    parts = list(mime_parts(msg))
    shown = _cids_shown(parts)
    found: list[MailFile] = []
    for part in parts:
        if len(found) == MAX_FILES:
            break
        if part.is_multipart() and part.get_content_type() not in ATTACHED_MAIL:
            continue
        file = _file(part)
        # Some clients put the same image in each alternative of the body: sent once.
        if file is not None and not _decoration(part, file, shown) and file not in found:
            found.append(file)
    return tuple(found)


def _file(part: Message) -> MailFile | None:
    """The part as a file, or None when it is a body, machinery, or cannot be decoded."""
    kind = part.get_content_type()
    if kind in MACHINERY:
        return None
    name = _filename(part)
    disposition = part.get_content_disposition()
    # Text without a name, not marked as an attachment, is a body (or an alternative
    # of it, or Apple Mail's text after an inline photo): reading.py reads the first.
    if part.get_content_maintype() == "text" and name is None and disposition != "attachment":
        return None
    data = _attached_mail(part) if kind in ATTACHED_MAIL else _payload(part)
    if data is None:
        return None
    return MailFile(clean_name(name) if name else _name_for(kind), kind, data)


def _filename(part: Message) -> str | None:
    """Content-Disposition's filename, else Content-Type's name, decoded; None if blank.
    The email package undoes RFC 2231 and the encoded words that clients put there
    against the RFC (Outlook, Gmail) alike."""
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:  # a parameter that does not parse: as good as no name
        return None
    return (name.strip() or None) if isinstance(name, str) else None


def _name_for(kind: str) -> str:
    """A name for a part that came without one: "image.jpg", "file.pdf"."""
    stem = "image" if kind.startswith("image/") else "file"
    return stem + (mimetypes.guess_extension(kind, strict=False) or "")


def _payload(part: Message) -> bytes | None:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # the email package can choke on broken base64 or QP
        return None
    return data if isinstance(data, bytes) else None


def _attached_mail(part: Message) -> bytes | None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        return None
    try:
        return inner.as_bytes()
    except Exception:  # headers the generator cannot write back
        return None


def _cids_shown(parts: list[Message]) -> set[str]:
    """The Content-IDs the mail's HTML shows, lowercased, without angle brackets. Only
    ASCII matters in a cid, so any charset reads them."""
    shown: set[str] = set()
    for part in parts:
        if part.get_content_type() != "text/html" or part.get_content_disposition() == "attachment":
            continue
        html = (_payload(part) or b"").decode("latin-1")
        shown.update(match.lower() for match in CID_REFERENCE.findall(html))
    return shown


def _decoration(part: Message, file: MailFile, shown: set[str]) -> bool:
    try:
        content_id = str(part.get("content-id", "")).strip().strip("<>").lower()
    except Exception:  # a header the email package cannot parse: no usable id
        return False
    return (
        file.type.startswith("image/")
        and bool(content_id)
        and content_id in shown
        and file.size < DECORATION_BYTES
    )
