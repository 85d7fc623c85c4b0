"""Getting a forged emailed reply past the sender checks, or turning them against others:
a From the checks and the reader see differently, Authentication-Results written by the
sender itself, look-alike and public-suffix domains, refusal notices to strangers, held
mail in bulk, and DNS that never answers. Real relay, its SMTP ingress (a raw client
where a library would tidy the bytes up), keys the test generates and a DNS server on
loopback (tests/fakes/dns_server.py). Each was a working attack once (an independent
review of issue 19 found them); each test is the attack, refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib
import dkim  # type: ignore[import-untyped,unused-ignore]
import pytest

from relay.channels.accept import REPLIES_PER_THREAD_PER_HOUR
from tests.mail.conftest import EVENT_TIMEOUT, OWNER, REPLY_DOMAIN, eventually, issue_reply_tag
from tests.mail.smtp_sink import SinkServer
from tests.mail.test_webhooks import WORKER_SECRET, worker
from tests.mail.trust_support import (
    SELECTOR,
    FakeDns,
    Key,
    bodies,
    deliver,
    named,
    new_key,
    reply,
    sender_dns,
    signed,
    verdict,
)
from tests.support import (
    ALPHA,
    ALPHA_ORIGIN,
    RunningRelay,
    free_port,
    open_live,
    start_thread,
)
from tests.test_inbox_api import inbox

MakeRelay = Callable[..., RunningRelay]
NOTICE = "refusal_notice"  # the outbox kind of a refusal notice
ATTACKER = "mallory@norecord.example"  # a domain of the attacker's: its key, no DMARC record


@pytest.fixture(scope="module")
def key() -> Key:
    return new_key()


@pytest.fixture(scope="module")
def dns(key: Key) -> Iterator[FakeDns]:
    with sender_dns(key) as server:
        yield server


def smtp_relay(make_relay: MakeRelay, dns: FakeDns, **overrides: Any) -> RunningRelay:
    """A relay taking mail on its SMTP ingress, its senders checked against `dns`."""
    settings = {"reply_domain": REPLY_DOMAIN, "smtp_port": free_port()}
    return make_relay(dns_servers=(dns.address,), **{**settings, **overrides})


async def conversation(relay: RunningRelay) -> tuple[dict[str, Any], str]:
    """A visitor's thread on alpha, and the reply tag its owner's notification carries."""
    async with relay.client(origin=ALPHA_ORIGIN) as client:
        started = await start_thread(client, "Do you bake on Sundays?")
    return started, issue_reply_tag(relay, started["thread"]["id"], OWNER)


async def sender_checks(relay: RunningRelay, checks: str, **changes: Any) -> None:
    site = replace(ALPHA, settings={**ALPHA.settings, "sender_checks": checks}, **changes)
    await relay.call(relay.services.store.add_site(site, replace=True))


def address(tag: str) -> str:
    return f"r+{tag}@{REPLY_DOMAIN}"


def held(relay: RunningRelay) -> list[dict[str, Any]]:
    with relay.db() as db:
        rows = db.execute("SELECT id, sender, status FROM held_mail ORDER BY id").fetchall()
    return [named(row) for row in rows]


def notices(relay: RunningRelay) -> list[str]:
    with relay.db() as db:
        rows = db.execute("SELECT recipient FROM outbox WHERE kind = ?", (NOTICE,)).fetchall()
    return sorted(row[0] for row in rows)


def crafted(tag: str, text: str, headers: list[bytes]) -> bytes:
    """A reply whose header lines are exactly `headers` (CRLF-joined, bytes as given)
    followed by To, Subject, Date and Message-ID."""
    lines = [
        *headers,
        f"To: {address(tag)}".encode(),
        b"Subject: Re: Your question",
        f"Date: {formatdate()}".encode(),
        f"Message-ID: {make_msgid(domain='norecord.example')}".encode(),
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=utf-8",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + text.encode() + b"\r\n"


async def raw_smtp(relay: RunningRelay, raw: bytes, to: str, mail_from: str = ATTACKER) -> str:
    """Send `raw` byte for byte (aiosmtplib rewrites a bare CR as CRLF; an attacker's
    client does not): the server's answer to the end of DATA."""
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.config.smtp_port)

    async def answer() -> str:
        while True:
            line = (await reader.readline()).decode()
            if line[3:4] != "-":
                return line.strip()

    try:
        await answer()  # greeting
        for command in (b"EHLO mx.sender.example", f"MAIL FROM:<{mail_from}>".encode()):
            writer.write(command + b"\r\n")
            assert (await answer()).startswith("250")
        writer.write(f"RCPT TO:<{to}>\r\n".encode())
        assert (await answer()).startswith("250")
        writer.write(b"DATA\r\n")
        assert (await answer()).startswith("354")
        stuffed = b"\r\n".join(
            b"." + line if line.startswith(b".") else line for line in raw.split(b"\r\n")
        )
        writer.write(stuffed.rstrip(b"\r\n") + b"\r\n.\r\n")
        result = await answer()
        writer.write(b"QUIT\r\n")
        return result
    finally:
        writer.close()


