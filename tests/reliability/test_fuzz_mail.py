"""Whatever bytes reach the inbound pipeline (through the signed raw-MIME endpoint, as an
edge mail worker delivers them), it answers with a verdict and never a server error, and
it writes all or nothing: an owner message is stored together with its `inbound` row,
any other verdict stores a row and no message, a duplicate or a deferral nothing at all.
A genuine owner reply whose headers are tampered with is never posted as the owner's
unless the tampering left who sent it, and to which conversation, intact.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.channels.email.inbound import Verdict
from relay.limits import RateLimiter
from tests.mail.conftest import OWNER, REPLY_DOMAIN
from tests.mail.smtp_sink import SinkServer
from tests.reliability.backends import UNLIMITED, Backend, launch_relay
from tests.support import ALPHA_ORIGIN, free_port

EXAMPLES = 120  # per test; each is one request and one parse
CONCURRENT_DELIVERIES = 8
INBOUND_SECRET = "fuzz-inbound-secret"
HOUR = 3600.0
MAIL_TIMEOUT = 10.0  # seconds for the owner's notification; it takes milliseconds
POSTED = Verdict.POSTED.value
# Verdicts after which nothing at all is written: the same mail again, bytes that are no
# email at all, or "not now" (answered 429: the sender delivers it again later).
WRITES_NOTHING = {
    Verdict.DUPLICATE.value,
    Verdict.UNREADABLE.value,
    Verdict.RATE_LIMITED.value,
    Verdict.DEFERRED.value,
}
# A failing example with a huge part makes hypothesis warn about the size of its repr
# while reporting it: the warning (an error here) would hide the failure itself.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)


@dataclass(frozen=True)
class Inbound:
    """A relay taking mail on /v1/inbound/raw, and one conversation the owner was
    notified about (so a reply tag of ours exists)."""

    http: httpx.Client
    backend: Backend
    tag: str
    thread: str

    def deliver(self, raw: bytes) -> httpx.Response:
        """POST the message as an edge worker does, signed with the inbound secret."""
        timestamp = str(int(time.time()))
        signed = timestamp.encode() + b"." + raw
        signature = hmac.new(INBOUND_SECRET.encode(), signed, hashlib.sha256).hexdigest()
        return self.http.post(
            "/v1/inbound/raw",
            content=raw,
            headers={
                "content-type": "message/rfc822",
                "x-porch-timestamp": timestamp,
                "x-porch-signature": signature,
            },
        )

    def state(self) -> dict[str, int]:
        counts = self.backend.counts()
        # Every owner message that came by email has its inbound row saying "posted".
        by_email, posted_rows = self.backend.rows(
            "SELECT (SELECT COUNT(*) FROM messages WHERE via = 'email'),"
            " (SELECT COUNT(*) FROM inbound WHERE verdict = 'posted' AND thread_id IS NOT NULL)"
        )[0]
        assert by_email == posted_rows, f"{by_email} email messages, {posted_rows} posted rows"
        return counts


@pytest.fixture(scope="module")
def inbound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbound]:
    sink = SinkServer(free_port()).start()
    directory = tmp_path_factory.mktemp("mailfuzz")
    backend = Backend(directory)  # SQLite: the examples share one relay
    relay = launch_relay(
        backend,
        smtp_url=sink.url,
        reply_domain=REPLY_DOMAIN,
        owner_notify_delay=0,
        inbound_secret=INBOUND_SECRET,
    )
    # The pipeline caps replies per thread and sender (30 and 120 an hour) against mail
    # loops; examples post far more, all on purpose.
    relay.services.accept.per_thread = RateLimiter(UNLIMITED, HOUR)
    relay.services.accept.per_sender = RateLimiter(UNLIMITED, HOUR)
    try:
        with httpx.Client(base_url=relay.url, timeout=30) as http:
            started = http.post(
                "/v1/sites/alpha/threads",
                json={"body": "Do you deliver?"},
                headers={"origin": ALPHA_ORIGIN},
            )
            assert started.status_code == 201, started.text
            notification = sink.sink.received.get(timeout=MAIL_TIMEOUT)
            reply_to = parseaddr(notification["Reply-To"])[1]
            tag = reply_to.partition("@")[0].removeprefix("r+")
            yield Inbound(http, backend, tag, started.json()["thread"]["id"])
    finally:
        relay.stop()
        sink.stop()


def outcome(inbound: Inbound, raw: bytes) -> str | None:
    """Deliver `raw`; check the answer is clean and the store changed all or nothing.
    The verdict, or None if the request itself was refused (too large, say)."""
    before = inbound.state()
    response = inbound.deliver(raw)
    after = inbound.state()
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    body = response.json()
    if response.status_code not in (200, 429):  # refused before the pipeline: 400, 413
        assert set(body) == {"error", "message"}, body
        assert after == before
        return None
    verdict = body["verdict"]
    assert verdict in {v.value for v in Verdict}, verdict
    assert (response.status_code == 429) == (verdict in (Verdict.RATE_LIMITED, Verdict.DEFERRED))
    changed = {table for table in after if after[table] != before[table]}
    if verdict == POSTED:
        assert after["messages"] == before["messages"] + 1, "posted, yet no message"
        assert after["inbound"] == before["inbound"] + 1, "posted, yet no inbound row"
        assert changed == {"messages", "inbound"}, changed
    elif verdict in WRITES_NOTHING:
        assert not changed, f"{verdict}, yet {changed} changed"
    else:  # recorded as seen, so a redelivery is a duplicate; no message
        assert after["inbound"] == before["inbound"] + 1, f"{verdict} not recorded"
        allowed = {"inbound", "suppressed"} if verdict == Verdict.BOUNCE.value else {"inbound"}
        assert changed <= allowed, f"{verdict}, yet {changed} changed"
    return str(verdict)


# -- arbitrary MIME ------------------------------------------------------------------------

CHARSET = st.sampled_from(
    ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "utf-16", "utf-7", "iso-2022-jp"]
    + ["koi8-r", "gb18030", "x-unknown", "", '"utf-8', "utf-8'en'", "../../etc/passwd"]
)
TRANSFER = st.sampled_from(
    ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "bogus", ""]
)
TEXT_BYTES = st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass"))
BYTES = st.binary(max_size=200) | TEXT_BYTES
# Parts around the sizes that cost: a long HTML body for inscriptis, a long text body for
# the quote and signature rules (cut at 100,000 characters), base64 of megabytes.
HUGE = st.builds(
    lambda piece, times: piece * times,
    st.sampled_from([b"x", b"<div>", b"> quoted\r\n", b"=\r\n", b"\xff\xfe", b"A" * 76 + b"\r\n"]),
    st.sampled_from([10_000, 200_000, 1_000_000]),
)
ENCODED_WORD = st.builds(
    lambda charset, kind, data: f"=?{charset}?{kind}?".encode() + data + b"?=",
    CHARSET,
    st.sampled_from(["Q", "B", "q", "x"]),
    st.binary(max_size=30),
)
HEADER_NAME = st.sampled_from(
    ["From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References"]
    + ["Reply-To", "Delivered-To", "X-Original-To", "Auto-Submitted", "Precedence"]
    + ["Return-Path", "Received", "MIME-Version", "X-Porch-Loop", "X-Autoreply"]
) | st.from_regex(r"\A[!-9;-~]{1,30}\Z")
HEADER_VALUE = (
    BYTES
    | ENCODED_WORD
    | st.sampled_from(
        [f"r+{'a' * 20}@{REPLY_DOMAIN}".encode(), OWNER.encode(), b"<>", b"", b"\r\n\t folded"]
    )
)
HEADER = st.tuples(HEADER_NAME, HEADER_VALUE).map(lambda pair: pair[0].encode() + b": " + pair[1])
CONTENT_TYPE = st.sampled_from(
    ["text/plain", "text/html", "multipart/mixed", "multipart/alternative", "multipart/report"]
    + ["message/rfc822", "message/delivery-status", "application/octet-stream", "x/y", "text"]
)


@st.composite
def mime_part(draw: st.DrawFn, depth: int = 0) -> bytes:
    """One MIME entity: headers, a blank line, a body that may be further parts."""
    kind = draw(CONTENT_TYPE)
    headers = draw(st.lists(HEADER, max_size=3 if depth else 8))
    boundary = draw(st.sampled_from([b"b1", b"b2", b"", b"=_x" * 30]))
    parameters = b"; charset=" + draw(CHARSET).encode()
    if kind.startswith("multipart/"):
        parameters = b'; boundary="' + boundary + b'"' + parameters
    headers.append(b"Content-Type: " + kind.encode() + parameters)
    headers.append(b"Content-Transfer-Encoding: " + draw(TRANSFER).encode())
    if kind.startswith("multipart/") and depth < 3:
        children = draw(st.lists(mime_part(depth + 1), max_size=3))
        delimiter = b"--" + draw(st.sampled_from([boundary, b"other"]))
        body = b"".join(delimiter + b"\r\n" + child + b"\r\n" for child in children)
        body += draw(st.sampled_from([delimiter + b"--\r\n", b""]))  # closed, or not
    elif kind == "message/rfc822" and depth < 3:
        body = draw(mime_part(depth + 1))
    else:
        body = draw(BYTES | HUGE) if draw(st.integers(0, 9)) == 0 else draw(BYTES)
    newline = draw(st.sampled_from([b"\r\n", b"\n"]))
    return newline.join(headers) + newline + newline + body


def to_our_tag(inbound: Inbound) -> st.SearchStrategy[bytes]:
    """Sometimes addressed to a real conversation from its owner: the pipeline then gets
    as far as storing a message out of whatever the body is."""
    return st.sampled_from(
        [
            b"",
            f"To: r+{inbound.tag}@{REPLY_DOMAIN}\r\nFrom: {OWNER}\r\n".encode(),
            f"From: Owner <{OWNER}>\r\nCc: <r+{inbound.tag}@{REPLY_DOMAIN}>\r\n".encode(),
        ]
    )


def fuzz_settings() -> settings:
    # The relay fixture is module-scoped on purpose: one relay takes every example.
    return settings(
        max_examples=EXAMPLES,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@fuzz_settings()
@given(data=st.data())
def test_any_bytes_get_a_verdict_and_an_all_or_nothing_write(
    inbound: Inbound, data: st.DataObject
) -> None:
    addressed = data.draw(to_our_tag(inbound))
    raw = data.draw(mime_part() | st.binary(max_size=300) | HUGE)
    outcome(inbound, addressed + raw)


@fuzz_settings()
@given(data=st.data())
def test_a_broken_mail_delivered_twice_is_stored_at_most_once(
    inbound: Inbound, data: st.DataObject
) -> None:
    raw = data.draw(to_our_tag(inbound)) + data.draw(mime_part())
    first = outcome(inbound, raw)
    again = outcome(inbound, raw)
    if first is not None and first not in WRITES_NOTHING:
        assert again == Verdict.DUPLICATE.value, f"{first}, then {again}"


# -- a genuine reply, tampered with ----------------------------------------------------------


def genuine_reply(inbound: Inbound, text: str) -> EmailMessage:
    """What the owner's mail client sends when they press Reply (a new Message-ID each)."""
    reply = EmailMessage()
    reply["From"] = f"Alpha Owner <{OWNER}>"
    reply["To"] = f"r+{inbound.tag}@{REPLY_DOMAIN}"
    reply["Subject"] = "Re: Alpha Bakery: conversation with A visitor"
    reply["Date"] = formatdate(localtime=False)
    reply["Message-ID"] = make_msgid(domain="alpha.example")
    reply.set_content(text + "\n")
    return reply


