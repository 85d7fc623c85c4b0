"""ARC (RFC 8617): what the first server of a forwarding chain found, when the chain holds.

A mailing list or a forwarding mailbox changes a message and breaks its DKIM signature;
ARC lets each hop seal what it saw. When dkimpy validates the whole chain (cv=pass) and
the first hop (i=1) is a server the site trusts, sealing with its own domain, that hop's
ARC-Authentication-Results count like its Authentication-Results would.
"""

from __future__ import annotations

import re

import dkim  # type: ignore[import-untyped,unused-ignore]
from dkim.util import parse_tag_value  # type: ignore[import-untyped,unused-ignore]

from relay.channels.email.authentication.dmarc import organizational_domain
from relay.channels.email.authentication.resolver import Resolver
from relay.channels.email.authentication.results import Reported, reported
from relay.channels.email.authentication.signatures import DKIMPY_LOG, KeyLookup

# ARC sets verified: each is two signatures, so two key lookups. RFC 8617 §4.2.1 allows
# 50; real chains are a list or two deep.
MAX_SETS = 8
FIRST_INSTANCE = re.compile(rb"^\s*i\s*=\s*1\s*;")
NOTHING = Reported((), (), ())


def arc_reported(
    raw: bytes,
    headers: list[tuple[bytes, bytes]],
    resolver: Resolver,
    trusted_ids: frozenset[str],
) -> Reported:
    """The trusted first hop's results, or why there are none. `headers`: the message's
    (name, value) pairs as dkimpy parsed them."""
    seals = [value for name, value in headers if name.lower() == b"arc-seal"]
    if not seals:
        return NOTHING
    if not trusted_ids:  # no first hop could be trusted: spare the lookups
        return Reported((), (), ("ARC chain not checked: no trusted authserv-id",))
    if len(seals) > MAX_SETS:
        return Reported(
            (), (), (f"ARC chain of {len(seals)} sets not checked (at most {MAX_SETS})",)
        )
    lookup = KeyLookup(resolver)
    try:
        validation, _, reason = dkim.ARC(raw, logger=DKIMPY_LOG).verify(dnsfunc=lookup)
    except Exception as error:  # dkimpy's parsers raise many kinds on hostile input
        validation, reason = dkim.CV_Fail, str(error) or type(error).__name__
    if validation != dkim.CV_Pass:
        because = f"{reason} ({lookup.failure})" if lookup.failure else str(reason)
        return Reported((), (), (f"ARC chain not used: {because}",))
    first = [
        FIRST_INSTANCE.sub(b"", value, count=1)
        for name, value in headers
        if name.lower() == b"arc-authentication-results" and FIRST_INSTANCE.match(value)
    ]
    if len(first) != 1:
        return Reported((), (), ("ARC chain not used: no single i=1 ARC-Authentication-Results",))
    # Anyone can seal a chain that validates, with their own key, and write any authserv-id
    # in it: the first hop counts only if it sealed with the domain of a trusted id
    # (mx.google.com seals as google.com).
    sealer = _first_sealer(headers)
    sealers_ids = frozenset(
        name for name in trusted_ids if sealer and organizational_domain(name) == sealer
    )
    if not sealers_ids:
        return Reported((), (), (f"ARC chain not used: sealed by {sealer or '?'}, not trusted",))
    return reported([first[0].decode("utf-8", "replace")], sealers_ids, by="arc")


def _first_sealer(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The organisational domain of the i=1 ARC-Seal's d=."""
    for name, value in headers:
        if name.lower() != b"arc-seal":
            continue
        try:
            tags = parse_tag_value(re.sub(rb"\s+", b"", value))
        except Exception:  # a malformed seal: the chain did not validate anyway
            continue
        if tags.get(b"i") == b"1" and tags.get(b"d"):
            return organizational_domain(tags[b"d"].decode("ascii", "replace").lower())
    return None
