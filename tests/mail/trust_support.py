"""Senders a relay can believe, or not, for the end-to-end tests of trust in emailed
replies: DKIM keys the tests generate, a DNS server on loopback publishing them with each
domain's DMARC policy, and replies delivered with a real SMTP envelope."""

from __future__ import annotations

import base64
import email
import email.policy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib
import dkim  # type: ignore[import-untyped,unused-ignore]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.dns_server import FakeDns
from tests.mail.conftest import OWNER, REPLY_DOMAIN
from tests.support import RunningRelay

SELECTOR = "s1"
SENDER_HELO = "mx.sender.example"  # what the sending server says in EHLO
# Each domain's DMARC policy (None: it publishes no record); each has the test key at
# s1._domainkey, so a test chooses between signed and unsigned mail from any of them.
POLICIES: dict[str, str | None] = {
    "alpha.example": "reject",  # the owner's: ALPHA's owner is owner@alpha.example
    "beta.example": "reject",
    "quarantine.example": "quarantine",
    "none.example": "none",
    "norecord.example": None,
    "flaky.example": "reject",  # its _dmarc record fails while a test says so
}


@dataclass(frozen=True)
class Key:
    private: bytes  # PKCS#1 PEM, as dkim.sign takes it
    record: str  # the TXT record publishing the public half


def new_key() -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Key(pem, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}")


@contextmanager
def sender_dns(key: Key) -> Iterator[FakeDns]:
    """A DNS server publishing `key` and the policy of every domain in POLICIES."""
    with FakeDns() as server:
        for domain, policy in POLICIES.items():
            server.txt(f"{SELECTOR}._domainkey.{domain}", key.record)
            if policy is not None:
                server.txt(f"_dmarc.{domain}", f"v=DMARC1; p={policy}")
        # The sending server may send for itself (SPF checks its HELO for the null sender).
        server.txt(SENDER_HELO, "v=spf1 ip4:127.0.0.0/8 -all")
        yield server


def named(row: Any) -> dict[str, Any]:
    """A row of either engine as a dict."""
    return dict(zip(row.keys(), tuple(row), strict=True))


def reply(
    tag: str,
    text: str,
    *,
    sender: str = OWNER,
    headers: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
) -> bytes:
    """A reply to r+TAG@ as a mail client sends it, CRLF line ends (what DKIM signs)."""
    message = EmailMessage()
    for name, value in (headers or {}).items():
        message[name] = value
    message["From"] = f"Owner <{sender}>"
    message["To"] = f"r+{tag}@{REPLY_DOMAIN}"
    message["Subject"] = "Re: Your question"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message.set_content(text + "\n")
    for name, data in (files or {}).items():
        message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return message.as_bytes(policy=email.policy.SMTP)


def signed(raw: bytes, key: Key, domain: str = "alpha.example") -> bytes:
    return dkim.sign(raw, SELECTOR.encode(), domain.encode(), key.private) + raw  # type: ignore[no-any-return]


def message_id(raw: bytes) -> str:
    """The mail's Message-ID as the relay records it: without angle brackets."""
    return str(email.message_from_bytes(raw)["Message-ID"]).strip().strip("<>")


async def deliver(
    relay: RunningRelay,
    raw: bytes,
    *,
    to: str,
    mail_from: str = OWNER,
    port: int | None = None,
    source: str = "127.0.0.1",
) -> None:
    """Over SMTP to the relay's ingress (or `port`), with a real envelope ("" for
    MAIL FROM:<>, the null sender)."""
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=port or relay.config.smtp_port,
        local_hostname=SENDER_HELO,
        source_address=(source, 0),
    )
    async with client:
        await client.sendmail(mail_from, [to], raw)


def inbound(relay: RunningRelay, raw: bytes) -> dict[str, Any] | None:
    """The relay's record of this mail, its authentication parsed; None if none."""
    with relay.db() as db:
        row = db.execute(
            "SELECT verdict, thread_id, peer_ip, helo, mail_from, authentication FROM inbound"
            " WHERE external_id = ?",
            (message_id(raw),),
        ).fetchone()
    if row is None:
        return None
    record = named(row)
    if record["authentication"] is not None:
        record["authentication"] = json.loads(record["authentication"])
    return record


def verdict(relay: RunningRelay, raw: bytes) -> str | None:
    record = inbound(relay, raw)
    return record["verdict"] if record else None


def bodies(relay: RunningRelay, author: str = "owner") -> list[str]:
    with relay.db() as db:
        rows = db.execute(
            "SELECT body FROM messages WHERE author = ? ORDER BY seq", (author,)
        ).fetchall()
    return [row[0] for row in rows]