def test_the_genuine_reply_is_posted(inbound: Inbound) -> None:
    """The baseline the tampering tests start from."""
    raw = genuine_reply(inbound, "Yes, within 5 km.").as_bytes()
    assert outcome(inbound, raw) == POSTED
    assert outcome(inbound, raw) == Verdict.DUPLICATE.value


def test_a_reply_delivered_many_times_at_once_is_stored_once(inbound: Inbound) -> None:
    """Providers retry, and two ingresses may race with the same mail: one message."""
    raw = genuine_reply(inbound, "Only once, please.").as_bytes()
    before = inbound.state()
    with ThreadPoolExecutor(max_workers=CONCURRENT_DELIVERIES) as pool:
        responses = list(pool.map(inbound.deliver, [raw] * CONCURRENT_DELIVERIES))
    after = inbound.state()
    assert [r.status_code for r in responses] == [200] * CONCURRENT_DELIVERIES
    verdicts = sorted(r.json()["verdict"] for r in responses)
    assert set(verdicts) <= {POSTED, Verdict.DUPLICATE.value} and POSTED in verdicts, verdicts
    assert after["messages"] == before["messages"] + 1
    assert after["inbound"] == before["inbound"] + 1


# Who sent it and where it goes: changed, the reply must not be posted as the owner's.
IDENTITY = ["From", "To"]
OTHER_HEADERS = ["Subject", "Date", "Message-ID", "Content-Type", "Content-Transfer-Encoding"]
OTHER_HEADERS += ["MIME-Version", "Auto-Submitted", "Precedence", "Return-Path", "Cc"]
OTHER_HEADERS += ["Delivered-To", "X-Original-To", "Reply-To", "In-Reply-To", "X-Porch-Loop"]
STRANGER = st.sampled_from(
    ["mallory@evil.example", "owner@alpha.example.evil", "owner@beta.example", "", "<>"]
    + [f"r+{'b' * 26}@{REPLY_DOMAIN}", "undisclosed-recipients:;", "owner@ALPHA.example"]
) | st.text(max_size=60)


