"""One push: the message encrypted for one device (RFC 8291, aes128gcm), POSTed to its
endpoint with the installation's VAPID header (RFC 8292) and the delivery headers of
RFC 8030 (TTL, Urgency, Topic), and what came of it, for the caller to act on: a gone
device is removed, a push service that is down is retried later, a refusal is kept.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from relay.errors import UnprocessableRequest
from relay.models import PushSubscription
from relay.push.endpoints import EndpointUnresolved, pinned, resolve
from relay.push.vapid import VapidKey, decode_b64url, encode_b64url

# aes128gcm in one record of RECORD_SIZE bytes (RFC 8188 section 2, RFC 8291 section 4).
RECORD_SIZE = 4096
# Push services take at most 4096 bytes of body (RFC 8030 section 7.2 lets them refuse
# more; FCM, Mozilla and Apple cap there). The body is an 86-byte header (16 salt + 4
# record size + 1 key id length + 65 our ephemeral public key), then the plaintext, a
# 1-byte record delimiter and a 16-byte tag: 4096 - 86 - 1 - 16 = 3993 bytes of JSON.
MAX_PAYLOAD = 3993
# The message's text, cut (with an ellipsis) when the JSON would be longer than that.
TEXT_FIELD = "body"
# One push may take this long in all (connect, send, the answer): the delivery queue
# must not wait on a push service that hangs.
SEND_TIMEOUT = 10.0  # seconds
# Pushes sent at once by a relay: each goes to its own device's push service, so one
# that hangs (a visitor may subscribe at any public host) holds up no other.
PUSHES_AT_ONCE = 16
URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 section 5.3
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 section 5.4: base64url, <= 32
# What is read of a push service's answer (for a refusal's reason): they are small.
ANSWER_BYTES = 1024
REASON_CHARS = 200


class Result(enum.StrEnum):
    DELIVERED = "delivered"  # the push service took it (201; 200 and 202 from some)
    GONE = "gone"  # 404 or 410: the subscription expired or was revoked; remove it
    RETRY = "retry"  # 5xx, 429, a network error or timeout: try again later
    REFUSED = "refused"  # any other answer, or the endpoint or message is not acceptable


@dataclass(frozen=True)
class Outcome:
    """What came of one push. `reason` is for logs and the owner's view: it names the
    status or error (and the endpoint, if that was refused), never the keys."""

    result: Result
    reason: str = ""
    status: int | None = None  # the push service's HTTP status, when it answered
    retry_after: int | None = None  # seconds it asked us to wait (429, 503)


def topic_for(key: str) -> str:
    """An RFC 8030 Topic for `key` (e.g. a thread id): the same for the same key, so a
    newer push replaces an undelivered older one; 32 base64url characters of a hash."""
    return encode_b64url(hashlib.sha256(key.encode("utf-8")).digest())[:32]


def encrypt(payload: bytes, p256dh: str, auth: str) -> bytes:
    """`payload` encrypted for the device whose keys the browser gave (base64url): a
    fresh ephemeral key and salt per message, one aes128gcm body. ValueError for keys
    that are not a P-256 point and a 16-byte secret."""
    receiver = check_keys(p256dh, auth)
    sender = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        payload,
        salt=os.urandom(16),
        private_key=sender,
        dh=receiver[0],
        auth_secret=receiver[1],
        version="aes128gcm",
        rs=RECORD_SIZE,
    )
    return body


def check_keys(p256dh: str, auth: str) -> tuple[bytes, bytes]:
    """A subscription's keys, decoded: (the public point, the auth secret); ValueError
    saying which is wrong (never echoing them)."""
    point = decode_b64url(p256dh, "keys.p256dh")
    if len(point) != 65 or point[0] != 4:
        raise ValueError("keys.p256dh: expected an uncompressed P-256 point (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise ValueError("keys.p256dh: not a point on P-256") from None
    secret = decode_b64url(auth, "keys.auth")
    if len(secret) != 16:
        raise ValueError(f"keys.auth: expected 16 bytes, got {len(secret)}")
    return point, secret


def payload_of(message: dict[str, Any]) -> bytes:
    """`message` as UTF-8 JSON within MAX_PAYLOAD, its TEXT_FIELD cut if need be;
    ValueError if even without that text it does not fit."""
    encoded = _json(message)
    text = message.get(TEXT_FIELD)
    if len(encoded) <= MAX_PAYLOAD:
        return encoded
    if not isinstance(text, str) or len(_json({**message, TEXT_FIELD: "…"})) > MAX_PAYLOAD:
        raise ValueError(f"a push message takes at most {MAX_PAYLOAD} bytes of JSON")
    fits, too_long = 0, len(text)  # characters of the text: the longest that fits
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if len(_json({**message, TEXT_FIELD: text[:middle] + "…"})) <= MAX_PAYLOAD:
            fits = middle
        else:
            too_long = middle
    return _json({**message, TEXT_FIELD: text[:fits].rstrip() + "…"})


async def send(
    client: httpx.AsyncClient,
    sub: PushSubscription,
    message: dict[str, Any],
    *,
    key: VapidKey,
    subject: str,
    ttl: int,
    urgency: str = "normal",
    topic: str | None = None,
    allow: frozenset[str],
) -> Outcome:
    """Push `message` (JSON) to the device. The endpoint is checked again now (its name
    may resolve elsewhere since it was subscribed) and the request goes to an address
    that passed; no redirect is followed. `ttl`: seconds the push service keeps it for
    a device that is offline; `topic`: see topic_for."""
    if urgency not in URGENCIES:
        raise ValueError(f"urgency: expected one of {', '.join(URGENCIES)}, got {urgency!r}")
    if topic is not None and not TOPIC.fullmatch(topic):
        raise ValueError(f"topic: expected 1 to 32 base64url characters, got {topic!r}")
    if ttl < 0:
        raise ValueError(f"ttl: expected seconds, got {ttl}")
    try:
        body = encrypt(payload_of(message), sub.p256dh, sub.auth)
    except ValueError as error:
        return Outcome(Result.REFUSED, str(error))
    headers = {
        "Authorization": key.authorization(sub.endpoint, subject),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(ttl),
        "Urgency": urgency,
    }
    if topic is not None:
        headers["Topic"] = topic
    try:
        async with asyncio.timeout(SEND_TIMEOUT):  # the name's lookup included
            addresses = await resolve(sub.endpoint, allow)
            status, answer_headers, answer = await pinned(
                client, "POST", sub.endpoint, addresses, headers, body, ANSWER_BYTES
            )
    except EndpointUnresolved as error:
        return Outcome(Result.RETRY, error.message)
    except UnprocessableRequest as error:
        return Outcome(Result.REFUSED, error.message)
    except (httpx.TransportError, TimeoutError) as error:
        return Outcome(Result.RETRY, _error_reason(error))
    except httpx.InvalidURL as error:  # an address httpx cannot write (an IPv6 zone)
        return Outcome(Result.REFUSED, f"InvalidURL: {error}")
    return judge(status, answer_headers, answer)


def judge(status: int, headers: httpx.Headers, answer: bytes) -> Outcome:
    """What a push service's answer means for the subscription."""
    if status in (200, 201, 202):
        return Outcome(Result.DELIVERED, status=status)
    reason = f"the push service answered {status}"
    excerpt = answer.decode("utf-8", "replace").strip()
    excerpt = "".join(c if c.isprintable() else " " for c in excerpt)[:REASON_CHARS]
    if excerpt:
        reason += f": {excerpt}"
    if status in (404, 410):
        return Outcome(Result.GONE, reason, status)
    if status == 429 or status >= 500:
        return Outcome(Result.RETRY, reason, status, _retry_after(headers.get("Retry-After")))
    if 300 <= status < 400:
        reason += " (a redirect: not followed)"
    return Outcome(Result.REFUSED, reason, status)


def _json(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _retry_after(value: str | None) -> int | None:
    """Retry-After in seconds: a number, or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    if value.strip().isdigit():
        return int(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, said without a zone
        when = when.replace(tzinfo=UTC)
    return max(0, int((when - datetime.now(UTC)).total_seconds()))


def _error_reason(error: BaseException) -> str:
    """A network failure, named without the URL (its path is the device's secret)."""
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return f"the push service did not answer within {SEND_TIMEOUT:g} s"
    detail = str(error).split("\n")[0][:REASON_CHARS]
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