# -- a From the checks do not see ---------------------------------------------------------


@pytest.mark.parametrize("checks", ["dmarc", "strict"])
async def test_a_from_hidden_behind_a_bare_cr_is_not_believed(
    make_relay: MakeRelay, dns: FakeDns, key: Key, checks: str
) -> None:
    relay = smtp_relay(make_relay, dns)
    await sender_checks(relay, checks)
    _, tag = await conversation(relay)
    # The reader sees X-Note, From: the owner, From: the attacker, and takes the first
    # From; DMARC sees X-Note (with a CR in it) and one From, the attacker's own domain,
    # which the attacker signs with its own key.
    raw = crafted(
        tag,
        "Pay the deposit to IBAN FR76 0000 0000 0000",
        [
            b"X-Note: hi\rFrom: Alpha Owner <" + OWNER.encode() + b">",
            f"From: <{ATTACKER}>".encode(),
        ],
    )
    raw = dkim.sign(raw, SELECTOR.encode(), b"norecord.example", key.private) + raw
    answer = await raw_smtp(relay, raw, address(tag))
    assert answer.startswith("250"), answer
    assert bodies(relay) == []  # it was: the attacker's text, posted as the owner's
    assert verdict(relay, raw) == "forged_tag"  # read two ways: refused, no notice


async def test_a_second_from_header_is_held_not_posted(
    make_relay: MakeRelay, dns: FakeDns, key: Key
) -> None:
    relay = smtp_relay(make_relay, dns)
    _, tag = await conversation(relay)
    raw = crafted(
        tag,
        "Two Froms",
        [f"From: <{OWNER}>".encode(), f"From: <{ATTACKER}>".encode()],
    )
    raw = dkim.sign(raw, SELECTOR.encode(), b"norecord.example", key.private) + raw
    assert (await raw_smtp(relay, raw, address(tag))).startswith("250")
    assert bodies(relay) == []
    assert verdict(relay, raw) == "forged_tag"  # whose From? refused, no notice


async def test_a_signature_of_a_sibling_under_a_public_suffix_does_not_align(
    make_relay: MakeRelay, dns: FakeDns, key: Key
) -> None:
    # Two github.io sites are two organisations (the list's private part): the attacker's
    # page signing for the owner's is not DMARC alignment.
    victim = "owner@victim.github.io"
    dns.txt("_dmarc.victim.github.io", "v=DMARC1; p=reject")
    dns.txt(f"{SELECTOR}._domainkey.attacker.github.io", key.record)
    relay = smtp_relay(make_relay, dns)
    await sender_checks(relay, "dmarc", owner_emails=(OWNER, victim))
    async with relay.client(origin=ALPHA_ORIGIN) as client:
        started = await start_thread(client, "Open on Sunday?")
    tag = issue_reply_tag(relay, started["thread"]["id"], victim)
    raw = signed(reply(tag, "Pay here", sender=victim), key, "attacker.github.io")
    await deliver(relay, raw, to=address(tag), mail_from=victim)
    assert bodies(relay) == []
    assert verdict(relay, raw) == "held"


# -- Authentication-Results the sender wrote ----------------------------------------------


