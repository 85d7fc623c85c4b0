"""What a receiving server already checked: Authentication-Results headers (RFC 8601).

When mail reaches us through the owner's mailbox (IMAP) or a provider's webhook we never
see the SMTP session, so SPF cannot be checked here; the server that did see it records
its checks in Authentication-Results. Anyone can write such a header, so only those
whose authserv-id is one the site trusts are used; every other one is reported as
ignored. A trusted server must remove headers carrying its own id from incoming mail
(RFC 8601 §5), as the common ones do; only such servers belong in the trusted set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import authres  # type: ignore[import-untyped,unused-ignore]

from relay.channels.email.authentication.dmarc import Evidence

# Headers read, and the longest read: a real one is a few hundred bytes; these bound the
# parsing a message stuffed with them can cost.
MAX_HEADERS = 20
MAX_HEADER_CHARS = 8 * 1024


@dataclass(frozen=True)
class Reported:
    evidence: tuple[Evidence, ...]  # what a trusted server says passed
    trusted: tuple[str, ...]  # the header values used
    ignored: tuple[str, ...]  # why others were not


def reported(
    values: Iterable[str], trusted_ids: frozenset[str], *, by: str = "authentication-results"
) -> Reported:
    """The passes that trusted headers report. `values`: header values, unfolded or not;
    `trusted_ids`: lowercase authserv-ids."""
    evidence: list[Evidence] = []
    trusted: list[str] = []
    ignored: list[str] = []
    name = "ARC-Authentication-Results" if by == "arc" else "Authentication-Results"
    for count, value in enumerate(values):
        value = " ".join(value.split())
        if count == MAX_HEADERS:
            ignored.append(f"ignored {name} headers after the first {MAX_HEADERS}")
            break
        if len(value) > MAX_HEADER_CHARS:
            ignored.append(f"ignored a {name} header of {len(value)} characters")
            continue
        try:
            header = authres.AuthenticationResultsHeader.parse_value(value)
            authserv_id = str(header.authserv_id).lower()
            passes = [_evidence(result, by) for result in header.results]
        except Exception:  # authres raises many kinds on hostile input
            ignored.append(f"ignored an unreadable {name} header")
            continue
        if authserv_id not in trusted_ids:
            ignored.append(f"ignored {name} from {authserv_id} (not trusted)")
            continue
        trusted.append(value)
        evidence.extend(item for item in passes if item is not None)
    return Reported(tuple(evidence), tuple(trusted), tuple(ignored))


def _evidence(result: object, by: str) -> Evidence | None:
    method = str(getattr(result, "method", "")).lower()
    if str(getattr(result, "result", "")).lower() != "pass":
        return None
    properties = {
        f"{item.type}.{item.name}".lower(): str(item.value)
        for item in getattr(result, "properties", None) or ()
    }
    if method == "dmarc":
        domain = properties.get("header.from")
        return Evidence(by, "dmarc", _domain(domain) if domain else None)
    if method == "dkim":
        # header.d names the signing domain; older servers give only header.i (@domain).
        domain = properties.get("header.d") or properties.get("header.i")
        return Evidence(by, "dkim", _domain(domain)) if domain else None
    if method == "spf":
        domain = properties.get("smtp.mailfrom") or properties.get("smtp.helo")
        return Evidence(by, "spf", _domain(domain)) if domain else None
    return None


def _domain(text: str) -> str:
    return text.rpartition("@")[2].strip().strip('"').lower().rstrip(".")
