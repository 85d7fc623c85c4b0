"""DMARC (RFC 7489): does anything that authenticated this mail speak for its From domain,
and what does that domain ask receivers to do with mail where nothing does?

Evidence is what passed: our own DKIM and SPF checks, and the results a trusted receiving
server (Authentication-Results) or a validated ARC chain reported. The result is "pass"
as soon as one piece is aligned with the From domain, whether or not the domain publishes
a record: a site's "strict" setting asks exactly that of every sender.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList  # type: ignore[import-untyped,unused-ignore]

from relay.channels.email.authentication.resolver import DnsTemporaryError, Resolver


@functools.cache
def suffixes() -> PublicSuffixList:
    """The list ships inside the package (no network); ICANN and private suffixes both, as
    RFC 7489 §3.2 intends: two github.io sites are two organisations. Read on first use:
    parsing it takes ~60 ms, which `porch --help` need not pay."""
    return PublicSuffixList()


POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class Evidence:
    """One thing that passed. `method`: "dkim" (domain: its d=), "spf" (domain: the MAIL
    FROM or HELO domain) or "dmarc" (a trusted server's dmarc=pass; domain: its
    header.from, None when it named none). `by`: who checked it ("dkim", "spf",
    "authentication-results", "arc")."""

    by: str
    method: str
    domain: str | None


@dataclass(frozen=True)
class DmarcResult:
    result: str  # "pass" | "fail" | "none" | "temperror" (the record's lookup failed)
    policy: str | None  # what the From domain asks (sp= for a subdomain); None: no record
    aligned_by: str | None  # the `by` of the evidence that passed
    record: str | None  # the domain whose _dmarc record applies
    # Nothing passed, but an aligned DKIM key or SPF lookup failed only temporarily: the
    # same mail may pass when the sender tries again.
    temporary: bool
    detail: str


@dataclass(frozen=True)
class Record:
    domain: str
    policy: str
    dkim_alignment: str  # "r" relaxed | "s" strict
    spf_alignment: str


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label (a bare suffix stands for itself)."""
    return str(suffixes().privatesuffix(domain) or domain)


def aligned(domain: str, from_domain: str, mode: str) -> bool:
    """RFC 7489 §3.1.1/§3.1.2: strict ("s") wants the very same name; relaxed ("r") the
    same organisational domain."""
    domain, from_domain = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    if mode == "s":
        return domain == from_domain
    return organizational_domain(domain) == organizational_domain(from_domain)


def find_record(from_domain: str, resolver: Resolver) -> Record | None:
    """RFC 7489 §6.6.3: _dmarc.<From domain>, else _dmarc.<organisational domain>; None
    when neither publishes exactly one record. Raises DnsTemporaryError."""
    organization = organizational_domain(from_domain)
    for domain in dict.fromkeys((from_domain, organization)):
        found = [tags for tags in map(_tags, resolver.txt(f"_dmarc.{domain}")) if tags]
        if len(found) > 1:  # §6.6.3 step 5: several records, as if none
            return None
        if found:
            return _record(domain, found[0], subdomain=domain != from_domain)
    return None


def evaluate(
    from_domain: str,
    resolver: Resolver,
    evidence: Sequence[Evidence],
    temporary: Sequence[Evidence] = (),
) -> DmarcResult:
    """`evidence`: what passed, in order of preference; `temporary`: what could not be
    checked for a temporary DNS failure (DKIM keys, SPF)."""
    try:
        record = find_record(from_domain, resolver)
    except DnsTemporaryError as error:
        # Alignment modes live in the record: without it, only a receiving server's own
        # DMARC verdict can be trusted.
        for item in evidence:
            if item.method == "dmarc" and item.domain in (None, from_domain):
                return DmarcResult("pass", None, item.by, None, False, "")
        return DmarcResult("temperror", None, None, None, False, str(error))
    policy = record.policy if record else None
    where = record.domain if record else None

    def aligns(item: Evidence) -> bool:
        if item.method == "dmarc":
            return item.domain in (None, from_domain)
        mode = "r"  # RFC 7489 §6.3: adkim= and aspf= default to relaxed
        if record is not None:
            mode = record.dkim_alignment if item.method == "dkim" else record.spf_alignment
        return item.domain is not None and aligned(item.domain, from_domain, mode)

    for item in evidence:
        if aligns(item):
            return DmarcResult("pass", policy, item.by, where, False, "")
    could_pass = any(aligns(item) for item in temporary)
    if record is None:
        return DmarcResult("none", None, None, None, could_pass, "no DMARC record")
    return DmarcResult("fail", policy, None, where, could_pass, "")


def _tags(text: bytes) -> dict[str, str]:
    """A DMARC record's tags (RFC 7489 §6.3), {} when it is not one: it must begin with
    v=DMARC1 (§6.6.3 step 3 discards other TXT records at the name)."""
    pairs = [part.partition("=") for part in text.decode("ascii", "replace").split(";")]
    tags = {name.strip().lower(): value.strip() for name, _, value in pairs if name.strip()}
    first = pairs[0][0].strip().lower() if pairs else ""
    return tags if first == "v" and tags.get("v") == "DMARC1" else {}


def _record(domain: str, tags: dict[str, str], *, subdomain: bool) -> Record:
    # §6.6.3 step 6 says a record without a valid p= counts as p=none when it asks for
    # reports and not at all otherwise: either way nothing is held for it, so p=none.
    policy = tags.get("p", "").lower()
    policy = policy if policy in POLICIES else "none"
    # sp= is for subdomains of the domain that published it (§6.3); absent, p= applies.
    if subdomain and tags.get("sp", "").lower() in POLICIES:
        policy = tags["sp"].lower()
    # pct= (sampling) is not honoured: a message that fails is held for the owner to
    # see, which is cheap to undo, and DMARCbis drops the tag.
    return Record(
        domain,
        policy,
        "s" if tags.get("adkim", "").lower() == "s" else "r",
        "s" if tags.get("aspf", "").lower() == "s" else "r",
    )