async def test_authentication_results_sent_straight_to_the_smtp_ingress_are_not_believed(
    make_relay: MakeRelay, dns: FakeDns
) -> None:
    # The relay trusts its IMAP mailbox's server; the attacker writes to its MX directly.
    relay = smtp_relay(make_relay, dns, trusted_authserv_ids=("mx.trusted.example",))
    _, tag = await conversation(relay)
    forged = reply(
        tag,
        "New bank details: FR76 0000",
        headers={
            "Authentication-Results": "mx.trusted.example; dmarc=pass header.from=alpha.example"
        },
    )  # From owner@alpha.example (p=reject), unsigned, from the attacker's server
    await deliver(relay, forged, to=address(tag), mail_from=ATTACKER)
    assert bodies(relay) == []  # today: posted as the owner's
    assert verdict(relay, forged) == "held"


async def test_an_arc_chain_the_attacker_sealed_is_not_the_trusted_servers(
    make_relay: MakeRelay, dns: FakeDns, key: Key
) -> None:
    # The relay reads the owner's mailbox through a webhook whose provider is trusted;
    # the provider removed forged Authentication-Results, not the ARC set.
    relay = make_relay(
        dns_servers=(dns.address,),
        inbound_secret=WORKER_SECRET,
        trusted_authserv_ids=("mx.trusted.example",),
    )
    _, tag = await conversation(relay)
    raw = reply(tag, "New bank details: FR76 0000")  # From owner@alpha.example, unsigned
    claim = b"Authentication-Results: mx.trusted.example; dmarc=pass header.from=alpha.example\r\n"
    # Sealed with the attacker's own key, at its own domain (norecord.example).
    seal = dkim.arc_sign(
        claim + raw, SELECTOR.encode(), b"norecord.example", key.private, b"mx.trusted.example"
    )
    forged = b"".join(seal) + raw  # the claim itself left out: only the ARC set remains
    async with relay.client(origin=None) as client:
        answer = (await worker(client, forged)).json()
    assert bodies(relay) == []  # today: posted as the owner's, "aligned_by": "arc"
    assert answer == {"verdict": "held"}


# -- notices to strangers -----------------------------------------------------------------


async def test_a_made_up_reply_address_does_not_make_the_relay_mail_strangers(
    make_relay: MakeRelay, dns: FakeDns
) -> None:
    sink = SinkServer(free_port())
    sink.start()
    try:
        relay = smtp_relay(make_relay, dns, smtp_url=sink.url)
        made_up = "a" * 26  # never issued: anyone may write to it
        victims = [
            "victim@none.example",  # p=none, as many big mailbox providers publish
            "Victim@none.example",  # the same mailbox, spelled otherwise
            "victim+1@none.example",
            "someone@norecord.example",  # no DMARC record at all
        ]
        for victim in victims:
            spam = reply(made_up, "x", sender=victim, headers={"X-Mailer": "spam"})
            spam = spam.replace(b"Re: Your question", b"Cheap watches at https://spam.example")
            await deliver(relay, spam, to=address(made_up), mail_from=victim)
            assert verdict(relay, spam) == "unknown_tag"
        assert notices(relay) == []  # it was: four notices, "Not delivered: Cheap watches…"
    finally:
        sink.stop()


# -- held mail in bulk --------------------------------------------------------------------


async def test_replies_held_for_one_thread_are_capped_like_posted_ones(
    make_relay: MakeRelay, dns: FakeDns
) -> None:
    relay = smtp_relay(make_relay, dns)
    _, tag = await conversation(relay)
    # Anyone who has the tag and writes the owner's From: unsigned, so each is held.
    refused = 0
    for n in range(REPLIES_PER_THREAD_PER_HOUR + 5):
        try:
            await deliver(relay, reply(tag, f"Held {n}"), to=address(tag), mail_from=ATTACKER)
        except aiosmtplib.SMTPDataError as error:  # over the cap: "try again later"
            assert error.code == 451
            refused += 1
    assert len(held(relay)) <= REPLIES_PER_THREAD_PER_HOUR  # it was: all 35
    assert refused == REPLIES_PER_THREAD_PER_HOUR + 5 - len(held(relay))


