"""The verdict on who sent a mail, and what a site's `sender_checks` setting does with it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from relay.channels.email.authentication.dmarc import DmarcResult
from relay.channels.email.authentication.signatures import DkimResult
from relay.channels.email.authentication.spf_check import SpfResult
from relay.sites.checks import SENDER_CHECKS  # the site setting's values

# The site setting `sender_checks`: "dmarc" holds what the From domain asks receivers to
# hold; "strict" holds whatever nothing authenticates; "off" goes by tag and From alone.
ENFORCED = ("quarantine", "reject")
SHOWN_SIGNATURES = 3  # in a decision's detail; to_json has them all


@dataclass(frozen=True)
class Decision:
    action: str  # "accept" | "hold" | "retry"
    reason: str  # "dmarc_fail" | "unauthenticated" | "dns_error" | "" (accept)
    detail: str  # one plain sentence for logs and `porch mail inspect`


@dataclass(frozen=True)
class Authentication:
    from_domain: str | None
    dkim: tuple[DkimResult, ...]
    spf: SpfResult | None  # None: this ingress saw no SMTP envelope
    dmarc: DmarcResult
    trusted: tuple[str, ...]  # the trusted Authentication-Results values used
    ignored: tuple[str, ...]  # headers and signatures not used, and why

    def decide(self, policy: str) -> Decision:
        if policy not in SENDER_CHECKS:
            raise ValueError(f"sender_checks: expected one of {SENDER_CHECKS}, got {policy!r}")
        dmarc = self.dmarc
        if policy == "off":
            return Decision("accept", "", "sender checks are off")
        if self.from_domain is None:
            return Decision("hold", "unauthenticated", "the mail has no single From address")
        domain = self.from_domain
        if dmarc.result == "pass":
            return Decision("accept", "", f"{domain} authenticated by {self._passed()}")
        if dmarc.result == "temperror":
            return Decision("retry", "dns_error", f"{domain}'s DMARC record: {dmarc.detail}")
        if policy == "dmarc" and dmarc.policy not in ENFORCED:
            published = "no DMARC record" if dmarc.policy is None else "DMARC p=none"
            return Decision("accept", "", f"{domain} publishes {published}; nothing aligned passed")
        if dmarc.temporary:
            return Decision(
                "retry",
                "dns_error",
                f"{domain}: an aligned check failed temporarily ({self._failures()})",
            )
        if policy == "dmarc":
            detail = f"{domain} publishes DMARC p={dmarc.policy}; {self._failures()}"
            return Decision("hold", "dmarc_fail", detail)
        return Decision(
            "hold", "unauthenticated", f"nothing authenticates {domain}: {self._failures()}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "from_domain": self.from_domain,
            "dkim": [asdict(result) for result in self.dkim],
            "spf": asdict(self.spf) if self.spf else None,
            "dmarc": asdict(self.dmarc),
            "trusted": list(self.trusted),
            "ignored": list(self.ignored),
        }

    def _passed(self) -> str:
        by = self.dmarc.aligned_by
        if by == "dkim":
            signers = [f"d={r.domain}" for r in self.dkim if r.result == "pass"]
            return f"a DKIM signature ({', '.join(signers)})"
        if by == "spf" and self.spf:
            return f"SPF ({self.spf.domain})"
        if by == "arc":
            return "a trusted ARC chain"
        return "a trusted Authentication-Results header"

    def _failures(self) -> str:
        """What was tried, e.g. "no aligned DKIM signature verified (d=evil.example
        fail: body hash mismatch) and no SPF"."""
        signatures = [
            f"d={r.domain} {r.result}" + (f": {r.reason}" if r.reason else "")
            for r in self.dkim[:SHOWN_SIGNATURES]
        ]
        if len(self.dkim) > SHOWN_SIGNATURES:
            signatures.append(f"{len(self.dkim) - SHOWN_SIGNATURES} more")
        dkim = "no aligned DKIM signature verified"
        dkim += f" ({'; '.join(signatures)})" if signatures else " (none present)"
        if self.spf is None:
            spf = "no SPF"
        else:
            spf = f"SPF {self.spf.result} for {self.spf.domain or 'no domain'}"
            if self.spf.result == "pass":
                spf += " (not aligned)"
        return f"{dkim} and {spf}"
