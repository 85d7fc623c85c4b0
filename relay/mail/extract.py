"""The new text of an owner's emailed reply, without the quoted conversation.

Two steps: pick the body part and decode it to text (any charset, any transfer encoding,
HTML converted with inscriptis), then cut away what the owner did not write: our own
notification below REPLY_MARKERS, quoted history, forwarded blocks, "-- " signatures and
"Sent from my iPhone" footers. quotequail and mail-parser-reply find where the history
starts; the rules of our own below fill the gaps they leave (each says which).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message

import quotequail  # type: ignore[import-untyped,unused-ignore]
from inscriptis import get_text  # type: ignore[import-untyped,unused-ignore]
from inscriptis.css_profiles import CSS_PROFILES  # type: ignore[import-untyped,unused-ignore]
from inscriptis.model.config import ParserConfig  # type: ignore[import-untyped,unused-ignore]
from mailparser_reply.constants import MAIL_LANGUAGES  # type: ignore[import-untyped,unused-ignore]

# The composer puts one of these lines above the quoted conversation in both the text and the
# HTML version of every notification: whatever the client does with the quote, nothing the
# owner wrote is ever below it (except inline answers, see _answers_in_quote).
REPLY_MARKERS = ("-- Reply above this line --", "-- Répondez au-dessus de cette ligne --")

# A chat message, not a document: beyond this the text is cut before the quote rules run, so
# that no pathological body can make their regular expressions slow.
MAX_TEXT_CHARS = 100_000

# Declared charsets that are really their superset in practice: mail labelled Latin-1 is most
# often written on Windows (curly quotes, €), and "ascii" text regularly carries 8-bit bytes.
CHARSET_SUPERSETS = {
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
}

# Tried after the declared charset: UTF-8 is what nearly everything sends nowadays, cp1252 is
# what old Windows clients send without saying so, latin-1 decodes any byte (last resort).
FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")

# Firefox's defaults: no extra indentation of nested <div>s (Outlook nests them deeply).
HTML_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=True)

# inscriptis writes links as [text](url); a chat wants "text <url>", or the bare url when the
# text is the url itself (as Outlook makes every typed address).
HTML_LINK = re.compile(r"\[([^\]\n]*)\]\(((?:https?|mailto):[^)\s]*)\)")

# Invisible characters that clients put into text: NBSP and narrow NBSP (French typography
# before ":" and "?", Gmail's "a écrit :") become spaces so the patterns below match; the BOM
# iOS Mail puts at the start of the quoted part goes.
INVISIBLE = str.maketrans({"\u00a0": " ", "\u202f": " ", "\ufeff": None})

# mail-parser-reply's per-language patterns, used as they are. "david" is a piece of software,
# not a language. Its signature and disclaimer rules are not used: they cut at any line that
# starts with "- word" or "Thanks," and would drop lists and real sentences.
REPLY_PARSER_LANGUAGES = tuple(lang for lang in MAIL_LANGUAGES if lang != "david")
REPLY_PARSER_PATTERNS = tuple(
    (re.compile(MAIL_LANGUAGES[lang][key], re.MULTILINE | re.IGNORECASE), key == "from_header")
    for lang in REPLY_PARSER_LANGUAGES
    for key in ("wrote_header", "from_header")
    if MAIL_LANGUAGES[lang].get(key)
)

# Our rule: a header block found by mail-parser-reply counts only with at least this many
# "Label: value" lines. Its patterns accept two (one for Polish) lines of common words such as
# "Para:"/"Fecha:" (Spanish "for"/"date") that an owner may well type; Outlook always writes
# From, Sent, To and Subject.
MIN_HEADER_BLOCK_LINES = 3
LABEL_LINE = re.compile(r"^[>* ]*[^\W\d][\w .'-]{0,24}:", re.UNICODE)

# Our rule: attribution lines ("On <date>, <name> wrote:") in en/fr/de/es with any spacing, so
# also "a écrit:" without space (quotequail wants exactly " a écrit :"), and wrapped onto up to
# three lines (Gmail wraps after "<" of a long display name; quotequail joins two lines).
# mail-parser-reply's Spanish pattern never matches (its negative lookahead is the pattern).
ATTRIBUTION = re.compile(
    r"""^(?:
        On\s.+\swrote                 # Gmail, Apple Mail, Thunderbird, mutt (en)
      | Le\s.+\sa\s+écrit             # fr
      | Am\s.+\sschrieb(?:\s.+)?      # de: "Am 03.03.2025 um 10:15 schrieb Ann <…>:"
      | El\s.+\sescribió              # es
    )\s*:$""",
    re.VERBOSE | re.IGNORECASE,
)
ATTRIBUTION_WRAP_LINES = 3

# Our rule: lines that open a forwarded or original message in languages quotequail misses
# (Outlook fr/de/es "Original Message", Gmail fr/de/es forwards). Matched on the whole line,
# dashes around optional, case-insensitive.
SEPARATOR_PHRASES = (
    "original message",
    "message d'origine",  # Outlook fr
    "ursprüngliche nachricht",  # Outlook de
    "mensaje original",  # Outlook es
    "forwarded message",  # Gmail en
    "message transféré",  # Gmail / Thunderbird fr
    "weitergeleitete nachricht",  # Gmail de
    "mensaje reenviado",  # Gmail es
    "begin forwarded message",  # Apple Mail en
    "début du message réexpédié",  # Apple Mail fr
    "anfang der weitergeleiteten nachricht",  # Apple Mail de
    "inicio del mensaje reenviado",  # Apple Mail es
)
SEPARATOR = re.compile(
    r"^-*\s*(?:" + "|".join(re.escape(p) for p in SEPARATOR_PHRASES) + r")\s*:?\s*-*$",
    re.IGNORECASE,
)
# Outlook.com, OWA and Outlook for iOS draw this rule above the quoted header block.
OUTLOOK_RULE = re.compile(r"^_{20,}$")

# Our rule: Outlook's quoted header block, starting at its From line. mail-parser-reply wants
# exactly "De :" in French (Outlook on Mac writes "De:"), misses the Spanish "Enviado el:" and
# so starts the block late, at "Para:", leaving "De:" and the date in the reply. "*From:*" is
# how some clients render Outlook's bold labels as text.
HEADER_FROM = re.compile(r"^\*?(?:From|De|Von|Van|Da)\s*:", re.IGNORECASE)
HEADER_SENT_LABELS = (
    r"Sent|Date|Envoyé|Date d'envoi|Gesendet|Datum|Enviado(?:\s+el)?|Fecha|Verzonden|Inviato"
)
HEADER_SENT = re.compile(rf"^\*?(?:{HEADER_SENT_LABELS})\s*:", re.IGNORECASE)
HEADER_BLOCK_REACH = 3  # the date line follows From within this many lines (Cc may come first)

# Our rule: trailing footers that mail apps add under what the owner typed. Matched on the
# whole line, case-insensitive, after dropping "<url>" parts (Outlook links its footers).
FOOTERS = re.compile(
    r"""^(?:
        sent\ from\ my\ .{1,40}                                        # iOS, Android (en)
      | sent\ from\ (?:mail|outlook|yahoo\ mail|proton\ mail)\b.{0,40} # Windows Mail, apps
      | get\ outlook\ for\ (?:ios|android)                             # Outlook mobile
      | envoyé\ (?:de|depuis)\ mon\ .{1,40}                            # iOS, Android (fr)
      | envoyé\ (?:de|depuis|à\ partir\ de)\ (?:courrier|outlook|yahoo)\b.{0,40}
      | obtenir\ outlook\ pour\ (?:ios|android)
      | von\ meine[mr]\ .{1,40}\ gesendet                               # iOS (de)
      | gesendet\ von\ (?:meine[mr]|mail|outlook|yahoo)\b.{0,40}
      | (?:holen\ sie\ sich\ )?outlook\ für\ (?:ios|android)(?:\ beziehen|\ herunterladen)?
      | enviado\ desde\ mi\ .{1,40}                                    # iOS, Android (es)
      | enviado\ desde\ (?:correo|outlook|yahoo)\b.{0,40}
      | obtener\ outlook\ para\ (?:ios|android)
    )[.!]?$""",
    re.VERBOSE | re.IGNORECASE,
)
ANGLE_URL = re.compile(r"<(?:https?|mailto):[^>\s]*>")

# "-- " (RFC 3676 signature separator) after trailing whitespace is stripped.
SIGNATURE_SEPARATOR = "--"

# How far below the start of the history to look for the first ">" line that shows the
# history is quoted rather than pasted (start line + two wrapped lines + one blank).
QUOTE_LOOKAHEAD = 4


# ---------------------------------------------------------------- body part and decoding


def reply_text(msg: Message) -> str:
    """The new text the owner wrote in this reply; "" when there is none."""
    return new_text(body_text(msg))


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
    for part in _body_parts(msg):
        if part.get_content_type() == content_type and not _is_attachment(part):
            return part
    return None


def _body_parts(msg: Message) -> Iterator[Message]:
    """Leaf parts in order, not descending into message/rfc822 (a forwarded mail is not ours)."""
    if msg.is_multipart():
        payload = msg.get_payload()
        if isinstance(payload, list) and msg.get_content_maintype() == "multipart":
            for sub in payload:
                if isinstance(sub, Message):
                    yield from _body_parts(sub)
        return
    yield msg


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
    """HTML body as text: inscriptis rendering, links kept readable, layout indentation gone."""
    try:
        text = get_text(html, HTML_CONFIG)
    except Exception:  # lxml refuses some documents (e.g. only a comment): strip the tags
        text = re.sub(r"<[^>]*>", " ", html)
    text = HTML_LINK.sub(_readable_link, text if isinstance(text, str) else "")
    return "\n".join(line.strip() for line in text.split("\n"))


def _readable_link(match: re.Match[str]) -> str:
    label, url = match.group(1).strip(), match.group(2)
    if not label or label in (url, url.removeprefix("mailto:")):
        return label or url
    return f"{label} <{url}>"


# ---------------------------------------------------------------- new text


def new_text(text: str) -> str:
    """What the owner wrote above (or between) the quoted history, normalised."""
    lines = _lines(text[:MAX_TEXT_CHARS])
    start = history_start(lines)
    kept = lines if start is None else lines[:start] + _answers_in_quote(lines[start:])
    kept = [line for line in kept if not _is_quoted(line)]
    kept = _strip_signature_and_footers(kept)
    return normalise("\n".join(kept))


def _lines(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(INVISIBLE)
    return [line.rstrip() for line in text.split("\n")]


def normalise(text: str) -> str:
    """LF line ends, no trailing spaces, at most one blank line in a row, no blank edges."""
    lines = _lines(text)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip("\n")


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _unquoted(line: str) -> str:
    return line.lstrip("> ").strip()


def history_start(lines: list[str]) -> int | None:
    """Index of the first line that is not the owner's new text, or None."""
    found = [
        index
        for index in (
            _marker_line(lines),
            _quotequail_start(lines),
            _reply_parser_start(lines),
            _attribution_start(lines),
            _separator_start(lines),
            _header_block_start(lines),
        )
        if index is not None
    ]
    return min(found, default=None)