# -- DNS that never answers ---------------------------------------------------------------


async def test_mail_whose_dns_never_answers_does_not_stall_other_mail(
    make_relay: MakeRelay, dns: FakeDns, key: Key
) -> None:
    sink = SinkServer(free_port())  # mail enabled: a refusal may need checks for a notice
    sink.start()
    relay = smtp_relay(make_relay, dns, smtp_url=sink.url)
    started, tag = await conversation(relay)
    made_up = "b" * 26  # no tag needed: any r+ address gets the checks
    slow = [f"slow{n}.example" for n in range(5)]
    for domain in slow:
        dns.silence(f"{SELECTOR}._domainkey.{domain}")
    dns.silence("_dmarc.slow0.example")
    dns.silence("slow0.example")  # its SPF record
    workers = 6  # more than the relay's threads for sender checks, of either kind

    def hostile(n: int) -> bytes:
        raw = reply(made_up, f"Slow {n}", sender="x@slow0.example")
        for domain in slow:  # five signatures, each a lookup that times out
            raw = dkim.sign(raw, SELECTOR.encode(), domain.encode(), key.private) + raw
        return raw

    attacks = [
        asyncio.create_task(raw_smtp(relay, hostile(n), address(made_up), "x@slow0.example"))
        for n in range(workers)
    ]
    try:
        first_key = (f"{SELECTOR}._domainkey.slow0.example", "TXT")
        await eventually(lambda: dns.queries[first_key] >= 1, "a check waiting on DNS")
        live = await open_live(relay, started["token"], since=started["message"]["seq"])
        genuine = signed(reply(tag, "Yes, from 8 to noon."), key)
        async with asyncio.timeout(EVENT_TIMEOUT):  # a deadline, not a sleep
            await deliver(relay, genuine, to=address(tag))
            message = (await live.next("message"))["message"]
        await live.ws.close()
        assert message["body"] == "Yes, from 8 to noon."
    finally:
        for attack in attacks:  # their checks wait out CHECK_SECONDS: not this test's to see
            attack.cancel()
        await asyncio.gather(*attacks, return_exceptions=True)
        sink.stop()
    assert bodies(relay) == ["Yes, from 8 to noon."]


# -- deciding on held replies -------------------------------------------------------------


async def test_held_replies_are_decided_only_by_a_current_owner_from_the_inbox_page(
    make_relay: MakeRelay, dns: FakeDns
) -> None:
    relay = smtp_relay(make_relay, dns)
    _, tag = await conversation(relay)
    for text in ("First", "Second"):
        await deliver(relay, reply(tag, text), to=address(tag))
    first, second = (row["id"] for row in held(relay))
    async with inbox(relay) as page:
        refused = {
            "no CSRF token": await page.client.post(f"/inbox/api/held/{first}/release"),
            "another origin": await page.post(
                f"/inbox/api/held/{first}/release", origin="https://evil.example"
            ),
        }
        for case, response in refused.items():
            assert response.status_code == 403, f"{case}: {response.text}"
        for given in ("1.0", "-1", "0x1", "1e0", "9" * 30):
            response = await page.post(f"/inbox/api/held/{given}/discard")
            assert response.status_code == 404, f"{given}: {response.text}"
        assert [row["status"] for row in held(relay)] == ["held", "held"]

        # Two tabs: release and discard at once. One wins; the other is told it lost.
        release, discard = await asyncio.gather(
            page.post(f"/inbox/api/held/{first}/release"),
            page.post(f"/inbox/api/held/{first}/discard"),
        )
        assert sorted((release.status_code, discard.status_code)) == [200, 404]
        posted = release.status_code == 200
        assert bodies(relay) == (["First"] if posted else [])
        assert held(relay)[0]["status"] == ("released" if posted else "discarded")

        # Removed from the site: the session still opens, the site's mail is not theirs.
        await sender_checks(relay, "dmarc", owner_emails=("new@alpha.example",))
        assert (await page.get("/inbox/api/held")).json()["held"] == []
        response = await page.post(f"/inbox/api/held/{second}/release")
        assert response.status_code == 404, response.text
    assert held(relay)[1]["status"] == "held"
