"""The new text of an owner's emailed reply, without the quoted conversation.

Works on the body as text (reading.py decodes it): cuts away what the owner did not write,
that is our own notification below REPLY_MARKERS, quoted history, forwarded blocks, "-- "
signatures and "Sent from my iPhone" footers. quotequail and mail-parser-reply find where the
history starts; the rules of our own below fill the gaps they leave (each says which).
"""

from __future__ import annotations

import re

import quotequail  # type: ignore[import-untyped,unused-ignore]
from mailparser_reply.constants import MAIL_LANGUAGES  # type: ignore[import-untyped,unused-ignore]

# The composer puts one of these lines above the quoted conversation in both the text and the
# HTML version of every notification: whatever the client does with the quote, nothing the
# owner wrote is ever below it (except inline answers, see _answers_in_quote).
REPLY_MARKERS = ("-- Reply above this line --", "-- Répondez au-dessus de cette ligne --")

# A chat message, not a document: beyond this the text is cut before the quote rules run, so
# that no pathological body can make their regular expressions slow.
MAX_TEXT_CHARS = 100_000

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

# Outlook's quoted header block: "From:" and "Sent:" lines (also bold, "*From:*", or quoted)
# in the languages of mail-parser-reply's patterns, then To, Subject, maybe Cc.
FROM_LABELS = r"From|De|Von|Van|Da|Od|Från|Fra|发件人|보낸\s?사람"
SENT_LABELS = (
    r"Sent|Date|Envoyé|Date d'envoi|Gesendet|Datum|Enviado(?:\s+el)?|Fecha|Verzonden|Inviato"
    r"|Wysłano|Odesláno|Skickat|Sendt|发送时间|보낸\s?날짜"
)
FROM_LABEL = re.compile(rf"^\*?(?:{FROM_LABELS})\s*\*?\s*:", re.IGNORECASE)
SENT_LABEL = re.compile(rf"^\*?(?:{SENT_LABELS})\s*\*?\s*:", re.IGNORECASE)
LABEL_LINE = re.compile(r"^\*?[^\W\d][\w .'-]{0,24}:")

# Our rule: a header block found by mail-parser-reply counts only if it has a From line, a
# Sent line and at least three "Label:" lines in all. Its patterns accept two lines (one for
# Polish) of any of its labels, common words such as "Para:"/"Fecha:"/"Asunto:" (Spanish
# "for"/"date"/"subject") or "De :"/"À :" (French "from"/"to": opening hours) that an owner
# may well type; Outlook always writes From, Sent, To and Subject.
MIN_HEADER_BLOCK_LINES = 3

# Our rule: the same block found directly, from its From line when a Sent line follows within
# HEADER_BLOCK_REACH lines. mail-parser-reply's French pattern needs a space before the colon
# ("De :", not "De:"), and it misses Outlook's Spanish "Enviado el:", so it starts that block
# late, at "Para:", leaving "De:" and the date in the reply.
HEADER_BLOCK_REACH = 3  # Sent follows From within this many lines (Cc may come first)

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

# Our rule: trailing footers that mail apps add under what the owner typed. Matched on the
# whole line, case-insensitive, after dropping "<url>" parts (Outlook links its footers).
# A device or app name in a footer: words, no sentence punctuation ("Sent from my iPhone? No,
# from my laptop." is a sentence, not a footer).
DEVICE = r"[\w .'’&()+-]{1,40}"
FOOTERS = re.compile(
    r"""^(?:
        sent\ from\ my\ DEVICE                                         # iOS, Android (en)
      | sent\ from\ (?:mail|outlook|yahoo\ mail|proton\ mail)\b(?:\ DEVICE)?  # Windows Mail, apps
      | get\ outlook\ for\ (?:ios|android)                             # Outlook mobile
      | envoyé\ (?:de|depuis)\ mon\ DEVICE                             # iOS, Android (fr)
      | envoyé\ (?:de|depuis|à\ partir\ de)\ (?:courrier|outlook|yahoo)\b(?:\ DEVICE)?
      | obtenir\ outlook\ pour\ (?:ios|android)
      | von\ meine[mr]\ DEVICE\ gesendet                                # iOS (de)
      | gesendet\ von\ (?:meine[mr]|mail|outlook|yahoo)\b(?:\ DEVICE)?
      | (?:holen\ sie\ sich\ )?outlook\ für\ (?:ios|android)(?:\ beziehen|\ herunterladen)?
      | enviado\ desde\ mi\ DEVICE                                     # iOS, Android (es)
      | enviado\ desde\ (?:correo|outlook|yahoo)\b(?:\ DEVICE)?
      | obtener\ outlook\ para\ (?:ios|android)
    )[.!]?$""".replace("DEVICE", DEVICE),
    re.VERBOSE | re.IGNORECASE,
)
ANGLE_URL = re.compile(r"<(?:https?|mailto):[^>\s]*>")

# "-- " (RFC 3676 signature separator) after trailing whitespace is stripped.
SIGNATURE_SEPARATOR = "--"

# How far below the start of the history to look for the first ">" line that shows the
# history is quoted rather than pasted (start line + two wrapped lines + one blank).
QUOTE_LOOKAHEAD = 4


# ---------------------------------------------------------------- new text


def new_text(text: str) -> str:
    """What the owner wrote above (or between) the quoted history, normalised."""
    lines = _lines(text[:MAX_TEXT_CHARS])
    start = history_start(lines)
    kept = lines if start is None else lines[:start] + _answers_in_quote(lines[start:])
    # "> " lines are someone else's words, also without an attribution line above them.
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
    """Index of the first line that is not the owner's new text, or None. Below our marker
    nothing is the owner's (see _answers_in_quote), so the other rules look above it only."""
    marker = _marker_line(lines)
    above = lines if marker is None else lines[: marker + 1]
    found = [
        index
        for index in (
            marker,
            _quotequail_start(above),
            _reply_parser_start(above),
            _attribution_start(above),
            _separator_start(above),
            _header_block_start(above),
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
            if is_header_block and not _is_outlook_block(block):
                continue
            start = match.start() + len(block) - len(block.lstrip("\n"))
            starts.append(text.count("\n", 0, start))
            break
    return min(starts, default=None)


def _is_outlook_block(block: str) -> bool:
    lines = [_unquoted(line) for line in block.split("\n")]
    return (
        sum(1 for line in lines if LABEL_LINE.match(line)) >= MIN_HEADER_BLOCK_LINES
        and any(FROM_LABEL.match(line) for line in lines)
        and any(SENT_LABEL.match(line) for line in lines)
    )


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
        if not FROM_LABEL.match(_unquoted(line)):
            continue
        following = lines[index + 1 : index + 1 + HEADER_BLOCK_REACH]
        if any(SENT_LABEL.match(_unquoted(other)) for other in following):
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