def _marker_line(lines: list[str]) -> int | None:
    """Our marker, also quoted ("> -- Reply above…") or inside other text (HTML rendering)."""
    for index, line in enumerate(lines):
        if any(marker in line for marker in REPLY_MARKERS):
            return index
    return None


def _quotequail_start(lines: list[str]) -> int | None:
    """quotequail: "On … wrote:" in several languages (two lines joined), forward and Outlook
    separators, also behind one ">"."""
    try:
        parts = quotequail.quote("\n".join(lines), limit=len(lines) + 1, quote_intro_line=True)
    except Exception:  # a third-party parser must not take the whole reply down
        return None
    if len(parts) != 2:
        return None
    return len(lines) - len(parts[1][1].split("\n"))


def _reply_parser_start(lines: list[str]) -> int | None:
    """mail-parser-reply: attribution lines and Outlook header blocks in 13 languages. Its
    patterns expect stripped lines, as its own parser makes them."""
    text = "\n".join(line.strip() for line in lines)
    starts: list[int] = []
    for pattern, is_header_block in REPLY_PARSER_PATTERNS:
        for match in pattern.finditer(text):
            block = match.group(0)
            if is_header_block and _label_lines(block) < MIN_HEADER_BLOCK_LINES:
                continue
            start = match.start() + len(block) - len(block.lstrip("\n"))
            starts.append(text.count("\n", 0, start))
            break
    return min(starts, default=None)


