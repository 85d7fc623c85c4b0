"""The new text of an owner's emailed reply, without the quoted conversation.

Works on the body as text (reading.py decodes it): cuts away what the owner did not write,
that is our own notification below REPLY_MARKERS, quoted history, forwarded blocks, "-- "
signatures, then "Sent from my iPhone" footers and disclaimers (footers.py). quotequail and
mail-parser-reply find where the history starts; the rules of our own below fill the gaps
they leave (each says which).
"""

from __future__ import annotations

import re

import quotequail  # type: ignore[import-untyped,unused-ignore]
from mailparser_reply.constants import MAIL_LANGUAGES  # type: ignore[import-untyped,unused-ignore]

from relay.channels.email.footers import strip_trailing

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
# in the languages of mail-parser-reply's patterns, then To, Subject, maybe Cc. "Data" is
# Italian, Portuguese and Polish, "Enviada" Portuguese (Portugal), "Verstuurd" Dutch.
FROM_LABELS = r"From|De|Von|Van|Da|Od|Från|Fra|发件人|보낸\s?사람"
SENT_LABELS = (
    r"Sent|Date|Envoyé|Date d'envoi|Gesendet|Datum|Enviado(?:\s+el)?|Enviada|Fecha|Data"
    r"|Verzonden|Verstuurd|Inviato|Wysłano|Odesláno|Skickat|Sendt|发送时间|보낸\s?날짜"
)
FROM_LABEL = re.compile(rf"^\*?(?:{FROM_LABELS})\s*\*?\s*:", re.IGNORECASE)
SENT_LABEL = re.compile(rf"^\*?(?:{SENT_LABELS})\s*\*?\s*:", re.IGNORECASE)
LABEL_LINE = re.compile(r"^\*?[^\W\d][\w .'-]{0,24}:")

# Lines are cut to this length before mail-parser-reply's patterns see them: some of them
# backtrack quadratically on one long line ("On 1 1 1 … 1." of 100,000 characters takes
# minutes), and no header or attribution line is nearly this long.
REPLY_PARSER_LINE_CHARS = 1000

# Our rule: a header block counts only if it has a From line, a Sent line and at least three
# "Label:" lines in all. mail-parser-reply's patterns accept two lines (one for Polish) of any
# of its labels, common words such as "Para:"/"Fecha:"/"Asunto:" (Spanish "for"/"date"/
# "subject"), "De :"/"À :" (French "from"/"to": opening hours) or "De:"/"Data:" (Portuguese
# "from"/"date") that an owner may well type; Outlook always writes From, Sent, To, Subject.
MIN_HEADER_BLOCK_LINES = 3
# Our rule: and its Sent line holds a year or a time, as Outlook's always does ("Sent: Monday,
# March 3, 2025 10:15 AM"): "De: 10h / Data: sábado / Para: 20 pessoas" is an owner's order.
YEAR = re.compile(r"\b(?:19|20)\d{2}\b")

# Our rule: the same block found directly, from its From line when a Sent line follows within
# HEADER_BLOCK_REACH lines. mail-parser-reply's French pattern needs a space before the colon
# ("De :", not "De:"), it misses Outlook's Spanish "Enviado el:" and has no Italian, Dutch or
# Portuguese block, so it starts such blocks late or not at all.
HEADER_BLOCK_REACH = 3  # Sent follows From within this many lines (Cc, Reply-To may come first)

# Our rule: attribution lines ("On <date>, <name> wrote:") in en/fr/de/es with any spacing, so
# also "a écrit:" without space (quotequail wants exactly " a écrit :"), and wrapped onto up to
# three lines (Gmail wraps after "<" of a long display name; quotequail joins two lines).
# Zoho writes "---- On <date> <name> wrote ----". mail-parser-reply's Spanish pattern never
# matches (its negative lookahead is the pattern).
ATTRIBUTION = re.compile(
    r"""^(?:-{2,}\s*)?(?:
        On\s.+\swrote                 # Gmail, Apple Mail, Thunderbird, mutt, Zoho (en)
      | Le\s.+\sa\s+écrit             # fr
      | Am\s.+\sschrieb(?:\s.+)?      # de: "Am 03.03.2025 um 10:15 schrieb Ann <…>:"
      | El\s.+\sescribió              # es
    )\s*(?::|-{2,})$""",
    re.VERBOSE | re.IGNORECASE,
)
ATTRIBUTION_WRAP_LINES = 3

