"""relay.channels.email.reading against a corpus of real-looking replies, auto-replies and bounces.

Each tests/mail/corpus/NAME.eml has NAME.json beside it: the Inspection.to_json() a person
would want, written by hand. bounces.json adds what to_json() leaves out for bounces.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from relay.channels.email.extract import new_text
from relay.channels.email.reading import (
    LOOP_HEADER,
    REPLY_MARKERS,
    Inspection,
    UnreadableEmail,
    inspect,
    tag_of,
    unflow,
)

CORPUS = Path(__file__).parent / "corpus"
EMLS = sorted(CORPUS.glob("*.eml"))
BOUNCES: dict[str, dict[str, Any]] = json.loads((CORPUS / "bounces.json").read_text("utf-8"))

TAG = "k7d2mq4xr5tb3wjz6hna2pe7vu"


def expected(eml: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(eml.with_suffix(".json").read_text("utf-8"))
    return data


def mail(body: str, *headers: str, content_type: str = "text/plain; charset=utf-8") -> bytes:
    """A minimal reply to our notification, with extra header lines."""
    lines = [
        "From: Pierre Dupont <owner@dupont.example>",
        f"To: r+{TAG}@reply.porch.example",
        "Subject: Re: Boulangerie Dupont: conversation with Ann",
        "Message-ID: <unit@dupont.example>",
        "MIME-Version: 1.0",
        f"Content-Type: {content_type}",
        *headers,
        "",
        body,
    ]
    return "\r\n".join(lines).encode("utf-8")


# ---------------------------------------------------------------- the corpus


def test_corpus_is_big_enough_and_complete() -> None:
    assert len(EMLS) >= 30
    for eml in EMLS:
        assert eml.with_suffix(".json").exists(), f"{eml.name} has no expectation"
    for name in BOUNCES:
        assert (CORPUS / f"{name}.eml").exists()


@pytest.mark.parametrize("eml", EMLS, ids=[p.stem for p in EMLS])
def test_corpus(eml: Path) -> None:
    result = inspect(eml.read_bytes())
    assert result.to_json() == expected(eml)
    if result.kind == "bounce":
        details = BOUNCES[eml.stem]
        assert list(result.bounced) == details["bounced"]
        assert result.hard_bounce is details["hard_bounce"]
    else:
        assert result.bounced == ()
        assert result.hard_bounce is False


def test_corpus_summary(capsys: pytest.CaptureFixture[str]) -> None:
    passed = sum(1 for eml in EMLS if inspect(eml.read_bytes()).to_json() == expected(eml))
    with capsys.disabled():
        print(f"\nmail corpus: {passed}/{len(EMLS)} pass")
    assert passed == len(EMLS)


def test_inline_answers_keep_only_the_owners_lines() -> None:
    """Decision for interleaved answers (mutt_inline_interleaved.eml): post the owner's own
    lines, one paragraph per answer, and drop the quoted questions, which are the visitor's
    own words shown just above in the chat. A quoted marker does not stop the owner's lines
    after it; an unquoted one ends everything (see extract._answers_in_quote)."""
    body = inspect((CORPUS / "mutt_inline_interleaved.eml").read_bytes()).body
    assert body == (
        "Yes, on Fridays only. It sells out fast, so order it by Thursday noon.\n\n"
        "Yes, from 7:30 to 12:30."
    )


def test_duplicate_deliveries_read_the_same() -> None:
    first = inspect((CORPUS / "duplicate_delivery_first.eml").read_bytes())
    second = inspect((CORPUS / "duplicate_delivery_second.eml").read_bytes())
    assert first == second


# ---------------------------------------------------------------- API details


def test_constants_the_composer_uses() -> None:
    assert REPLY_MARKERS == (
        "-- Reply above this line --",
        "-- Répondez au-dessus de cette ligne --",
    )
    assert LOOP_HEADER == "X-Porch-Loop"


def test_to_json_has_exactly_the_public_keys() -> None:
    result = inspect(mail("Hello"))
    assert isinstance(result, Inspection)
    assert result.to_json() == {
        "kind": "reply",
        "body": "Hello",
        "token": TAG,
        "from": "owner@dupont.example",
        "message_id": "unit@dupont.example",
    }


@pytest.mark.parametrize(
    ("address", "tag"),
    [
        ("R+AbC@x.example", "abc"),
        ("r+abc@x.example", "abc"),
        (f"r+{TAG}@reply.porch.example", TAG),
        (f"Ann via Boulangerie <r+{TAG.upper()}@Reply.Porch.Example>", TAG),
        ("  r+abc@x.example  ", "abc"),
        ("r+@x.example", None),
        ("r+ab1c@x.example", None),  # 1 is not in the base32 alphabet
        ("r+abc-def@x.example", None),
        ("x+abc@x.example", None),
        ("rr+abc@x.example", None),
        ("r+abc", None),
        ("owner@dupont.example", None),
        ("", None),
    ],
)
def test_tag_of(address: str, tag: str | None) -> None:
    assert tag_of(address) == tag


def test_token_order_to_before_cc_before_delivered_to() -> None:
    raw = mail(
        "Hi",
        "Cc: r+ccccc@reply.porch.example",
        "Delivered-To: r+ddddd@reply.porch.example",
        "X-Original-To: r+eeeee@reply.porch.example",
    )
    assert inspect(raw).token == TAG
    no_to = raw.replace(f"To: r+{TAG}@".encode(), b"To: marie@")
    assert inspect(no_to).token == "ccccc"
    only_original = mail("Hi", "X-Original-To: r+eeeee@reply.porch.example").replace(
        f"To: r+{TAG}@".encode(), b"To: marie@"
    )
    assert inspect(only_original).token == "eeeee"


def test_no_token_and_no_sender() -> None:
    raw = b"Subject: hello\r\nTo: someone@example.net\r\n\r\nHi\r\n"
    result = inspect(raw)
    assert (result.token, result.sender, result.message_id) == (None, None, None)


def test_sender_ignores_display_name_and_is_lowercased() -> None:
    raw = mail("Hi").replace(
        b"From: Pierre Dupont <owner@dupont.example>",
        b'From: "owner@dupont.example" <Mallory@Evil.Example>',
    )
    assert inspect(raw).sender == "mallory@evil.example"


# ---------------------------------------------------------------- unreadable and odd input


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \r\n\r\n",
        bytes(range(256)) * 4,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"just text",
    ],
)
def test_unreadable(raw: bytes) -> None:
    with pytest.raises(UnreadableEmail):
        inspect(raw)
    assert issubclass(UnreadableEmail, ValueError)


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@b.example\r\n\r\n",  # no body at all
        b"From: a@b.example\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n",
        b"From: a@b.example\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\n",
        b"From: a@b.example\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64===\r\n",
        b"From: =?utf-8?q?broken <a@b.example>\r\nSubject: =?x-unknown?b?////?=\r\n\r\nHi\r\n",
        b"From: <<<>>>\r\nTo: ,,,\r\nMessage-ID: <\r\n\r\nHi\r\n",
        b"From: a@b.example\r\nContent-Type: text/plain; charset*=bogus''x\r\n\r\nHi\r\n",
        b"From: a@b.example\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n",
        b"From: a@b.example\r\nContent-Type: text/html\r\n\r\n<!-- only a comment -->",
        b"From: a@b.example\r\nContent-Type: text/html\r\n\r\n\x00\x01\x02<p>x</p>",
        b"From: a@b.example\r\n\r\n" + b"> " * 50000,
    ],
)
def test_never_raises_on_parseable_mail(raw: bytes) -> None:
    assert inspect(raw).kind in {"reply", "auto_reply", "bounce"}


def nested(depth: int) -> bytes:
    head = b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    parts = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i)
        for i in range(1, depth)
    )
    return head + parts + b"--b%d\r\nContent-Type: text/plain\r\n\r\nhello\r\n" % (depth - 1)


def test_deeply_nested_multiparts() -> None:
    assert inspect(nested(150)).body == "hello"
    with pytest.raises(UnreadableEmail):  # beyond what the stdlib parser can parse
        inspect(nested(3000))


def test_damaged_corpus_mail_never_raises() -> None:
    """Truncated, cut and bit-flipped copies of the corpus: read, or refused as unreadable."""
    rng = random.Random(20250303)
    for _ in range(400):
        raw = bytearray(rng.choice(EMLS).read_bytes())
        start = rng.randrange(len(raw))
        if rng.random() < 0.5:
            del raw[start : start + rng.randrange(1, 400)]
        for _ in range(rng.randrange(0, 20)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        try:
            result = inspect(bytes(raw))
        except UnreadableEmail:
            continue
        assert result.kind in {"reply", "auto_reply", "bounce"}


# ---------------------------------------------------------------- charsets and encodings


@pytest.mark.parametrize(
    ("charset", "encoded", "text"),
    [
        ("utf-8", "Crème brûlée 🍮".encode(), "Crème brûlée 🍮"),
        ("iso-8859-1", "Crème brûlée".encode("latin-1"), "Crème brûlée"),
        # Labelled Latin-1, written on Windows: the € and ’ are cp1252 bytes.
        ("iso-8859-1", "12 € l’unité".encode("cp1252"), "12 € l’unité"),
        ("windows-1252", "12 € l’unité".encode("cp1252"), "12 € l’unité"),
        ("iso-8859-15", "12 € l'unité".encode("iso-8859-15"), "12 € l'unité"),
        ("x-unknown", "déjà vu".encode(), "déjà vu"),
        ("unknown-8bit", "déjà vu".encode("latin-1"), "déjà vu"),
        ("rot13", b"plain", "plain"),  # a codec, but not a text encoding
        ("us-ascii", "naïve".encode(), "naïve"),  # 8-bit text labelled ascii
        ("utf-8", "naïve".encode("latin-1"), "naïve"),  # not UTF-8 after all
    ],
)
def test_charsets(charset: str, encoded: bytes, text: str) -> None:
    head = mail("", content_type=f"text/plain; charset={charset}").rstrip(b"\r\n")
    raw = head + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + encoded + b"\r\n"
    assert inspect(raw).body == text


def test_missing_charset_and_utf8_header_bytes() -> None:
    raw = mail("").replace(b"; charset=utf-8", b"") + "Grüße aus Straßburg\r\n".encode()
    raw = raw.replace(b"Subject: Re:", "Subject: Ré :".encode())
    result = inspect(raw)
    assert result.body == "Grüße aus Straßburg"


def test_quoted_printable_and_base64() -> None:
    qp = mail("Cr=C3=A8me =\r\nbr=C3=BBl=C3=A9e", "Content-Transfer-Encoding: quoted-printable")
    assert inspect(qp).body == "Crème brûlée"
    b64 = mail("Q3LDqG1lIGJyw7tsw6ll", "Content-Transfer-Encoding: base64")
    assert inspect(b64).body == "Crème brûlée"


def test_blank_plain_part_falls_back_to_html() -> None:
    raw = (
        b"From: owner@dupont.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\n \r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>Yes&nbsp;!</p><p>See <a href='https://x.example/m'>menu</a></p>\r\n"
        b"--b--\r\n"
    )
    assert inspect(raw).body == "Yes !\n\nSee menu <https://x.example/m>"


# ---------------------------------------------------------------- classification rules


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated; owner-email=x@y",
        "X-Autoreply: yes",
        "X-Autorespond: Vacation",
        "Precedence: bulk",
        "Precedence: junk",
        "Precedence: list",
        "Precedence: auto_reply",
        "X-Loop: owner@dupont.example",
        "List-Id: <news.example>",
        f"{LOOP_HEADER}: 1",
        "Return-Path: <>",
        "Subject: Out of Office: away",
        "Subject: Auto: away",
        "Subject: Fuera de la oficina",
        "Subject: Automatische Antwort: Urlaub",
    ],
)
def test_auto_reply_signals(header: str) -> None:
    raw = mail("I am away.", header)
    if header.startswith("Subject:"):
        raw = raw.replace(b"Subject: Re: Boulangerie Dupont: conversation with Ann\r\n", b"")
    result = inspect(raw)
    assert (result.kind, result.body) == ("auto_reply", "")


@pytest.mark.parametrize(
    "header",
    [
        "X-Auto-Response-Suppress: All",  # Outlook sets it on ordinary mail
        "Auto-Submitted: no",
        "Precedence: normal",
        "Return-Path: <owner@dupont.example>",
    ],
)
def test_not_auto_reply(header: str) -> None:
    assert inspect(mail("Yes, see you.", header)).kind == "reply"


def test_read_receipt_is_an_auto_reply() -> None:
    raw = mail(
        "--r\r\nContent-Type: text/plain\r\n\r\nYour message was read.\r\n--r--\r\n",
        content_type="multipart/report; report-type=disposition-notification; boundary=r",
    )
    assert inspect(raw).kind == "auto_reply"


def test_daemon_without_report_is_a_reply_unless_it_looks_like_a_bounce() -> None:
    person = mail("Hi, postmaster here: your DNS is fine.").replace(
        b"owner@dupont.example", b"postmaster@dupont.example"
    )
    assert inspect(person).kind == "reply"
    bounce = person.replace(
        b"Subject: Re: Boulangerie Dupont: conversation with Ann",
        b"Subject: Undeliverable: Boulangerie Dupont",
    )
    assert inspect(bounce).kind == "bounce"


# ---------------------------------------------------------------- extraction rules


def test_marker_cuts_everything_below_even_unquoted() -> None:
    text = (
        f"Yes.\n\n{REPLY_MARKERS[1]}\n\nAnn, 2025-03-01:\n> Hello\n\nStarted on https://x.example/"
    )
    assert new_text(text) == "Yes."


def test_marker_inside_html_rendered_text() -> None:
    assert new_text(f"Oui.\n\n[ {REPLY_MARKERS[0]} ]\nBonjour") == "Oui."


def test_normalisation() -> None:
    text = "\r\n\r\n  Hello  \r\n\r\n\r\n\r\n\r\nWorld\t\r\n\r\n"
    assert new_text(text) == "  Hello\n\nWorld"


@pytest.mark.parametrize(
    "text",
    [
        "Hola,\n\nPara: 12 croissants\nFecha: sábado\n\nGracias",
        "Pedido:\nPara: 20 personas\nFecha: sábado 15\nAsunto: tarta de cumpleaños",
        "Horaires :\nDe : 7h\nÀ : 19h\nLe dimanche : 7h-12h",
    ],
)
def test_owner_text_that_only_looks_like_headers_is_kept(text: str) -> None:
    assert new_text(text) == text


def test_footer_only_at_the_end() -> None:
    text = "Sent from my iPhone? No, from my laptop.\n\nSent from my iPhone"
    assert new_text(text) == "Sent from my iPhone? No, from my laptop."


def test_attribution_is_not_joined_across_a_blank_line() -> None:
    text = "On Saturday we close at noon.\n\nAnn wrote:"
    assert new_text(text) == text


def test_unflow() -> None:
    flowed = "A long \nparagraph.\n> quoted \n> line\n-- \nsig"
    assert unflow(flowed) == "A long paragraph.\n> quoted line\n-- \nsig"
    assert unflow("ab \ncd", delsp=True) == "abcd"
