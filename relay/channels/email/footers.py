"""What mail apps and company servers add under an owner's text: "Sent from my iPhone"
footers and confidentiality disclaimers. extract.py cuts them; none of it is the owner's.

Footers are matched on a whole line and only at the end of the text (with blank lines and
other footers), so a sentence that merely starts like one stays. A disclaimer needs three
signs at once (see DISCLAIMER_*), so an owner's own line about something confidential stays.
"""

from __future__ import annotations

import re

# A device or app name in a footer: words, no sentence punctuation ("Sent from my iPhone? No,
# from my laptop." is a sentence, not a footer).
DEVICE = r"[\w .'’&()+-]{1,40}"
# Without "my" a footer must name a known device or app: "Sent via DHL." is a sentence.
KNOWN = (
    r"(?:iphone|ipad|ipod|android|mobile|blackberry|galaxy|samsung|mail|outlook|yahoo|gmail"
    r"|proton\ mail|mailbox|airmail|spark|aol|windows\ mail|k-9\ mail|posta|correo|courrier"
    r"|e-mail)\b"
)
FOOTER_FORMS = r"""
    # en: iOS, Android, apps (Mailbox, Airmail, Yahoo...), K-9, Discourse's fixture forms
      sent\ from\ (?:my|a|an)\ DEVICE
    | sent\ (?:from|with|via|using|by)\ KNOWN(?:\ DEVICE)?
    | from\ my\ KNOWN(?:\ DEVICE)?                                   # "From My Iphone 6"
    | \w+\ from\ mobile                                              # "Pierre from mobile"
    | get\ outlook\ for\ (?:ios|android)
    | this\ e-?mail\ has\ been\ (?:checked|scanned)\ for\ viruses(?:\ by\ DEVICE)?  # Avast
    | virus-free\.?(?:\ ?www\.avast\.com)?                          # Avast, HTML mail
    | please\ consider\ the\ environment\ before\ printing(?:\ this\ e-?mail)?
    # fr
    | envoyé\ (?:de|depuis|à\ partir\ de)\ mon\ DEVICE
    | envoyé\ (?:de|depuis|à\ partir\ de)\ KNOWN(?:\ DEVICE)?
    | obtenir\ outlook\ pour\ (?:ios|android)
    | provenance\ :\ courrier\ pour\ windows(?:\ \d+)?
    # de
    | von\ meine[mr]\ DEVICE\ gesendet
    | gesendet\ (?:von|mit)\ (?:meine[mr]\ DEVICE|KNOWN(?:\ DEVICE)?)
    | diese\ nachricht\ wurde\ (?:von|mit)\ meine[mr]\ DEVICE\ gesendet     # K-9 Mail
    | (?:holen\ sie\ sich\ )?outlook\ für\ (?:ios|android)(?:\ beziehen|\ herunterladen)?
    # es
    | enviado\ desde\ mi\ DEVICE
    | enviado\ desde\ KNOWN(?:\ DEVICE)?
    | obtener\ outlook\ para\ (?:ios|android)
    # it
    | inviato\ (?:da|dal|dalla|con)\ (?:(?:il\ )?mi[oa]\ DEVICE|KNOWN(?:\ DEVICE)?)
    | (?:ottieni|scarica)\ outlook\ per\ (?:ios|android)
    # nl
    | (?:verzonden|verstuurd)\ (?:vanaf|van|met|vanuit|via)\ (?:mijn\ DEVICE|KNOWN(?:\ DEVICE)?)
    | (?:download\ )?outlook\ voor\ (?:ios|android)(?:\ downloaden)?
    # pt
    | enviad[oa]\ (?:do|de|a\ partir\ do)\ (?:meu|minha)\ DEVICE
    | enviad[oa]\ (?:do|de|a\ partir\ do)\ KNOWN(?:\ DEVICE)?
    | (?:obter|obtenha|baixe|baixar)\ o\ outlook\ para\ (?:ios|android)
    # sv, no, da
    | skickat\ från\ (?:min\ DEVICE|KNOWN(?:\ DEVICE)?)
    | sendt\ fra\ (?:min\ DEVICE|KNOWN(?:\ DEVICE)?)
    | (?:hämta|hent)\ outlook\ (?:för|til)\ (?:ios|android)
    # pl
    | wysłan[eo]\ z\ (?:mojego\ DEVICE|KNOWN(?:\ DEVICE)?)
    # ru
    | отправлено\ (?:с|из)\ (?:моего\ DEVICE|KNOWN(?:\ DEVICE)?)
    # zh, ja
    | (?:從|从)我的\s?DEVICE\s?(?:傳送|发送)
    | 发自我的\s?DEVICE
    | DEVICEから送信
"""
# "Sent from my cell, please excuse any typos." and K-9's "Please excuse my brevity."
EXCUSE = r"(?:[.,;]?\s+please\ excuse\b[^<>]{0,60})?"
FOOTERS = re.compile(
    rf"^[(<\[]*(?:{FOOTER_FORMS})[.!]?{EXCUSE}[)>\]]*$".replace("DEVICE", DEVICE).replace(
        "KNOWN", KNOWN
    ),
    re.VERBOSE | re.IGNORECASE,
)
# Streak's and Mixmax's Gmail add-ons put this dot (U+1427) alone on a line to track opens.
TRACKING_MARK = "\u1427"