# Our rule: any other attribution, in any order and in the languages of the mail apps we know
# of: a line (wrapped onto up to three) that ends with "wrote:" or its translation, maybe
# followed by a German Google date ("schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:") or a
# Scandinavian name and address ("skrev Ann <ann@x.example>:"), and that names an email
# address, a time or a date ("Ann wrote:" alone is an owner's sentence). Android Gmail's
# "23 mar 2017 21:25 "Ann" <ann@x.example> napisał(a):", Eudora's "At 6/16/2016 08:32 PM,
# you wrote:", Google Inbox's "Ann <ann@x.example> schrieb:".
WROTE = (
    r"wrote|a\s+écrit|schrieb|escribió|ha\s+scritto|scrisse|schreef|geschreven|escreveu"
    r"|napisał(?:\(a\)|a)?|написал(?:\(а\)|а)?|написав(?:\(ла\))?|пише|skrev|kirjoitti|írta"
    r"|napsal(?:\(a\)|a)?|yazdı"
)
WRITTEN = re.compile(
    rf"(?:^|\s)(?:{WROTE})(?:\s+am\s.{{1,50}}|\s+[^:<>]{{0,80}}<[^<>]{{1,100}}>)?\s*:$",
    re.IGNORECASE,
)
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
TIME = re.compile(r"\b\d{1,2}:\d{2}\b")
DATE = re.compile(
    r"""\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b        # 6/16/2016, 03.03.2025
      | \b\d{4}-\d{2}-\d{2}\b                      # 2025-03-03
      | \b\d{1,2}\.?\s+[^\W\d]{3,}\.?\s+\d{4}\b     # 6 октября 2014, 3. März 2025
      | \b[^\W\d]{3,}\.?\s+\d{1,2},?\s+\d{4}\b""",  # Mar 3, 2025
    re.VERBOSE,
)
# An attribution is one line, however wrapped: past this it is a paragraph ending in a colon.
ATTRIBUTION_MAX_CHARS = 300
# A line that ends a sentence is not the start of a wrapped attribution below it ("28." and
# "Apr." in a German Google date are not sentence ends, "email." and "then..." are): it ends
# with "!" or "?", or with "." after a word of at least this many letters.
SENTENCE_WORD_LETTERS = 4
# Gmail sometimes breaks an attribution apart with blank lines ("On Thu, 31 Mar 2016 at 11:16
# Ann", "", "<", "mailto:…", "> wrote:"): an attribution found by the rules above, or a line
# that is only "wrote:", also takes the line opening with "On" and a number at most this many
# lines above it, across blank lines only.
BROKEN_ATTRIBUTION_REACH = 3
LONE_WROTE = re.compile(rf"^(?:{WROTE})\s*:$", re.IGNORECASE)
# Gmail until 2016: "2016-03-03 17:21 GMT+01:00 Ann <ann@x.example>:", often wrapped.
GMAIL_ISO_ATTRIBUTION = re.compile(r"^\d{4}-\d{2}-\d{2}\s+\d{1,2}:\d{2}\s+GMT[+-]\d{1,2}:?\d{2}\b")

# Our rule: lines that open a forwarded or original message in languages quotequail misses
# (Outlook's "Original Message", Gmail's and Apple Mail's forwards). Matched on the whole
# line, dashes (and Outlook's bold "*") around optional, case-insensitive.
ORIGINAL_PHRASES = (
    "original message",
    "message d'origine",  # Outlook fr
    "ursprüngliche nachricht",  # Outlook de
    "mensaje original",  # Outlook es
    "messaggio originale",  # Outlook it
    "oorspronkelijk bericht",  # Outlook nl
    "mensagem original",  # Outlook pt
)
FORWARD_PHRASES = (
    "forwarded message",  # Gmail en
    "message transféré",  # Gmail / Thunderbird fr
    "weitergeleitete nachricht",  # Gmail de
    "mensaje reenviado",  # Gmail es
    "messaggio inoltrato",  # Gmail it
    "doorgestuurd bericht",  # Gmail nl
    "mensagem encaminhada",  # Gmail pt
    "begin forwarded message",  # Apple Mail en
    "début du message réexpédié",  # Apple Mail fr
    "anfang der weitergeleiteten nachricht",  # Apple Mail de
    "inicio del mensaje reenviado",  # Apple Mail es
    "inizio messaggio inoltrato",  # Apple Mail it
    "begin doorgestuurd bericht",  # Apple Mail nl
    "início da mensagem reencaminhada",  # Apple Mail pt
)


def _separator(phrases: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(phrase) for phrase in phrases)
    return re.compile(rf"^\*?-*\s*(?:{alternatives})\s*:?\s*-*\*?$", re.IGNORECASE)


SEPARATOR = _separator(ORIGINAL_PHRASES + FORWARD_PHRASES)
FORWARD_SEPARATOR = _separator(FORWARD_PHRASES)
# Outlook.com, OWA and Outlook for iOS draw this rule above the quoted header block.
OUTLOOK_RULE = re.compile(r"^_{20,}$")

