"""Who really sent a mail: DKIM, SPF and DMARC, and the results of servers we trust.

A reply tag proves the thread and the From address proves nothing on its own: anyone can
write any From. `authenticate` gathers what does prove the sender (a verified DKIM
signature, SPF for the connecting server, a trusted server's Authentication-Results or
ARC chain) and asks DMARC whether any of it speaks for the From domain;
`Authentication.decide` applies a site's `sender_checks` setting to that.

Synchronous and slow (DNS, RSA): run it in a thread. It never raises for bad mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import getaddresses

import dkim  # type: ignore[import-untyped,unused-ignore]

from relay.channels.email.authentication.arc import arc_reported
from relay.channels.email.authentication.dmarc import DmarcResult, Evidence, evaluate
from relay.channels.email.authentication.resolver import DnsTemporaryError, Resolver
from relay.channels.email.authentication.results import Reported, reported
from relay.channels.email.authentication.signatures import (
    DKIMPY_LOG,
    DkimResult,
    verify_signatures,
)
from relay.channels.email.authentication.spf_check import SpfResult, check_spf
from relay.channels.email.authentication.verdict import Authentication, Decision

__all__ = [
    "Authentication",
    "Decision",
    "DkimResult",
    "DmarcResult",
    "DnsTemporaryError",
    "Envelope",
    "Resolver",
    "SpfResult",
    "authenticate",
]


@dataclass(frozen=True)
class Envelope:
    """What the receiving SMTP server saw; only the SMTP ingress has one."""

    peer_ip: str
    helo: str | None
    mail_from: str  # "" for the null sender <>


def authenticate(
    raw: bytes,
    envelope: Envelope | None,
    *,
    resolver: Resolver,
    trusted_authserv_ids: frozenset[str],
) -> Authentication:
    trusted_ids = frozenset(name.lower() for name in trusted_authserv_ids)
    try:
        message = dkim.DKIM(raw, logger=DKIMPY_LOG)
        headers: list[tuple[bytes, bytes]] = list(message.headers)
    except Exception:  # dkimpy's parser raises many kinds on hostile input
        unreadable = DmarcResult("none", None, None, None, False, "unreadable headers")
        return Authentication(None, (), None, unreadable, (), ("unreadable headers",))
    from_domain = _from_domain(headers)
    dkim_results, ignored = verify_signatures(message, from_domain, resolver)
    spf = None
    if envelope is not None:
        spf = check_spf(envelope.peer_ip, envelope.mail_from, envelope.helo, resolver)
    values = [
        value.decode("utf-8", "replace")
        for name, value in headers
        if name.lower() == b"authentication-results"
    ]
    if envelope is None:
        receiving = reported(values, trusted_ids)
        chain = arc_reported(raw, headers, resolver, trusted_ids)
    else:  # the relay is the receiving server: any such header came with the mail
        receiving = chain = Reported(
            (), (), ("Authentication-Results and ARC not read: received by SMTP here",)
        )

    # What passed, in the order aligned_by prefers, and what might pass on a retry.
    checked = [(Evidence("dkim", "dkim", result.domain), result.result) for result in dkim_results]
    if spf is not None:
        checked.append((Evidence("spf", "spf", spf.domain), spf.result))
    evidence = [item for item, outcome in checked if outcome == "pass"]
    temporary = [item for item, outcome in checked if outcome == "temperror"]
    evidence += [*receiving.evidence, *chain.evidence]
    if from_domain is None:
        dmarc = DmarcResult("none", None, None, None, False, "no single From address")
    else:
        dmarc = evaluate(from_domain, resolver, evidence, temporary)
    return Authentication(
        from_domain,
        dkim_results,
        spf,
        dmarc,
        receiving.trusted + chain.trusted,
        ignored + receiving.ignored + chain.ignored,
    )


def _from_domain(headers: list[tuple[bytes, bytes]]) -> str | None:
    """RFC 7489 §6.6.1: the domain of the one From address; None for no From, several
    From fields or several addresses (whose domain would DMARC check?)."""
    values = [value for name, value in headers if name.lower() == b"from"]
    if len(values) != 1:
        return None
    addresses = [address for _, address in getaddresses([values[0].decode("utf-8", "replace")])]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None
    domain = addresses[0].rpartition("@")[2].strip().lower().rstrip(".")
    try:
        return domain.encode("idna").decode("ascii") if domain else None
    except UnicodeError:  # not a name DNS could hold
        return None
