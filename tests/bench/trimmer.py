"""Reply trimming (issue 19): does Porch post exactly what an owner wrote in an emailed reply?

Discourse's email_reply_trimmer fixtures (MIT, 64 pairs: emails/NAME.txt a raw reply body,
trimmed/NAME.txt the new text its author wrote), read from ../shared/data/email_reply_trimmer
beside the project when present; never copied into it. Each body is wrapped as a minimal
text/plain reply to our reply address and read by relay.channels.email.reading.inspect, as
an owner's reply is; a fixture counts when the lines match, blank lines and surrounding
whitespace ignored (the fixtures' own rule).

Baseline, in the same run: a naive trimmer, mail-parser-reply's EmailReplyParser alone
(every language it knows), on the same bodies.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped,unused-ignore]

from relay.channels.email.extract import REPLY_PARSER_LANGUAGES
from relay.channels.email.reading import inspect
from tests.bench.harness import Row, at_least, log

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "email_reply_trimmer"
TARGET = 58  # of the 64 fixtures

# The headers of an owner's reply to a notification; the body is the fixture.
HEAD = (
    "From: Owner <owner@shop.example>\r\n"
    "To: r+k7d2mq4xr5tb3wjz6hna2pe7vu@reply.example\r\n"
    "Subject: Re: conversation with Ann\r\n"
    "Message-ID: <fixture@shop.example>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
)


def fixtures() -> list[tuple[str, str, str]]:
    """(name, raw body, expected text) of every pair, sorted by name; [] without the data."""
    if not (DATA / "emails").is_dir():
        return []
    return [
        (
            email.stem,
            email.read_text("utf-8"),
            (DATA / "trimmed" / email.name).read_text("utf-8"),
        )
        for email in sorted((DATA / "emails").glob("*.txt"))
        if (DATA / "trimmed" / email.name).exists()
    ]


def comparable(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def ours(body: str) -> str:
    raw = HEAD + body.replace("\r\n", "\n").replace("\n", "\r\n")
    return inspect(raw.encode("utf-8")).body


def naive(body: str) -> str:
    parser = EmailReplyParser(languages=list(REPLY_PARSER_LANGUAGES))
    return parser.parse_reply(body) or ""


def differing(trim: Callable[[str], str], pairs: list[tuple[str, str, str]]) -> list[str]:
    return [name for name, body, want in pairs if comparable(trim(body)) != comparable(want)]


async def run() -> list[Row]:
    pairs = fixtures()
    name = f"reply trimming: email_reply_trimmer exact (of {len(pairs) or 64})"
    if not pairs:
        log(f"trimmer: skipped: data not present ({DATA})")
        return [Row(name, float("nan"), "", note="skipped: data not present")]
    failed = differing(ours, pairs)
    baseline_failed = differing(naive, pairs)
    log(f"trimmer: {len(failed)} differ: {', '.join(failed) or 'none'}")
    log(f"trimmer: naive (EmailReplyParser) differs on {len(baseline_failed)}")
    return [
        Row(
            name,
            len(pairs) - len(failed),
            "",
            baseline=len(pairs) - len(baseline_failed),
            target=at_least(TARGET, f"of {len(pairs)}"),
            note="baseline = mail-parser-reply alone",
        )
    ]


if __name__ == "__main__":  # quick look: python -m tests.bench.trimmer [NAME]
    for fixture, body, want in fixtures():
        if len(sys.argv) > 1 and fixture not in sys.argv[1:]:
            continue
        got = ours(body)
        if comparable(got) != comparable(want):
            print(f"=== {fixture}\n--- got\n{got}\n--- want\n{want.strip()}\n")