# Links in footers: Outlook's "<https://aka.ms/…>" and glued "iOShttps://…", and the
# "[mail](https://…)" of HTML rendered as markdown, are not part of the words matched.
ANGLE_URL = re.compile(r"<(?:https?|mailto):[^>\s]*>")
MARKDOWN_LINK = re.compile(r"\[([^\]\n]*)\]\((?:https?|mailto):[^)\s]*\)")
BARE_URL = re.compile(r"(?:https?|mailto):\S*")

# A line of rule characters left at the end once what followed it was cut (Outlook's
# "-----" above its header block, "____" above a footer). It carries no words.
RULE_LINE = re.compile(r"^[-_=*~#+]{3,}$")

# A company server's disclaimer: a paragraph that opens by naming this message (or as a
# notice), speaks of confidentiality, and of its addressee, an error or deleting it. All
# three are needed: "This message is confidential: the code is 1234." is an owner's.
DISCLAIMER_OPENING = re.compile(
    r"""^\W*(?:
        (?:confidentiality|legal|important)\ (?:notice|note|statement)|disclaimer
      | (?:this|the\ information\ (?:contained\ )?in\ this)\ (?:e-?mail|message|communication)
      | (?:ce|le\ présent)\ (?:message|courriel|e-?mail|mail)
      | (?:les\ informations|l'information)\ contenues?\ dans\ ce\ (?:message|courriel|mail)
      | avis\ de\ confidentialité|avertissement
      | diese\ (?:e-?mail|nachricht)|vertraulichkeitshinweis|haftungsausschluss
      | die\ (?:in\ dieser\ (?:e-?mail|nachricht)\ enthaltenen\ )?informationen
      | este\ (?:mensaje|correo)|la\ información\ contenida\ en\ este\ (?:mensaje|correo)
      | aviso\ (?:legal|de\ confidencialidad)
      | questo\ messaggio|questa\ e-?mail|il\ presente\ messaggio|avviso\ di\ riservatezza
      | le\ informazioni\ contenute\ (?:in\ questo|nel\ presente)\ (?:messaggio|e-?mail)
      | dit\ (?:e-?mail)?bericht|deze\ e-?mail
      | de\ informatie\ (?:verzonden\ )?(?:in|met)\ (?:dit|deze)\ (?:e-?mail|bericht)
      | esta\ mensagem|este\ e-?mail|a\ informação\ contida\ nest[ae]\ (?:mensagem|e-?mail)
      | aviso\ de\ confidencialidade
    )\b""",
    re.VERBOSE | re.IGNORECASE,
)
DISCLAIMER_SECRET = re.compile(
    r"confidential|privileged|confidentiel|vertraulich|confidencial|riservat|vertrouwelijk"
    r"|sigilos|poufn|конфиденциальн",
    re.IGNORECASE,
)
DISCLAIMER_ADDRESSEE = re.compile(
    r"intended|recipient|addressee|in error|delete|destinataire|erreur|supprim|empfänger"
    r"|irrtümlich|lösch|destinatari|por error|elimin|errore|cancell|geadresseerde|abusievelijk"
    r"|verwijder|destinatário|por engano|apag",
    re.IGNORECASE,
)
# The three signs are looked for in the opening paragraph; a notice's title standing alone
# ("CONFIDENTIALITY NOTICE:", at most this long, no sentence) also lends the paragraph below.
DISCLAIMER_TITLE_CHARS = 40


def is_footer(line: str) -> bool:
    words = BARE_URL.sub("", MARKDOWN_LINK.sub(r"\1", ANGLE_URL.sub("", line)))
    words = re.sub(r"\s+", " ", words).strip()
    return words == TRACKING_MARK or bool(FOOTERS.match(words))


def strip_trailing(lines: list[str]) -> list[str]:
    """Without trailing footers, blank lines and bare rule lines, and without the disclaimer
    that ends the text, if one does."""
    lines = _without_footers(lines)
    return _without_footers(lines[: _disclaimer_start(lines)])


def _without_footers(lines: list[str]) -> list[str]:
    lines = list(lines)
    while lines and (
        not lines[-1].strip() or is_footer(lines[-1]) or RULE_LINE.match(lines[-1].strip())
    ):
        lines.pop()
    return lines


def _disclaimer_start(lines: list[str]) -> int:
    """Where the disclaimer that ends the text starts, else len(lines). It is made of
    paragraphs that each show a sign (a long notice, several languages), the first of which
    opens it; never the first paragraph, which is the owner's."""
    paragraphs = _paragraphs(lines)
    start = len(lines)
    for number in range(len(paragraphs) - 1, 0, -1):
        index, text = paragraphs[number]
        following = paragraphs[number + 1][1] if number + 1 < len(paragraphs) else ""
        if _opens_disclaimer(text, following):
            start = index
        elif not (DISCLAIMER_SECRET.search(text) or DISCLAIMER_ADDRESSEE.search(text)):
            break
    return start


def _opens_disclaimer(text: str, following: str) -> bool:
    if not DISCLAIMER_OPENING.match(text):
        return False
    if _is_title(text):
        text = f"{text} {following}"
    return bool(DISCLAIMER_SECRET.search(text) and DISCLAIMER_ADDRESSEE.search(text))


def _is_title(paragraph: str) -> bool:
    return len(paragraph) <= DISCLAIMER_TITLE_CHARS and not paragraph.endswith((".", "!", "?"))


def _paragraphs(lines: list[str]) -> list[tuple[int, str]]:
    """(index of its first line, its lines joined) for each run of non-blank lines."""
    runs: list[tuple[int, list[str]]] = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if index and lines[index - 1].strip():
            runs[-1][1].append(line.strip())
        else:
            runs.append((index, [line.strip()]))
    return [(start, " ".join(run)) for start, run in runs]
