"""SPF (RFC 7208): may the connecting server send mail for its MAIL FROM domain?

pyspf evaluates the record; its lookups go through our resolver by overriding the one
method that does DNS (`query.dns`), so the checks share nameservers, timeouts and cache.
Only the SMTP ingress has what SPF needs (the peer's address, MAIL FROM, HELO).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import spf  # type: ignore[import-untyped,unused-ignore]

from relay.channels.email.authentication.resolver import DnsTemporaryError, Resolver

# RFC 7208 §4.6.4: a check should be allowed at least 20 s over all its lookups. With
# its limits (10 lookups, 2 void ones, 10 MX names each), this bounds a slow domain.
SPF_SECONDS = 20.0


@dataclass(frozen=True)
class SpfResult:
    # "pass" | "fail" | "softfail" | "neutral" | "none" | "temperror" | "permerror"
    result: str
    domain: str | None  # the domain checked
    identity: str  # "mailfrom", or "helo" for the null sender
    reason: str


def check_spf(peer_ip: str, mail_from: str, helo: str | None, resolver: Resolver) -> SpfResult:
    """RFC 7208 §2.4: the null sender <> (a bounce) is checked as postmaster@<HELO>."""
    identity = "mailfrom" if mail_from else "helo"
    if not mail_from and not helo:
        return SpfResult("none", None, identity, "no MAIL FROM or HELO to check")
    try:
        query = _Query(resolver, i=peer_ip, s=mail_from, h=helo or "")
        domain = str(query.o).lower().rstrip(".")
        result, _, explanation = query.check()
    except Exception as error:  # pyspf raises on addresses and names it cannot read
        return SpfResult("permerror", None, identity, str(error) or type(error).__name__)
    return SpfResult(str(result), domain or None, identity, str(explanation))


class _Query(spf.query):  # type: ignore[misc]
    def __init__(self, resolver: Resolver, **query: Any) -> None:
        super().__init__(**query)
        self._resolver = resolver
        self._deadline = time.monotonic() + SPF_SECONDS

    def dns(
        self, name: str, qtype: str, cnames: object = None, ignore_void: bool = False
    ) -> list[Any]:
        """pyspf's one DNS method: A/AAAA/PTR as names or addresses, MX as (preference,
        name), TXT as one tuple of strings per record. CNAMEs are followed by dnspython."""
        if time.monotonic() > self._deadline:
            raise spf.TempError(f"SPF check took over {SPF_SECONDS:.0f} s")
        name = str(name).rstrip(".").lower()
        try:
            answer: list[Any]
            if qtype == "TXT":
                answer = [(record,) for record in self._resolver.txt(name)]
            elif qtype in ("A", "AAAA"):
                answer = self._resolver.addresses(name, qtype)
            elif qtype == "MX":
                answer = self._resolver.mx(name)
            elif qtype == "PTR":
                answer = self._resolver.ptr(name)
            else:  # type 99 (SPF), asked only in pyspf's "harsh" mode, which we do not use
                answer = []
        except DnsTemporaryError as error:
            raise spf.TempError(str(error)) from error
        # RFC 7208 §4.6.4: more than two lookups that find nothing is an error.
        if not answer and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return answer