@st.composite
def tampering(draw: st.DrawFn) -> tuple[str, str, str | None]:
    """(header, how, new value or None): drop it, replace it, add a second one."""
    header = draw(st.sampled_from(IDENTITY) | st.sampled_from(OTHER_HEADERS))  # half each
    how = draw(st.sampled_from(["drop", "replace", "add"]))
    words = ENCODED_WORD.map(lambda word: word.decode("latin-1"))
    value = None if how == "drop" else draw(STRANGER | words)
    # One header line each: broken lines and folding are the arbitrary-MIME test's part.
    return header, how, value and value.replace("\r", " ").replace("\n", " ")


def tamper(reply: EmailMessage, header: str, how: str, value: str | None) -> bytes:
    raw = reply.as_bytes()
    head, _, body = raw.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if line]
    name = header.lower().encode()
    kept = [line for line in lines if line.split(b":", 1)[0].lower() != name]
    if how == "drop":
        lines = kept
    elif how == "replace":
        assert value is not None
        lines = [*kept, header.encode() + b": " + value.encode("utf-8", "surrogatepass")]
    else:
        assert value is not None
        lines = [*lines, header.encode() + b": " + value.encode("utf-8", "surrogatepass")]
    return b"\n".join(lines) + b"\n\n" + body


def still_the_owner_to_us(inbound: Inbound, header: str, how: str, value: str | None) -> bool:
    """Whether the tampering left From (first) = the owner and To (first) = our tag."""
    if header not in IDENTITY or how == "add":  # the first one is still the genuine one
        return True
    if how == "drop" or value is None:
        return False
    addresses = [address for _, address in getaddresses([value]) if address]  # as the
    first = addresses[0].lower() if addresses else None  # pipeline reads them
    return first == (OWNER if header == "From" else f"r+{inbound.tag}@{REPLY_DOMAIN}")


@fuzz_settings()
@given(change=tampering(), text=st.text(min_size=1, max_size=80))
def test_a_tampered_reply_is_refused_cleanly(
    inbound: Inbound, change: tuple[str, str, str | None], text: str
) -> None:
    header, how, value = change
    raw = tamper(genuine_reply(inbound, text), header, how, value)
    verdict = outcome(inbound, raw)
    if not still_the_owner_to_us(inbound, header, how, value):
        assert verdict != POSTED, f"posted with {header} {how} {value!r}"
