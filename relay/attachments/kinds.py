"""What a file is, judged from its bytes alone: never its name, never what the client says.

`judge` knows a short list of kinds (raster images, PDF, UTF-8 plain text, office
documents) and refuses everything else: markup a browser could render (HTML, SVG, XML),
scripts, executables, archives, and files that look like two things at once.
"""

from __future__ import annotations

import codecs
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import filetype

Reason = Literal["type", "image", "too_large"]


@dataclass(frozen=True)
class Kind:
    mime: str
    extension: str  # without the dot
    image: bool  # a raster image we re-encode and may show inline


class Refused(ValueError):
    """A file Porch will not take; `reason` is a short machine word, str() a sentence."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


JPEG = Kind("image/jpeg", "jpg", image=True)
PNG = Kind("image/png", "png", image=True)
GIF = Kind("image/gif", "gif", image=True)
WEBP = Kind("image/webp", "webp", image=True)
PDF = Kind("application/pdf", "pdf", image=False)
TEXT = Kind("text/plain", "txt", image=False)
DOCX = Kind(
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", image=False
)
XLSX = Kind(
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", image=False
)
PPTX = Kind(
    "application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx", image=False
)
ODT = Kind("application/vnd.oasis.opendocument.text", "odt", image=False)
ODS = Kind("application/vnd.oasis.opendocument.spreadsheet", "ods", image=False)
ODP = Kind("application/vnd.oasis.opendocument.presentation", "odp", image=False)

# Every kind judge() can return, by mime. Legacy Word, Excel and PowerPoint files (.doc,
# .xls, .ppt) are not among them: telling them apart means parsing the compound file's
# directory (magic numbers only guess), and they are the classic carrier of macro malware.
KINDS = {
    kind.mime: kind for kind in (JPEG, PNG, GIF, WEBP, PDF, TEXT, DOCX, XLSX, PPTX, ODT, ODS, ODP)
}
ALLOWED: frozenset[str] = frozenset(KINDS)

# What a site may narrow its files to (its `file_types` setting), by name.
FAMILIES: dict[str, frozenset[str]] = {
    "images": frozenset(kind.mime for kind in (JPEG, PNG, GIF, WEBP)),
    "pdf": frozenset({PDF.mime}),
    "text": frozenset({TEXT.mime}),
    "office": frozenset(kind.mime for kind in (DOCX, XLSX, PPTX, ODT, ODS, ODP)),
}


def allowed_in(families: list[str]) -> frozenset[str]:
    """The mimes of these families (a site's `file_types`)."""
    return frozenset().union(*(FAMILIES[family] for family in families))


ACCEPTED = "images (JPEG, PNG, GIF, WebP), PDF, plain text and office documents"

# Read at once to tell the kind; plain text is then checked on, this much at a time.
HEAD_SIZE = 64 * 1024

# Browsers that sniff look at the "resource header", at most 1445 bytes
# (https://mimesniff.spec.whatwg.org/#reading-the-resource-header).
SNIFF_WINDOW = 1445

# Markup that must never hide in the head of an image, PDF or office document. Such a
# polyglot (GIF89a then <script>, the classic way round a CSP's script-src 'self') is
# harmless served with its own type and nosniff, and re-encoding destroys it in images;
# but the original bytes pass through storage and an old or lax reader first, and no
# honest file carries these tags there, so it costs nothing to refuse. Not `<?xml`: XMP
# metadata in a photo's head may legitimately start with it.
POLYGLOT_MARKERS = (b"<script", b"<html", b"<!doctype", b"<iframe", b"<body", b"<head", b"<svg")

# Text a sniffing browser would render as HTML or XML: the WHATWG "HTML patterns", each
# followed by a space, `>` (or, stricter than the spec, any whitespace or `/`), plus SVG.
# https://mimesniff.spec.whatwg.org/#identifying-a-resource-with-an-unknown-mime-type
MARKUP_TAGS = (
    "!doctype", "html", "head", "script", "iframe", "h1", "div", "font", "table", "a",
    "style", "title", "b", "body", "br", "p", "svg",
)  # fmt: skip
TAG_ENDS = ("", " ", "\t", "\n", "\r", "\f", ">", "/")
MARKUP_PREFIXES = ("<!--", "<?xml")

EXECUTABLE_MAGIC = (
    b"\x7fELF",  # Linux, BSD
    b"\xfe\xed\xfa\xce",  # Mach-O, 32 and 64 bit, both byte orders
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # a universal Mach-O binary (and a Java class)
)  # A Windows PE starts with "MZ", two letters a sentence may start with: its header
# always holds NUL bytes, which the text check refuses.

# Office documents are zips: enough entries for a long deck, not for a zip of a disk.
# zipfile reads the whole central directory before we can count it, a cost bounded by
# the upload's size limit; nothing is ever extracted.
MAX_ZIP_ENTRIES = 10_000
OOXML_FAMILIES = {"word/": DOCX, "xl/": XLSX, "ppt/": PPTX}
ODF_MIMES = {kind.mime: kind for kind in (ODT, ODS, ODP)}
ODF_MIMETYPE_LIMIT = 100  # the `mimetype` entry holds one short line
ZIP_ENCRYPTED = 0x1  # general purpose flag bit 0 (APPNOTE.TXT 4.4.4)
VBA_PROJECT = "vbaproject.bin"  # an OOXML document's macros, wherever the part is
ODF_MACROS = ("Basic/", "Scripts/")  # an ODF document's Basic and script macros


def judge(path: Path, *, allowed: frozenset[str] = ALLOWED) -> Kind:
    """The kind of the file at `path`, from its content; Refused("type") if it is none
    of ours or not in `allowed` (a site's narrower list)."""
    with path.open("rb") as file:
        head = file.read(HEAD_SIZE)
        if not head:
            raise Refused("type", "The file is empty.")
        kind = _binary_kind(head, path)
        if kind is None:
            _check_text(head, file)
            kind = TEXT
    if kind.mime not in allowed:
        raise Refused("type", f"{kind.extension.upper()} files are not accepted here.")
    return kind


def _binary_kind(head: bytes, path: Path) -> Kind | None:
    """An allowed binary kind by its magic number, None for what may be text."""
    kind = None
    if head.startswith(b"\xff\xd8\xff"):
        kind = JPEG
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = PNG
    elif head.startswith((b"GIF87a", b"GIF89a")):
        kind = GIF
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind = WEBP
    elif head.startswith(b"%PDF-"):
        kind = PDF
    elif head.startswith(b"PK\x03\x04"):
        kind = _office_kind(path)
    elif head.startswith(EXECUTABLE_MAGIC):
        raise Refused("type", f"Programs are not accepted, only {ACCEPTED}.")
    if kind is not None and any(
        marker in head[:SNIFF_WINDOW].lower() for marker in POLYGLOT_MARKERS
    ):
        raise Refused(
            "type", f"This {kind.extension.upper()} file also holds web page markup; not accepted."
        )
    return kind


def _office_kind(path: Path) -> Kind:
    """A zip is accepted only as an office document, proven by its entries' names."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                raise Refused("type", f"The document has more than {MAX_ZIP_ENTRIES} parts.")
            names = {entry.filename for entry in entries}
            odf = _odf_kind(archive, names)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
        raise Refused("type", "The file looks like a zip archive but cannot be read.") from error
    if any(entry.flag_bits & ZIP_ENCRYPTED for entry in entries):
        raise Refused("type", "Encrypted documents are not accepted.")
    found = {odf} if odf else set()
    if "[Content_Types].xml" in names:
        found |= {
            kind for top, kind in OOXML_FAMILIES.items() if any(n.startswith(top) for n in names)
        }
    if len(found) != 1:  # a plain zip, or one dressed as two documents at once
        raise Refused("type", f"Zip archives are not accepted, only {ACCEPTED}.")
    if any(name.lower().endswith(VBA_PROJECT) or name.startswith(ODF_MACROS) for name in names):
        raise Refused("type", "Documents with macros are not accepted.")
    return found.pop()


def _odf_kind(archive: zipfile.ZipFile, names: set[str]) -> Kind | None:
    if "mimetype" not in names:
        return None
    entry = archive.getinfo("mimetype")
    if entry.file_size > ODF_MIMETYPE_LIMIT:
        return None
    with archive.open(entry) as stored:
        mime = stored.read(ODF_MIMETYPE_LIMIT).decode("ascii", errors="replace").strip()
    return ODF_MIMES.get(mime)


def _check_text(head: bytes, file: BinaryIO) -> None:
    """Refuse unless the whole file is UTF-8 without NUL, and neither markup nor a script."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    chunk = head
    try:
        start = decoder.decode(head)
        while chunk:
            if b"\x00" in chunk:
                raise Refused("type", _not_text(head))
            chunk = file.read(HEAD_SIZE)
            decoder.decode(chunk, final=not chunk)
    except UnicodeDecodeError as error:
        raise Refused("type", _not_text(head)) from error
    start = start.lstrip("\ufeff \t\n\r\f").lower()
    if start.startswith(MARKUP_PREFIXES) or any(
        start.startswith(f"<{tag}") and start[len(tag) + 1 : len(tag) + 2] in TAG_ENDS
        for tag in MARKUP_TAGS
    ):
        raise Refused("type", "Web pages, SVG and XML are not accepted; send them as a PDF.")
    if start.startswith("#!"):
        raise Refused("type", f"Scripts are not accepted, only {ACCEPTED}.")


def _not_text(head: bytes) -> str:
    """Why a file that is none of our binary kinds is not text either, naming it if we can."""
    guessed = filetype.guess(head)
    if guessed is not None:
        return f"{guessed.extension.upper()} files are not accepted, only {ACCEPTED}."
    return f"The file is none of {ACCEPTED} (text must be UTF-8)."
