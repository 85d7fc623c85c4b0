"""A push goes to the very address its endpoint was checked at (no second lookup a
rebinding name could answer otherwise), yet TLS still checks the endpoint's name:
a push service on https as `localhost`, with a certificate of its own."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from relay.models import PushSubscription
from relay.push.sender import Outcome, Result, send
from relay.push.vapid import VapidKey
from tests.fakes.push_service import FakePushService, Tls

SUBJECT = "https://alpha.example/contact"


def certificate(directory: Path, name: str) -> Tls:
    """A self-signed certificate for `name` and for 127.0.0.1 (so that a client
    checking the address it connects to, not the name, would wrongly accept it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / f"{name}.pem", directory / f"{name}.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Tls("localhost", certfile, keyfile)


async def push_over_tls(tmp_path: Path, certified_name: str) -> tuple[Outcome, FakePushService]:
    """A push to https://localhost:PORT served with a certificate for `certified_name`,
    by a client that trusts that certificate."""
    with FakePushService(certificate(tmp_path, certified_name)) as service:
        assert service.tls is not None
        device = service.new_subscription()
        assert device.endpoint.startswith("https://localhost:")
        sub = PushSubscription(
            id="push_1",
            site_id="alpha",
            endpoint=device.endpoint,
            p256dh=device.p256dh,
            auth=device.auth,
            owner_email="owner@alpha.example",
        )
        context = ssl.create_default_context(cafile=str(service.tls.certfile))
        async with httpx.AsyncClient(verify=context, trust_env=False) as client:
            outcome = await send(
                client,
                sub,
                {"body": "hello"},
                key=VapidKey.generate(),
                subject=SUBJECT,
                ttl=60,
                allow=frozenset({service.origin}),
            )
        if outcome.result is Result.DELIVERED:
            [shown] = await service.wait_shown(device)
            assert shown.message == {"body": "hello"}
            assert shown.claims["aud"] == service.origin  # https://localhost:PORT
        return outcome, service


async def test_a_push_over_tls_reaches_the_certified_name(tmp_path: Path) -> None:
    outcome, service = await push_over_tls(tmp_path, "localhost")
    assert outcome.result is Result.DELIVERED and len(service.calls()) == 1


async def test_a_certificate_for_the_address_but_not_the_name_is_refused(tmp_path: Path) -> None:
    outcome, service = await push_over_tls(tmp_path, "elsewhere.example")
    assert outcome.result is Result.RETRY and "certificate" in outcome.reason.lower()
    assert service.calls() == []