def _label_lines(block: str) -> int:
    return sum(1 for line in block.split("\n") if LABEL_LINE.match(line))


def _attribution_start(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        joined = ""
        for extra in lines[index : index + ATTRIBUTION_WRAP_LINES]:
            if not _unquoted(extra):  # a wrapped line never spans a blank line
                break
            joined = f"{joined} {_unquoted(extra)}".strip()
            if ATTRIBUTION.match(joined):
                return index
    return None


def _separator_start(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        bare = _unquoted(line)
        if SEPARATOR.match(bare) or OUTLOOK_RULE.match(bare):
            return index
    return None


def _header_block_start(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        if not HEADER_FROM.match(_unquoted(line)):
            continue
        following = lines[index + 1 : index + 1 + HEADER_BLOCK_REACH]
        if any(HEADER_SENT.match(_unquoted(other)) for other in following):
            return index
    return None


def _answers_in_quote(history: list[str]) -> list[str]:
    """Inline answers: the owner's unquoted lines written between or below the quoted lines
    (Thunderbird's default "reply below the quote", mutt, interleaved answers).

    Only when the history is quoted with ">" right from its start: a history pasted unquoted
    under a header block (Outlook) has no such answers, everything in it is history. An
    unquoted marker line ends the search: all that follows is our notification. The quoted
    questions themselves are not kept: the visitor sees them just above in the chat."""
    first_quoted = next(
        (i for i, line in enumerate(history[:QUOTE_LOOKAHEAD]) if _is_quoted(line)), None
    )
    if first_quoted is None:
        return []
    before_quote = history[:first_quoted]
    if any(_marker_line([line]) is not None for line in before_quote):
        return []
    answers: list[str] = []
    for line in history[first_quoted:]:
        if _is_quoted(line):
            answers.append("")  # keeps separate answers apart as paragraphs
        elif _marker_line([line]) is not None:
            break
        else:
            answers.append(line)
    return answers


def _strip_signature_and_footers(lines: list[str]) -> list[str]:
    """Cut at the first "-- " signature separator, then drop trailing app footers."""
    if SIGNATURE_SEPARATOR in lines:
        lines = lines[: lines.index(SIGNATURE_SEPARATOR)]
    lines = list(lines)
    while lines and (not lines[-1].strip() or _is_footer(lines[-1])):
        lines.pop()
    return lines


def _is_footer(line: str) -> bool:
    return bool(FOOTERS.match(ANGLE_URL.sub("", line).strip()))
