"""The installation's VAPID key pair (RFC 8292): browsers subscribe with its public key
(the `applicationServerKey`), and every push carries a token signed with its private
key, which push services check against the key the subscription was made with.

One pair per installation, kept in the database (installation_secrets): relays sharing
PostgreSQL must sign with the same key, or the devices subscribed through one relay
would refuse pushes from the others.
"""

from __future__ import annotations

import base64
import functools
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid.jwt import sign as sign_jwt

if TYPE_CHECKING:
    from relay.store import Store

SECRET_NAME = "vapid_private_key"  # its row in installation_secrets
# RFC 8292 section 2: `exp` MUST NOT be more than 24 hours ahead (Apple and FCM refuse
# such tokens). 12 hours leaves room for a push service's clock running behind ours.
TOKEN_LIFETIME = 12 * 3600  # seconds
# A signed header is reused for an hour (it then has 11 hours left): a burst to one
# push service signs once, not once per device.
HEADER_REUSE = 3600  # seconds
HEADER_CACHE_SIZE = 64  # audiences: a handful of push services in practice
BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def encode_b64url(data: bytes) -> str:
    """Base64url without padding: how Web Push spells keys (RFC 8291, RFC 8292)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_b64url(text: str, what: str) -> bytes:
    """Base64url, padded or not; ValueError naming `what` if it is not that."""
    if not isinstance(text, str) or not BASE64URL.fullmatch(text):
        raise ValueError(f"{what}: expected base64url text")
    bare = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except ValueError:  # binascii.Error: a length no encoding gives
        raise ValueError(f"{what}: expected base64url text") from None


def audience_of(endpoint: str) -> str:
    """The origin of a push endpoint, as the token's `aud` claim names it."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


class VapidKey:
    """A P-256 key pair that signs VAPID tokens."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError(f"VAPID keys are P-256, got {private_key.curve.name}")
        self._private_key = private_key
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        # 65 bytes (0x04, x, y), 87 characters: what a browser's applicationServerKey takes.
        self.public_key = encode_b64url(point)
        self._headers: dict[tuple[str, str], tuple[int, str]] = {}

    @classmethod
    def generate(cls) -> VapidKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_stored(cls, text: str) -> VapidKey:
        """From what stored() gave: the raw private scalar, base64url (the form
        pywebpush and web-push take, should an installation move to them)."""
        raw = decode_b64url(text, "stored VAPID key")
        if len(raw) != 32:
            raise ValueError(f"stored VAPID key: expected 32 bytes, got {len(raw)}")
        return cls(ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1()))

    def stored(self) -> str:
        return encode_b64url(self._private_key.private_numbers().private_value.to_bytes(32, "big"))

    def authorization(self, endpoint: str, subject: str, now: int | None = None) -> str:
        """The `Authorization` header for a push to `endpoint`: `vapid t=<JWT>, k=<key>`,
        the JWT (ES256) naming the endpoint's origin (`aud`), an expiry (`exp`) and
        who to contact (`sub`, a mailto: or https: URL)."""
        if not subject.startswith(("mailto:", "https://")):
            raise ValueError(f"a VAPID subject is a mailto: or https: URL, got {subject!r}")
        now = int(time.time()) if now is None else now
        audience = audience_of(endpoint)
        cached = self._headers.get((audience, subject))
        if cached is not None and 0 <= now - cached[0] < HEADER_REUSE:
            return cached[1]
        claims = {"aud": audience, "exp": now + TOKEN_LIFETIME, "sub": subject}
        header = f"vapid t={sign_jwt(claims, self._private_key)}, k={self.public_key}"
        if len(self._headers) >= HEADER_CACHE_SIZE:
            self._headers.clear()
        self._headers[(audience, subject)] = (now, header)
        return header


async def installation_key(store: Store) -> VapidKey:
    """The installation's key pair: made on first need and kept in the database; what
    the database holds is what is returned, so relays racing to make it share one."""
    stored = await store.installation_secret(SECRET_NAME, lambda: VapidKey.generate().stored())
    return _loaded(stored)


@functools.lru_cache(maxsize=8)
def _loaded(stored: str) -> VapidKey:
    """One VapidKey per key, so that its signed headers are reused across pushes."""
    return VapidKey.from_stored(stored)
