"""A fake Web Push service (RFC 8030) on loopback, playing a browser vendor's push
service and the phone behind it, for tests.

`new_subscription()` makes a device as a browser does (a P-256 key pair and a 16-byte
auth secret) and returns what the browser's PushSubscription gives: an endpoint here
and the two public keys. A POST to an endpoint is checked as real push services check
it: the VAPID token (RFC 8292: ES256 signed with the `k` key, `aud` this origin, `exp`
ahead and within 24 hours, `sub` a mailto: or https: URL), a TTL, `Content-Encoding:
aes128gcm`, at most 4096 bytes; the body is decrypted with the device's private key
(RFC 8291), which a real service cannot do and the phone does. Refusals get 401, 403,
400 or 413 and are recorded as refused.

The phone: online, a push is shown at once; offline, it waits (`pending`), a newer push
with the same Topic replacing an older one, as real services collapse them, and
`go_online` shows what is left. Replies can be scripted: a device that unsubscribed
answers 410 (`expire`), and `fail` makes the next pushes answer 503 (or 404, 429, ...).
Tests wait on what happened (`wait_for`, `wait_shown`), never sleep.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from relay.push.vapid import decode_b64url, encode_b64url
from tests.fakes.server import WAIT_TIMEOUT, CallLog, Hang, LoopbackServer, Script

BODY_LIMIT = 4096  # bytes; RFC 8030 section 7.2: a push service may refuse more (413)
MAX_TOKEN_LIFETIME = 24 * 3600  # RFC 8292 section 2: exp no more than 24 hours ahead
URGENCIES = {"very-low", "low", "normal", "high"}  # RFC 8030 section 5.3

CREATED = 201
BAD_REQUEST = 400
UNAUTHORIZED = 401
FORBIDDEN = 403
NOT_FOUND = 404
GONE = 410
TOO_LARGE = 413
TOO_MANY_REQUESTS = 429
BAD_GATEWAY = 502
UNAVAILABLE = 503

# What each request is filed under in `log` (wait_for(name)).
ACCEPTED = "accepted"  # 201: shown, waiting for the phone, or dropped (TTL 0, offline)
REFUSED = "refused"  # 400, 401, 403, 413: a push the service would not take
ENDED = "gone"  # 404, 410: no such subscription (any more)
FAILED = "failed"  # a scripted 429 or 5xx


@dataclass(frozen=True)
class Device:
    """A browser's subscription: what it gives the page (endpoint, p256dh, auth) and
    the private half it keeps."""

    id: str
    endpoint: str
    p256dh: str
    auth: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    auth_secret: bytes = field(repr=False)
    application_server_key: str | None = None  # the VAPID key it was made with, if any

    def to_json(self) -> dict[str, Any]:
        """As PushSubscription.toJSON() gives it to the page."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


@dataclass(frozen=True)
class Push:
    """What the phone gets: the decrypted JSON, and how it was asked to deliver it."""

    device: str
    message: Any
    ttl: int
    urgency: str
    topic: str | None
    claims: dict[str, Any]
    received: float  # time.monotonic()


@dataclass(frozen=True)
class PushCall:
    """One request to an endpoint and what the fake answered."""

    device: str
    outcome: str  # ACCEPTED, REFUSED, ENDED or FAILED
    status: int
    reason: str = ""  # why it was refused
    push: Push | None = None


@dataclass(frozen=True)
class Reply:
    """A scripted answer instead of the normal one."""

    status: int
    retry_after: int | None = None


class Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Phone:
    device: Device
    online: bool = True
    gone: bool = False
    pending: list[Push] = field(default_factory=list)
    shown: list[Push] = field(default_factory=list)


@dataclass(frozen=True)
class Tls:
    """Serve https as `host` (a name that resolves to 127.0.0.1) with this certificate."""

    host: str
    certfile: Path
    keyfile: Path