# Our rule: a forward with nothing written above it and no notification of ours in it is
# what the owner means to send (a supplier's answer, a message for the visitor): its text is
# kept, without its header block. Nested forwards are unwrapped this many times at most.
FORWARDS_UNWRAPPED = 3

# "-- " (RFC 3676 signature separator) after trailing whitespace is stripped.
SIGNATURE_SEPARATOR = "--"

# How far below the start of the history to look for the first ">" line that shows the
# history is quoted rather than pasted (start line + two wrapped lines + one blank).
QUOTE_LOOKAHEAD = 4


# ---------------------------------------------------------------- new text


def new_text(text: str) -> str:
    """What the owner wrote above (or between) the quoted history, normalised."""
    lines = _lines(text[:MAX_TEXT_CHARS])
    for _ in range(FORWARDS_UNWRAPPED):
        forwarded = _forwarded_alone(lines)
        if forwarded is None:
            break
        lines = forwarded
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
    patterns expect stripped lines, as its own parser makes them, and short ones (see
    REPLY_PARSER_LINE_CHARS)."""
    text = "\n".join(line.strip()[:REPLY_PARSER_LINE_CHARS] for line in lines)
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
        and any(SENT_LABEL.match(line) and _is_dated(line) for line in lines)
    )


def _is_dated(line: str) -> bool:
    return bool(YEAR.search(line) or TIME.search(line))


def _attribution_start(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        bare = _unquoted(line)
        if not bare:
            continue
        if GMAIL_ISO_ATTRIBUTION.match(bare) or LONE_WROTE.match(bare):
            return _broken_opening(lines, index)
        joined = ""
        for extra in lines[index : index + ATTRIBUTION_WRAP_LINES]:
            if not _unquoted(extra) or _ends_sentence(joined):
                break  # a wrapped line never spans a blank line or a sentence's end
            joined = f"{joined} {_unquoted(extra)}".strip()
            if ATTRIBUTION.match(joined):
                return index
            if _is_dated_attribution(joined):
                return _broken_opening(lines, index)
        if _quote_follows(lines, index) and WRITTEN.search(bare):
            return index  # "Ann wrote:" right above "> " lines
    return None


def _broken_opening(lines: list[str], index: int) -> int:
    """index, or the start of the attribution Gmail broke apart above it."""
    for above in range(index - 1, max(index - 1 - BROKEN_ATTRIBUTION_REACH, -1), -1):
        bare = _unquoted(lines[above])
        if bare:
            return above if _opens_broken_attribution(bare) else index
    return index


def _opens_broken_attribution(line: str) -> bool:
    """ "On <date with numbers> <name>", not a sentence (string tests: lines may be long)."""
    return (
        line.startswith("On ")
        and any(character.isdigit() for character in line)
        and not line.endswith((".", "!", "?", ":"))
    )


def _ends_sentence(text: str) -> bool:
    word = text.rstrip(".!?")
    if word == text:
        return False
    letters = word[-SENTENCE_WORD_LETTERS:]
    return text.endswith(("!", "?")) or (
        len(letters) == SENTENCE_WORD_LETTERS and letters.isalpha()
    )


def _is_dated_attribution(text: str) -> bool:
    return (
        len(text) <= ATTRIBUTION_MAX_CHARS
        and bool(WRITTEN.search(text))
        and any(pattern.search(text) for pattern in (ADDRESS, TIME, DATE))
    )


def _quote_follows(lines: list[str], index: int) -> bool:
    following = [line for line in lines[index + 1 : index + 3] if line.strip()]
    return bool(following) and _is_quoted(following[0])


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
        if _is_outlook_block("\n".join(lines[index : index + 1 + HEADER_BLOCK_REACH])):
            return index
    return None


def _forwarded_alone(lines: list[str]) -> list[str] | None:
    """The forwarded message's lines below its header block, when the whole mail is a
    forward the owner wrote nothing above (see FORWARDS_UNWRAPPED); else None."""
    first = _next_written(lines, 0)
    if first == len(lines) or not FORWARD_SEPARATOR.match(lines[first].strip()):
        return None
    if _marker_line(lines) is not None:
        return None
    start = _next_written(lines, first + 1)
    if start < len(lines) and LABEL_LINE.match(_unquoted(lines[start])):
        start = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:]


def _next_written(lines: list[str], start: int) -> int:
    """Index of the first non-blank line from start on, or len(lines)."""
    return next((i for i in range(start, len(lines)) if lines[i].strip()), len(lines))


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
    """Cut at the first "-- " signature separator, then drop disclaimers and app footers."""
    if SIGNATURE_SEPARATOR in lines:
        lines = lines[: lines.index(SIGNATURE_SEPARATOR)]
    return strip_trailing(lines)
