"""Sender authentication (relay/channels/email/authentication/): DKIM, SPF, DMARC, trusted
Authentication-Results and ARC, over a real DNS server on loopback holding the keys and
records each test publishes."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import dkim
import pytest

from relay.channels.email.authentication import (
    Authentication,
    Envelope,
    Resolver,
    authenticate,
)
from tests.fakes.dns_server import FakeDns
from tests.mail.trust_support import Key, new_key

SELECTOR = "s1"
SENDER_IP = "192.0.2.10"
OTHER_IP = "198.51.100.7"
TRUSTED = frozenset({"mx.porch.example"})
# A lookup nobody answers fails after this; short, so the timeout test stays fast.
SHORT_LIFETIME = 0.5


@pytest.fixture(scope="module")
def key() -> Key:
    return new_key()


@pytest.fixture
def dns(key: Key) -> Iterator[FakeDns]:
    with FakeDns() as server:
        for domain in ("example.com", "mail.example.com", "evil.example", "lists.example"):
            server.txt(f"{SELECTOR}._domainkey.{domain}", key.record)
        yield server


@pytest.fixture
def resolver(dns: FakeDns) -> Resolver:
    return Resolver([dns.address], lifetime=SHORT_LIFETIME)


def mail(
    sender: str = "owner@example.com", body: str = "Yes, Saturday works.\r\n", *headers: str
) -> bytes:
    lines = [
        *headers,
        f"From: Owner <{sender}>",
        "To: r+abcdefgh@reply.example",
        "Subject: Re: Opening hours",
        "Date: Sat, 05 Dec 2026 10:00:00 +0000",
        "Message-ID: <reply-1@example.com>",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def signed(raw: bytes, key: Key, domain: str = "example.com") -> bytes:
    return dkim.sign(raw, SELECTOR.encode(), domain.encode(), key.private) + raw


def check(
    raw: bytes,
    resolver: Resolver,
    envelope: Envelope | None = None,
    trusted: frozenset[str] = TRUSTED,
) -> Authentication:
    return authenticate(raw, envelope, resolver=resolver, trusted_authserv_ids=trusted)


def test_a_signed_reply_passes_a_reject_policy(dns: FakeDns, resolver: Resolver, key: Key) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    verdict = check(signed(mail(), key), resolver)
    assert [(r.domain, r.result) for r in verdict.dkim] == [("example.com", "pass")]
    assert (verdict.dmarc.result, verdict.dmarc.policy) == ("pass", "reject")
    assert verdict.dmarc.aligned_by == "dkim"
    assert verdict.decide("dmarc").action == "accept"
    assert verdict.decide("strict").action == "accept"


@pytest.mark.parametrize("policy", ["reject", "quarantine"])
def test_unsigned_mail_from_an_enforcing_domain_is_held(
    dns: FakeDns, resolver: Resolver, policy: str
) -> None:
    dns.txt("_dmarc.example.com", f"v=DMARC1; p={policy}; rua=mailto:d@example.com")
    decision = check(mail(), resolver).decide("dmarc")
    assert (decision.action, decision.reason) == ("hold", "dmarc_fail")
    assert decision.detail == (
        f"example.com publishes DMARC p={policy}; no aligned DKIM signature verified "
        "(none present) and no SPF"
    )


def test_unsigned_mail_is_accepted_at_p_none_and_held_by_strict(
    dns: FakeDns, resolver: Resolver
) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=none")
    verdict = check(mail(), resolver)
    assert (verdict.dmarc.result, verdict.dmarc.policy) == ("fail", "none")
    assert verdict.decide("dmarc").action == "accept"
    strict = verdict.decide("strict")
    assert (strict.action, strict.reason) == ("hold", "unauthenticated")
    assert strict.detail.startswith("nothing authenticates example.com")


def test_a_domain_without_a_record_is_accepted(dns: FakeDns, resolver: Resolver) -> None:
    dns.txt("example.com", "v=spf1 -all", "some-site-verification=123")  # not DMARC records
    verdict = check(mail(), resolver)
    assert (verdict.dmarc.result, verdict.dmarc.policy) == ("none", None)
    assert verdict.decide("dmarc").action == "accept"
    assert verdict.decide("strict").action == "hold"
    # Both the From domain's and the organisational domain's names were asked once only.
    assert dns.queries[("_dmarc.example.com", "TXT")] == 1


def test_a_tampered_body_is_held_saying_the_body_hash_failed(
    dns: FakeDns, resolver: Resolver, key: Key
) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    raw = signed(mail(), key).replace(b"Saturday", b"Sunday")
    verdict = check(raw, resolver)
    assert verdict.dkim[0].result == "fail"
    assert verdict.dkim[0].reason.startswith("body hash mismatch")
    decision = verdict.decide("dmarc")
    assert (decision.action, decision.reason) == ("hold", "dmarc_fail")
    assert "(d=example.com fail: body hash mismatch" in decision.detail


def test_a_signature_by_another_domain_does_not_count(
    dns: FakeDns, resolver: Resolver, key: Key
) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    verdict = check(signed(mail(), key, domain="evil.example"), resolver)
    assert [(r.domain, r.result) for r in verdict.dkim] == [("evil.example", "pass")]
    assert verdict.dmarc.result == "fail"
    assert verdict.decide("dmarc").action == "hold"


@pytest.mark.parametrize(
    ("records", "policy"),
    [
        ({"_dmarc.example.com": "v=DMARC1; p=none; sp=reject"}, "reject"),
        ({"_dmarc.example.com": "v=DMARC1; p=reject; sp=none"}, "none"),
        ({"_dmarc.example.com": "v=DMARC1; p=quarantine"}, "quarantine"),  # no sp: p
        # The subdomain's own record wins over the organisation's.
        (
            {
                "_dmarc.news.example.com": "v=DMARC1; p=none",
                "_dmarc.example.com": "v=DMARC1; p=reject; sp=reject",
            },
            "none",
        ),
    ],
)
def test_a_subdomain_gets_the_organisations_sp(
    dns: FakeDns, resolver: Resolver, records: dict[str, str], policy: str
) -> None:
    for name, record in records.items():
        dns.txt(name, record)
    verdict = check(mail("owner@news.example.com"), resolver)
    assert verdict.from_domain == "news.example.com"
    assert verdict.dmarc.policy == policy
    expected = "hold" if policy in ("reject", "quarantine") else "accept"
    assert verdict.decide("dmarc").action == expected


@pytest.mark.parametrize(
    ("mode", "action"), [("", "accept"), ("adkim=r;", "accept"), ("adkim=s;", "hold")]
)
def test_dkim_alignment_relaxed_and_strict(
    dns: FakeDns, resolver: Resolver, key: Key, mode: str, action: str
) -> None:
    dns.txt("_dmarc.example.com", f"v=DMARC1; p=reject; {mode}")
    verdict = check(signed(mail(), key, domain="mail.example.com"), resolver)
    assert verdict.dkim[0].result == "pass"
    assert verdict.decide("dmarc").action == action


@pytest.mark.parametrize(("mode", "action"), [("aspf=r", "accept"), ("aspf=s", "hold")])
def test_spf_alignment_relaxed_and_strict(
    dns: FakeDns, resolver: Resolver, mode: str, action: str
) -> None:
    dns.txt("_dmarc.example.com", f"v=DMARC1; p=reject; {mode}")
    dns.txt("bounces.example.com", f"v=spf1 ip4:{SENDER_IP} -all")
    envelope = Envelope(SENDER_IP, "mx.example.com", "b@bounces.example.com")
    verdict = check(mail(), resolver, envelope)
    assert verdict.spf is not None and verdict.spf.result == "pass"
    assert verdict.decide("dmarc").action == action


def test_spf_pass_for_the_from_domain_is_accepted(dns: FakeDns, resolver: Resolver) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    # Through mx and a: the fake answers MX and A questions as well.
    dns.txt("example.com", "v=spf1 mx a:out.example.com -all")
    dns.mx("example.com", "mx1.example.com")
    dns.a("mx1.example.com", "203.0.113.5")
    dns.a("out.example.com", SENDER_IP)
    envelope = Envelope(SENDER_IP, "out.example.com", "owner@example.com")
    verdict = check(mail(), resolver, envelope)
    assert verdict.spf is not None
    assert (verdict.spf.result, verdict.spf.domain, verdict.spf.identity) == (
        "pass",
        "example.com",
        "mailfrom",
    )
    assert verdict.dmarc.aligned_by == "spf"
    assert verdict.decide("dmarc").action == "accept"
    assert dns.asked("MX") == 1 and dns.asked("A") >= 2


def test_spf_fail_is_held(dns: FakeDns, resolver: Resolver) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    dns.txt("example.com", f"v=spf1 ip4:{SENDER_IP} -all")
    verdict = check(mail(), resolver, Envelope(OTHER_IP, "mx.evil.example", "owner@example.com"))
    assert verdict.spf is not None and verdict.spf.result == "fail"
    decision = verdict.decide("dmarc")
    assert decision.action == "hold"
    assert decision.detail.endswith("and SPF fail for example.com")


def test_the_null_sender_is_checked_by_its_helo(dns: FakeDns, resolver: Resolver) -> None:
    dns.txt("mx.example.com", f"v=spf1 ip4:{SENDER_IP} -all")
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    verdict = check(mail(), resolver, Envelope(SENDER_IP, "mx.example.com", ""))
    assert verdict.spf is not None
    assert (verdict.spf.result, verdict.spf.domain, verdict.spf.identity) == (
        "pass",
        "mx.example.com",
        "helo",
    )
    assert verdict.decide("dmarc").action == "accept"  # mx.example.com aligns relaxed


def test_forged_authentication_results_are_ignored(dns: FakeDns, resolver: Resolver) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    forged = "Authentication-Results: evil.example; dmarc=pass header.from=example.com"
    verdict = check(mail("owner@example.com", "Hi\r\n", forged), resolver)
    assert "ignored Authentication-Results from evil.example (not trusted)" in verdict.ignored
    assert verdict.trusted == ()
    assert verdict.decide("dmarc").action == "hold"


def test_a_trusted_servers_results_count(dns: FakeDns, resolver: Resolver) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    header = (
        "Authentication-Results: mx.porch.example;\r\n"
        "\tspf=pass smtp.mailfrom=owner@example.com;\r\n"
        "\tdmarc=pass (p=reject) header.from=example.com"
    )
    verdict = check(mail("owner@example.com", "Hi\r\n", header), resolver)
    assert verdict.trusted == (
        "mx.porch.example; spf=pass smtp.mailfrom=owner@example.com; "
        "dmarc=pass (p=reject) header.from=example.com",
    )
    assert verdict.dmarc.aligned_by == "authentication-results"
    assert verdict.decide("dmarc").action == "accept"


def test_a_trusted_pass_for_another_domain_does_not_count(dns: FakeDns, resolver: Resolver) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    header = "Authentication-Results: mx.porch.example; dmarc=pass header.from=evil.example"
    verdict = check(mail("owner@example.com", "Hi\r\n", header), resolver)
    assert verdict.decide("dmarc").action == "hold"


def test_unreadable_authentication_results_are_ignored(dns: FakeDns, resolver: Resolver) -> None:
    stuffed = "Authentication-Results: mx.porch.example; " + "dkim=pass header.d=x.example; " * 400
    headers = ["Authentication-Results: ;;; = =", stuffed]
    verdict = check(mail("owner@example.com", "Hi\r\n", *headers), resolver)
    assert "ignored an unreadable Authentication-Results header" in verdict.ignored
    assert any("characters" in reason for reason in verdict.ignored)


@pytest.mark.parametrize("failure", ["fail", "silence"])
def test_a_dns_failure_on_the_dmarc_record_asks_for_a_retry(
    dns: FakeDns, resolver: Resolver, key: Key, failure: str
) -> None:
    getattr(dns, failure)("_dmarc.example.com")
    verdict = check(signed(mail(), key), resolver)
    assert verdict.dmarc.result == "temperror"
    for policy in ("dmarc", "strict"):
        decision = verdict.decide(policy)
        assert (decision.action, decision.reason) == ("retry", "dns_error")
        assert "_dmarc.example.com" in decision.detail
    assert verdict.decide("off").action == "accept"


def test_a_dns_failure_on_the_aligned_key_asks_for_a_retry(
    dns: FakeDns, resolver: Resolver, key: Key
) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    dns.fail(f"{SELECTOR}._domainkey.example.com")
    verdict = check(signed(mail(), key), resolver)
    assert verdict.dkim[0].result == "temperror"
    assert (verdict.dmarc.result, verdict.dmarc.temporary) == ("fail", True)
    assert verdict.decide("dmarc").action == "retry"


def test_a_missing_key_is_a_permanent_error(dns: FakeDns, resolver: Resolver, key: Key) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    raw = signed(mail("owner@other.example"), key, domain="other.example")
    verdict = check(raw, resolver)
    assert verdict.dkim[0].result == "permerror"
    assert verdict.dkim[0].reason == f"no key published at {SELECTOR}._domainkey.other.example"


def test_off_accepts_whatever_the_domain_publishes(dns: FakeDns, resolver: Resolver) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    decision = check(mail(), resolver).decide("off")
    assert (decision.action, decision.reason) == ("accept", "")


def test_an_unknown_policy_is_refused(dns: FakeDns, resolver: Resolver) -> None:
    with pytest.raises(ValueError, match="sender_checks: expected one of .* got 'lax'"):
        check(mail(), resolver).decide("lax")


@pytest.mark.parametrize(
    "froms",
    [[], ["a@example.com", "b@example.com"], ["a@example.com, b@evil.example"], ["nobody"]],
)
def test_mail_without_one_from_address_is_held(
    dns: FakeDns, resolver: Resolver, froms: list[str]
) -> None:
    headers = [f"From: {value}" for value in froms]
    raw = ("\r\n".join([*headers, "Subject: hi"]) + "\r\n\r\nHi\r\n").encode()
    verdict = check(raw, resolver)
    assert verdict.from_domain is None
    assert verdict.decide("dmarc").reason == "unauthenticated"


GARBAGE_SIGNATURES = [
    "DKIM-Signature: garbage",
    "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; b=!!!; bh=???; h=from",
    "DKIM-Signature: v=1; a=md5; d=example.com; s=s1; bh=AAAA; b=AAAA; h=from",
    "DKIM-Signature: v=1; a=rsa-sha256; d=; s=; bh=AAAA; b=AAAA; h=from",
    "DKIM-Signature: v=1; a=rsa-sha256; d=exa..mple; s=s1; bh=AAAA; b=AAAA; h=from",
    "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; bh=AAAA; b=AAAA; h=from; x=1",
    "DKIM-Signature: \x00\xff=;;;",
]


def test_garbage_signatures_are_results_not_exceptions(dns: FakeDns, resolver: Resolver) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    verdict = check(mail("owner@example.com", "Hi\r\n", *GARBAGE_SIGNATURES[:5]), resolver)
    assert len(verdict.dkim) == 5
    assert {result.result for result in verdict.dkim} <= {"permerror", "fail"}
    assert verdict.decide("dmarc").action == "hold"
    for header in GARBAGE_SIGNATURES[5:]:
        check(mail("owner@example.com", "Hi\r\n", header), resolver)  # does not raise
    json.dumps(verdict.to_json())  # every part is JSON


def test_fifty_signatures_cost_at_most_five_key_lookups(
    dns: FakeDns, resolver: Resolver, key: Key
) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    junk = [
        f"DKIM-Signature: v=1; a=rsa-sha256; d=junk{n}.example; s=s1; bh=AAAA; b=AAAA; h=from"
        for n in range(49)
    ]
    # 50 signatures, the real one last: aligned signatures are verified first.
    raw = signed(mail("owner@example.com", "Hi\r\n"), key)
    raw = ("\r\n".join(junk) + "\r\n").encode() + raw
    verdict = check(raw, resolver)
    assert len(verdict.dkim) == 5
    assert verdict.dkim[0].result == "pass"
    assert verdict.decide("dmarc").action == "accept"
    assert sum(n for (name, _), n in dns.queries.items() if "._domainkey." in name) <= 5
    assert "45 more DKIM signatures not verified (at most 5)" in verdict.ignored


def forwarded_through_a_list(key: Key, raw: bytes, trusted_first_hop: str) -> bytes:
    """What a mailing list does: checks the mail (its Authentication-Results), changes the
    body (a footer, which breaks the author's DKIM signature), seals it with ARC."""
    results = (
        f"Authentication-Results: {trusted_first_hop}; dkim=pass header.d=example.com;"
        " dmarc=pass header.from=example.com\r\n"
    ).encode()
    changed = results + raw + b"-- \r\nThe bakers' list\r\n"
    seal = dkim.arc_sign(
        changed, SELECTOR.encode(), b"lists.example", key.private, trusted_first_hop.encode()
    )
    # The list's own Authentication-Results stays behind; only its sealed copy travels.
    return b"".join(seal) + changed.removeprefix(results)


def test_a_trusted_arc_chain_vouches_for_a_broken_signature(
    dns: FakeDns, resolver: Resolver, key: Key
) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    raw = forwarded_through_a_list(key, signed(mail(), key), "lists.example")
    trusted = check(raw, resolver, trusted=frozenset({"lists.example"}))
    assert trusted.dkim[0].result == "fail"
    assert trusted.dmarc.aligned_by == "arc"
    assert trusted.decide("dmarc").action == "accept"
    untrusted = check(raw, resolver)
    assert "ARC chain not used: sealed by lists.example, not trusted" in untrusted.ignored
    assert untrusted.decide("dmarc").action == "hold"


def test_a_broken_arc_chain_is_not_used(dns: FakeDns, resolver: Resolver, key: Key) -> None:
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    raw = forwarded_through_a_list(key, signed(mail(), key), "lists.example")
    verdict = check(
        raw.replace(b"bakers'", b"fakers'"), resolver, trusted=frozenset({"lists.example"})
    )
    assert any(reason.startswith("ARC chain not used") for reason in verdict.ignored)
    assert verdict.decide("dmarc").action == "hold"


async def test_runs_in_a_thread_from_async_code(dns: FakeDns, key: Key) -> None:
    """As the pipeline runs it: asyncio.to_thread, the fake server answering meanwhile."""
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    resolver = Resolver([dns.address])
    verdicts = await asyncio.gather(
        *(asyncio.to_thread(check, signed(mail(), key), resolver) for _ in range(4))
    )
    assert {verdict.decide("dmarc").action for verdict in verdicts} == {"accept"}


@pytest.mark.parametrize(
    ("nameserver", "complaint"),
    [
        ("dns.example", "expected an IP address"),
        ("127.0.0.1:99999", "port must be a number from 1 to 65535"),
        ("[::1]:x", "port must be a number"),
    ],
)
def test_a_bad_nameserver_is_refused_by_name(nameserver: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"nameserver {nameserver!r}: ") + complaint):
        Resolver([nameserver])
