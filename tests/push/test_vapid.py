"""The installation's VAPID key: its forms, its header as a push service checks it, and
one key per installation, whichever relay makes it first (both engines)."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from relay.push.vapid import (
    HEADER_REUSE,
    SECRET_NAME,
    TOKEN_LIFETIME,
    VapidKey,
    audience_of,
    decode_b64url,
    installation_key,
)
from relay.store import SQLiteStore, Store
from relay.store.postgres import PostgresStore
from tests.fakes.push_service import Refusal, verify_vapid
from tests.pg import BOTH_ENGINES, connect

SUBJECT = "mailto:owner@alpha.example"
ENDPOINT = "https://push.example:443/send/abc?x=1"
NOW = 1_900_000_000


def test_the_public_key_is_what_a_browser_takes() -> None:
    key = VapidKey.generate()
    assert len(key.public_key) == 87 and "=" not in key.public_key
    point = decode_b64url(key.public_key, "key")
    assert len(point) == 65 and point[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # a P-256 point


def test_the_stored_form_gives_the_same_key_back() -> None:
    key = VapidKey.generate()
    again = VapidKey.from_stored(key.stored())
    assert again.public_key == key.public_key and again.stored() == key.stored()
    assert len(decode_b64url(key.stored(), "key")) == 32  # the raw private scalar


@pytest.mark.parametrize("bad", ["", "not base64url!", "AAAA", "A" * 44])
def test_a_damaged_stored_key_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="stored VAPID key"):
        VapidKey.from_stored(bad)


def test_a_key_on_another_curve_is_refused() -> None:
    with pytest.raises(ValueError, match="P-256"):
        VapidKey(ec.generate_private_key(ec.SECP384R1()))


def test_the_header_verifies_as_a_push_service_checks_it() -> None:
    key = VapidKey.generate()
    header = key.authorization(ENDPOINT, SUBJECT, now=NOW)
    assert header.startswith("vapid t=") and header.endswith(f", k={key.public_key}")
    claims, signer = verify_vapid(header, "https://push.example", now=NOW)
    assert signer == key.public_key
    assert claims == {"aud": "https://push.example", "exp": NOW + TOKEN_LIFETIME, "sub": SUBJECT}
    assert TOKEN_LIFETIME < 24 * 3600
    # another key's public half does not verify it
    other = VapidKey.generate().public_key
    with pytest.raises(Refusal, match="signature"):
        verify_vapid(header.replace(key.public_key, other), "https://push.example", now=NOW)
    # nor is it good for another push service, or once expired
    with pytest.raises(Refusal, match="aud"):
        verify_vapid(header, "https://other.example", now=NOW)
    with pytest.raises(Refusal, match="exp"):
        verify_vapid(header, "https://push.example", now=NOW + TOKEN_LIFETIME)


@pytest.mark.parametrize(
    ("endpoint", "audience"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", "https://fcm.googleapis.com"),
        ("https://Push.Example:8443/x", "https://push.example:8443"),
        ("http://127.0.0.1:8125/push/x", "http://127.0.0.1:8125"),
        ("https://[2001:db8::1]:443/x", "https://[2001:db8::1]"),
    ],
)
def test_the_audience_is_the_endpoints_origin(endpoint: str, audience: str) -> None:
    assert audience_of(endpoint) == audience


def test_a_burst_signs_once_per_push_service_and_hour() -> None:
    key = VapidKey.generate()
    first = key.authorization(ENDPOINT, SUBJECT, now=NOW)
    assert key.authorization("https://push.example/send/other", SUBJECT, now=NOW + 60) == first
    assert key.authorization("https://other.example/x", SUBJECT, now=NOW + 60) != first
    later = key.authorization(ENDPOINT, SUBJECT, now=NOW + HEADER_REUSE)
    assert later != first
    claims, _ = verify_vapid(later, "https://push.example", now=NOW + HEADER_REUSE)
    assert claims["exp"] == NOW + HEADER_REUSE + TOKEN_LIFETIME


@pytest.mark.parametrize("subject", ["owner@alpha.example", "http://alpha.example", ""])
def test_the_subject_is_a_mailto_or_https_url(subject: str) -> None:
    with pytest.raises(ValueError, match="mailto: or https:"):
        VapidKey.generate().authorization(ENDPOINT, subject)


@BOTH_ENGINES
async def test_one_key_per_installation_whichever_relay_makes_it(store: Store) -> None:
    """Two relays on one database, racing on first use, sign with the same key."""
    other = second_store(store)
    await other.open()
    try:
        first, second = await asyncio.gather(installation_key(store), installation_key(other))
        assert first.public_key == second.public_key
        assert (await installation_key(other)).stored() == first.stored()
    finally:
        await other.close()
    with connect(store) as db:
        rows = db.execute("SELECT name, value FROM installation_secrets").fetchall()
    assert [tuple(row) for row in rows] == [(SECRET_NAME, first.stored())]
    public = serialization.PublicFormat.UncompressedPoint  # the key pair holds together
    assert first._private_key.public_key().public_bytes(
        serialization.Encoding.X962, public
    ) == decode_b64url(first.public_key, "key")


def second_store(store: Store) -> Store:
    """Another relay's store on the same database."""
    if isinstance(store, PostgresStore):
        return PostgresStore(store.url)
    assert isinstance(store, SQLiteStore)
    return SQLiteStore(store.path)
