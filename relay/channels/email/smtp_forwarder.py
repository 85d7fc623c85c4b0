"""`porch smtp`: the SMTP ingress as its own process, in front of a running relay.

It accepts mail for our reply addresses exactly as `porch serve --smtp-port` does, and
hands each message to the relay's signed POST /v1/inbound/raw, so live sockets see the
reply at once. When the relay is down or defers, the sending server is told 451 and
keeps the mail: nothing is lost between the two processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time

import httpx

from relay.channels.accept import Outcome, Verdict
from relay.channels.email.authentication import Envelope

FORWARD_TIMEOUT = 30.0  # seconds: the relay answers in milliseconds when it is up


def signature(secret: str, signed: str, body: bytes) -> str:
    """What /v1/inbound/raw checks: hex HMAC-SHA256(secret, signed + "." + body), where
    `signed` is the timestamp, or the timestamp + "." + the envelope header."""
    return hmac.new(secret.encode(), signed.encode() + b"." + body, hashlib.sha256).hexdigest()


class RelayForwarder:
    """Looks like the pipeline to the SMTP handler; posts to the relay instead."""

    def __init__(self, relay_url: str, secret: str) -> None:
        self.url = relay_url.rstrip("/") + "/v1/inbound/raw"
        self.secret = secret
        self.client = httpx.AsyncClient(timeout=FORWARD_TIMEOUT)

    async def receive(
        self,
        raw: bytes,
        *,
        source: str,
        envelope_to: list[str] | None = None,
        envelope: Envelope | None = None,
    ) -> Outcome:
        # The recipients travel as the Delivered-To lines the SMTP handler put on top;
        # what this server saw of the sender, in the signed X-Porch-Envelope.
        timestamp = str(int(time.time()))
        headers = {"content-type": "message/rfc822", "x-porch-timestamp": timestamp}
        signed = timestamp
        if envelope is not None:
            headers["x-porch-envelope"] = json.dumps(dataclasses.asdict(envelope))
            signed += "." + headers["x-porch-envelope"]
        headers["x-porch-signature"] = signature(self.secret, signed, raw)
        try:
            response = await self.client.post(self.url, content=raw, headers=headers)
        except httpx.HTTPError:
            return Outcome(Verdict.DEFERRED)
        if response.status_code == 429 or response.status_code >= 500:
            return Outcome(Verdict.DEFERRED)
        try:
            return Outcome(Verdict(response.json()["verdict"]))
        except (ValueError, KeyError, TypeError):
            return Outcome(Verdict.DEFERRED)  # not the relay we expected: keep the mail

    async def close(self) -> None:
        await self.client.aclose()
