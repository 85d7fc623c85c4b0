"""DKIM (RFC 6376): which domains signed this mail, verified with dkimpy over our resolver.

Each DKIM-Signature gets a result in RFC 8601's words: "pass", "fail" (the signature or
the body hash does not match), "temperror" (its key could not be fetched now) or
"permerror" (a malformed signature, no key published). Mail is hostile input: dkimpy's
errors become results, never exceptions, and only a few signatures are verified.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import dkim  # type: ignore[import-untyped,unused-ignore]
from dkim.util import parse_tag_value  # type: ignore[import-untyped,unused-ignore]

from relay.channels.email.authentication.dmarc import aligned
from relay.channels.email.authentication.resolver import DnsTemporaryError, Resolver

# Signatures verified per message: each costs a DNS lookup and a hash of the whole body.
# Real mail carries one to three (the author's domain, its provider's, a list's);
# those aligned with the From domain are verified first, so extra ones cannot push
# the one that matters out.
MAX_SIGNATURES = 5
MAX_CONSIDERED = 50
# The longest reason kept: dkimpy quotes base64 values in its messages.
MAX_REASON_CHARS = 200
# dkimpy logs each signature that fails at ERROR: here that is a result, reported as such,
# not an error of the relay's.
DKIMPY_LOG = logging.getLogger("porch.dkimpy")
DKIMPY_LOG.addHandler(logging.NullHandler())
DKIMPY_LOG.propagate = False


@dataclass(frozen=True)
class DkimResult:
    domain: str  # d=
    selector: str  # s=
    result: str  # "pass" | "fail" | "temperror" | "permerror"
    reason: str


class KeyLookup:
    """dkimpy's `dnsfunc` over our resolver: the key record at a name, and what went wrong
    with the last lookup (dkimpy turns a DNS failure into a plain False)."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.failure = ""  # the last temporary failure
        self.missing = ""  # the last name with no record

    def __call__(self, name: bytes, timeout: float = 5.0) -> bytes | None:
        self.failure = self.missing = ""
        text = name.decode("utf-8", "replace")
        try:
            records = self.resolver.txt(text)
        except DnsTemporaryError as error:
            self.failure = str(error)
            raise dkim.DnsTimeoutError(str(error)) from error
        if not records:
            self.missing = text.rstrip(".")
            return None
        return records[0]  # several records at a selector: RFC 6376 §3.6.2.2 leaves it open


def verify_signatures(
    message: dkim.DKIM, from_domain: str | None, resolver: Resolver
) -> tuple[tuple[DkimResult, ...], tuple[str, ...]]:
    """Results for up to MAX_SIGNATURES signatures, and a note for those not verified."""
    found = [value for name, value in message.headers if name.lower() == b"dkim-signature"]
    # Only the first MAX_CONSIDERED are even read for their d=: a message may carry
    # thousands.
    considered = range(min(len(found), MAX_CONSIDERED))
    order = sorted(considered, key=lambda index: not _aligned(found[index], from_domain))
    lookup = KeyLookup(resolver)
    chosen = order[:MAX_SIGNATURES]
    results = tuple(_verify(message, index, found[index], lookup) for index in chosen)
    skipped = len(found) - len(chosen)
    if not skipped:
        return results, ()
    return results, (f"{skipped} more DKIM signatures not verified (at most {MAX_SIGNATURES})",)


def _verify(message: dkim.DKIM, index: int, header: bytes, lookup: KeyLookup) -> DkimResult:
    tags = _tags(header)
    domain, selector = _text(tags.get(b"d", b"")).lower(), _text(tags.get(b"s", b""))

    def result(kind: str, reason: str = "") -> DkimResult:
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[:MAX_REASON_CHARS] + "…"
        return DkimResult(domain, selector, kind, reason)

    if b"l" in tags:  # anything may follow the signed part of the body: not proof
        return result("fail", "signed with a body length limit (l=): text after it is unsigned")
    lookup.failure = lookup.missing = ""
    try:
        if message.verify(idx=index, dnsfunc=lookup):
            return result("pass")
    except dkim.ValidationError as error:
        reason = str(error)
        return result("fail" if reason.startswith("body hash mismatch") else "permerror", reason)
    except Exception as error:  # dkimpy's parsers raise many kinds on hostile input
        return result("permerror", str(error) or type(error).__name__)
    # dkimpy says only False: what the key lookup saw tells why.
    if lookup.failure:
        return result("temperror", lookup.failure)
    if lookup.missing:
        return result("permerror", f"no key published at {lookup.missing}")
    return result("fail", "signature did not verify")


def _tags(header: bytes) -> dict[bytes, bytes]:
    try:
        tags: dict[bytes, bytes] = parse_tag_value(re.sub(rb"\s+", b"", header))
    except Exception:  # a malformed signature: dkimpy's verify says why
        return {}
    return tags


def _aligned(header: bytes, from_domain: str | None) -> bool:
    domain = _text(_tags(header).get(b"d", b""))
    return bool(from_domain and domain) and aligned(domain, from_domain or "", "r")


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")
