"""DNS for sender checks: dnspython's synchronous resolver, answers cached by TTL.

Every check (DKIM keys, SPF records, DMARC records) asks through one `Resolver`, so one
set of nameservers, one timeout and one cache serve them all. A name that does not exist
or has no such record is an empty answer; a server that fails or does not answer is a
`DnsTemporaryError`, which the checks report as "temperror" (the sender is asked to try
again later rather than judged on a lookup that never finished).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

# Seconds one lookup may take, retries included: RFC 7208 §4.6.4 asks SPF checkers for at
# least 20 s in all, spread over its lookups; a DKIM key or DMARC record is one lookup.
LOOKUP_SECONDS = 5.0
# Answers kept (each a few hundred bytes); dnspython drops them when their TTL runs out.
CACHE_ENTRIES = 4096
DNS_PORT = 53


class DnsTemporaryError(Exception):
    """The lookup did not finish (SERVFAIL, timeout, no usable nameserver)."""


class Resolver:
    def __init__(self, nameservers: Sequence[str] = (), *, lifetime: float = LOOKUP_SECONDS):
        """`nameservers`: "host[:port]" each ("[v6]:port" for IPv6 with a port); empty: the
        system's (/etc/resolv.conf)."""
        try:
            self._resolver = dns.resolver.Resolver(configure=not nameservers)
        except dns.resolver.NoResolverConfiguration:
            raise ValueError(
                "no nameservers given and the system names none (/etc/resolv.conf)"
            ) from None
        if nameservers:
            self._resolver.nameservers = [_nameserver(text) for text in nameservers]
        self._resolver.lifetime = lifetime
        self._resolver.timeout = min(self._resolver.timeout, lifetime)
        self._resolver.cache = dns.resolver.LRUCache(CACHE_ENTRIES)

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record's strings joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        return [b"".join(rdata.strings) for rdata in self._query(name, dns.rdatatype.TXT)]

    def addresses(self, name: str, family: str = "A") -> list[str]:
        """A ("A") or AAAA ("AAAA") addresses, as text."""
        return [rdata.address for rdata in self._query(name, dns.rdatatype.from_text(family))]

    def mx(self, name: str) -> list[tuple[int, str]]:
        return [
            (rdata.preference, rdata.exchange.to_text(omit_final_dot=True))
            for rdata in self._query(name, dns.rdatatype.MX)
        ]

    def ptr(self, name: str) -> list[str]:
        return [
            rdata.target.to_text(omit_final_dot=True)
            for rdata in self._query(name, dns.rdatatype.PTR)
        ]

    def _query(self, name: str, kind: dns.rdatatype.RdataType) -> list[Any]:
        try:
            # Names come from mail (d=, MAIL FROM): one that is not a valid DNS name has
            # no records, like one that does not exist.
            qname = dns.name.from_text(name)
        except (dns.exception.DNSException, UnicodeError):
            return []
        try:
            answer = self._resolver.resolve(qname, kind, search=False, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN):
            return []
        except dns.exception.DNSException as error:  # SERVFAIL, timeout, a malformed answer
            raise DnsTemporaryError(
                f"DNS lookup of {name} ({kind.name}) failed: {error}"
            ) from error
        return list(answer.rrset) if answer.rrset is not None else []


def _nameserver(text: str) -> dns.nameserver.Do53Nameserver:
    host, port = text.strip(), DNS_PORT
    if host.startswith("["):  # [2001:db8::1]:5353
        host, _, rest = host[1:].partition("]")
        if rest:
            port = _port(text, rest.removeprefix(":"))
    elif host.count(":") == 1:  # 192.0.2.1:5353 (a bare IPv6 address has several colons)
        host, _, rest = host.partition(":")
        port = _port(text, rest)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"nameserver {text!r}: expected an IP address with an optional port "
            "(192.0.2.1, 192.0.2.1:5353, [2001:db8::1]:5353)"
        ) from None
    return dns.nameserver.Do53Nameserver(host, port)


def _port(text: str, port: str) -> int:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"nameserver {text!r}: port must be a number from 1 to 65535")
    return int(port)