class FakePushService(LoopbackServer):
    """`with FakePushService() as push:` serves it; allow `push.origin`
    (PORCH_PUSH_ENDPOINT_ALLOW): it is plain http on loopback, or https with `tls`."""

    def __init__(self, tls: Tls | None = None) -> None:
        self.tls = tls
        self.log: CallLog[PushCall] = CallLog(lambda call: call.outcome)
        self.shown_log: CallLog[Push] = CallLog(lambda push: push.device)
        self.script: Script[Reply] = Script()
        self._phones: dict[str, _Phone] = {}
        self._lock = threading.Lock()
        routes = [Route("/push/{device}", self._receive, methods=["POST"])]
        super().__init__(Starlette(routes=routes), "FakePushService")

    @property
    def origin(self) -> str:
        return f"https://{self.tls.host}:{self.port}" if self.tls else super().origin

    def options(self) -> dict[str, Any]:
        if self.tls is None:
            return {}
        return {"ssl_certfile": str(self.tls.certfile), "ssl_keyfile": str(self.tls.keyfile)}

    # -- what a test sets up -----------------------------------------------------------

    def new_subscription(
        self, *, application_server_key: str | None = None, online: bool = True
    ) -> Device:
        """A device subscribing (with that VAPID public key, if given, as browsers
        require: pushes signed with another key are then refused with 403)."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        auth_secret = secrets.token_bytes(16)
        device_id = secrets.token_urlsafe(16)
        device = Device(
            id=device_id,
            endpoint=f"{self.origin}/push/{device_id}",
            p256dh=encode_b64url(point),
            auth=encode_b64url(auth_secret),
            private_key=private_key,
            auth_secret=auth_secret,
            application_server_key=application_server_key,
        )
        with self._lock:
            self._phones[device_id] = _Phone(device, online=online)
        return device

    def expire(self, device: Device) -> None:
        """The browser unsubscribed (or the subscription expired): 410 from now on."""
        with self._lock:
            self._phones[device.id].gone = True

    def fail(
        self,
        device: Device,
        status: int = UNAVAILABLE,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """The next `times` pushes to the device get `status` (with Retry-After)."""
        self.script.add(device.id, Reply(status, retry_after), times)

    def hang_next(self, device: Device, times: int = 1) -> None:
        """The next pushes get no answer until the fake stops (or release_hangs)."""
        self.script.add(device.id, Hang(), times)

    def go_offline(self, device: Device) -> None:
        with self._lock:
            self._phones[device.id].online = False

    def go_online(self, device: Device) -> list[Push]:
        """The phone connects: what waited for it (within its TTL) is shown, in order."""
        now = time.monotonic()
        with self._lock:
            phone = self._phones[device.id]
            phone.online = True
            due = [push for push in phone.pending if now - push.received <= push.ttl]
            phone.pending.clear()
        for push in due:
            self._show(phone, push)
        return due

    # -- what a test reads -------------------------------------------------------------

    def pending(self, device: Device) -> list[Push]:
        """Pushes taken for the offline phone, not shown yet (one per Topic)."""
        with self._lock:
            return list(self._phones[device.id].pending)

    def shown(self, device: Device) -> list[Push]:
        with self._lock:
            return list(self._phones[device.id].shown)

    def calls(self, outcome: str | None = None) -> list[PushCall]:
        return self.log.all(outcome)

    async def wait_for(
        self, outcome: str, count: int = 1, timeout: float = WAIT_TIMEOUT
    ) -> list[PushCall]:
        """The first `count` requests filed under `outcome` (ACCEPTED, REFUSED, ...)."""
        return await self.log.wait_for_async(outcome, count, timeout)

    async def wait_shown(
        self, device: Device, count: int = 1, timeout: float = WAIT_TIMEOUT
    ) -> list[Push]:
        """The first `count` notifications the phone showed."""
        return await self.shown_log.wait_for_async(device.id, count, timeout)

    # -- the push service ------------------------------------------------------------

    async def _receive(self, request: Request) -> Response:
        device_id = request.path_params["device"]
        with self._lock:
            phone = self._phones.get(device_id)
        if phone is None:
            return self._answer(PushCall(device_id, ENDED, NOT_FOUND, "no such subscription"))
        scripted = self.script.take(device_id)
        if isinstance(scripted, Hang):
            await self.hang(scripted)
            return self._answer(PushCall(device_id, FAILED, BAD_GATEWAY, "hung"))
        if scripted is not None:
            outcome = ENDED if scripted.status in (NOT_FOUND, GONE) else FAILED
            headers = {"Retry-After": str(scripted.retry_after)} if scripted.retry_after else {}
            return self._answer(PushCall(device_id, outcome, scripted.status, "scripted"), headers)
        if phone.gone:
            return self._answer(PushCall(device_id, ENDED, GONE, "unsubscribed"))
        body = await request.body()
        try:
            push = self._check(phone.device, request, body)
        except Refusal as refusal:
            return self._answer(PushCall(device_id, REFUSED, refusal.status, refusal.reason))
        self._take(phone, push)
        location = {"Location": f"{self.origin}/message/{secrets.token_urlsafe(12)}"}
        return self._answer(PushCall(device_id, ACCEPTED, CREATED, push=push), location)

    def _answer(self, call: PushCall, headers: dict[str, str] | None = None) -> Response:
        self.log.add(call)
        return PlainTextResponse(call.reason, status_code=call.status, headers=headers)

    def _check(self, device: Device, request: Request, body: bytes) -> Push:
        claims, key = verify_vapid(request.headers.get("authorization", ""), self.origin)
        if device.application_server_key and key != device.application_server_key:
            raise Refusal(
                FORBIDDEN, "the token's key is not the one the subscription was made with"
            )
        ttl = request.headers.get("ttl")
        if ttl is None or not ttl.isdigit():
            raise Refusal(BAD_REQUEST, "a TTL header is required")  # RFC 8030 section 5.2
        if request.headers.get("content-encoding") != "aes128gcm":
            raise Refusal(BAD_REQUEST, "Content-Encoding must be aes128gcm")
        if len(body) > BODY_LIMIT:
            raise Refusal(TOO_LARGE, f"at most {BODY_LIMIT} bytes")
        urgency = request.headers.get("urgency", "normal")
        if urgency not in URGENCIES:
            raise Refusal(BAD_REQUEST, f"bad Urgency {urgency!r}")
        topic = request.headers.get("topic")
        if topic is not None and (len(topic) > 32 or not _is_base64url(topic)):
            raise Refusal(BAD_REQUEST, f"bad Topic {topic!r}")
        try:
            plain = http_ece.decrypt(
                body,
                private_key=device.private_key,
                auth_secret=device.auth_secret,
                version="aes128gcm",
            )
            message = json.loads(plain)
        except (http_ece.ECEException, ValueError) as error:
            # A real service passes it on and the phone drops it; refused here, to be seen.
            raise Refusal(BAD_REQUEST, f"the phone could not read it: {error}") from None
        return Push(device.id, message, int(ttl), urgency, topic, claims, time.monotonic())

    def _take(self, phone: _Phone, push: Push) -> None:
        with self._lock:
            if not phone.online:
                if push.ttl == 0:  # RFC 8030 section 5.2: now or never
                    return
                if push.topic is not None:  # RFC 8030 section 5.4: the newer one replaces
                    phone.pending = [p for p in phone.pending if p.topic != push.topic]
                phone.pending.append(push)
                return
        self._show(phone, push)

    def _show(self, phone: _Phone, push: Push) -> None:
        with self._lock:
            phone.shown.append(push)
        self.shown_log.add(push)


def verify_vapid(header: str, origin: str, now: float | None = None) -> tuple[dict[str, Any], str]:
    """The claims and key of an `Authorization: vapid t=..., k=...` header, checked as
    RFC 8292 says; Refusal(401) saying what is wrong."""
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "vapid":
        raise Refusal(UNAUTHORIZED, f"expected the vapid scheme, got {scheme!r}")
    fields = {}
    for part in params.split(","):
        name, _, value = part.strip().partition("=")
        fields[name.strip()] = value.strip()
    token, key = fields.get("t", ""), fields.get("k", "")
    if not token or not key:
        raise Refusal(UNAUTHORIZED, "vapid needs t= and k=")
    pieces = token.split(".")
    if len(pieces) != 3:
        raise Refusal(UNAUTHORIZED, "t is not a JWT")
    try:
        jose = json.loads(decode_b64url(pieces[0], "JWT header"))
        claims = jwt.decode(token, key)
    except (InvalidSignature, ValueError):
        raise Refusal(UNAUTHORIZED, "the token's signature does not verify with k") from None
    if jose.get("alg") != "ES256":
        raise Refusal(UNAUTHORIZED, f"expected alg ES256, got {jose.get('alg')!r}")
    now = time.time() if now is None else now
    if claims.get("aud") != origin:
        raise Refusal(UNAUTHORIZED, f"aud {claims.get('aud')!r} is not {origin!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now:
        raise Refusal(UNAUTHORIZED, f"exp {exp!r} is not in the future")
    if exp > now + MAX_TOKEN_LIFETIME:
        raise Refusal(UNAUTHORIZED, "exp is more than 24 hours ahead")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
        raise Refusal(UNAUTHORIZED, f"sub {sub!r} is not a mailto: or https: URL")
    return claims, key


def _is_base64url(text: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "-_") for c in text)
