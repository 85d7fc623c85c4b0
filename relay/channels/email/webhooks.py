"""Inbound mail from email providers' webhooks, each in its raw-MIME mode: the route
checks the provider's credentials, takes the raw RFC 5322 message out of the request and
hands it to the pipeline, answering {"verdict": ...} once the pipeline is done.

    POST /v1/inbound/postmark  JSON "RawEmail"; HTTP Basic auth (PORCH_INBOUND_BASIC_AUTH)
    POST /v1/inbound/mailgun   form field "body-mime"; HMAC signature (PORCH_MAILGUN_SIGNING_KEY)
    POST /v1/inbound/sendgrid  form field "email"; HTTP Basic auth (PORCH_INBOUND_BASIC_AUTH)
    POST /v1/inbound/raw       the message itself; HMAC signature (PORCH_INBOUND_SECRET)

A route whose setting is empty does not exist (404, like any unknown path). Every verdict,
even "forged" or "unreadable", is a 200: the provider delivered, and a retry would bring
the same answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from relay.channels.email.authentication import Envelope
from relay.channels.email.inbound import Pipeline
from relay.channels.email.smtp_ingress import MAX_MESSAGE_BYTES
from relay.config import Config
from relay.errors import InvalidRequest, InvalidToken
from relay.inputs import WHOLE_NUMBER, read_body, read_json

# Most of a provider's request is the message, as large as the SMTP ingress takes it.
# Postmark sends it twice: RawEmail, and its attachments again, decoded and re-encoded,
# in Attachments; the parsed text and HTML fields are small beside them.
MAX_REQUEST_BYTES = 2 * MAX_MESSAGE_BYTES + 1024 * 1024
# Signed requests older or newer than this are refused: enough for a provider's queue and
# clock drift, too short to collect and replay. Mailgun recommends 5 minutes too.
SIGNATURE_WINDOW = 300
# Mailgun tokens seen within the window, to refuse replays. A legitimate provider sends a
# few a second at most; past this, the oldest are forgotten (the pipeline still refuses
# a second delivery of the same Message-ID).
MAX_SEEN_TOKENS = 10_000
# A reply refused for now (rate cap) is answered 429: the provider delivers it again.
TEMPORARY_RETRY_AFTER = 60
REALM = 'Basic realm="porch inbound", charset="UTF-8"'
RAW_TYPES = ("message/rfc822", "application/octet-stream")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class Webhooks:
    """The routes, bound to the email channel's configuration and pipeline."""

    def __init__(self, config: Config, pipeline: Pipeline) -> None:
        self.config = config
        self.pipeline = pipeline
        self.seen_tokens = SeenTokens()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/inbound/postmark", self.from_postmark, methods=["POST"]),
            Route("/v1/inbound/mailgun", self.from_mailgun, methods=["POST"]),
            Route("/v1/inbound/sendgrid", self.from_sendgrid, methods=["POST"]),
            Route("/v1/inbound/raw", self.from_worker, methods=["POST"]),
        ]

    async def from_postmark(self, request: Request) -> Response:
        config = self.config
        _require(config.inbound_basic_auth)
        if challenge := _basic_auth(request, config.inbound_basic_auth):
            return challenge
        data = await read_json(request, MAX_REQUEST_BYTES)
        raw = data.get("RawEmail")
        if not isinstance(raw, str) or not raw.strip():
            raise InvalidRequest(
                f"expected the raw message in 'RawEmail' (turn on 'Include raw email content' "
                f"in the Postmark inbound settings), got {_kind(raw)}"
            )
        return await self._deliver(raw.encode(), "postmark")

    async def from_mailgun(self, request: Request) -> Response:
        key = self.config.mailgun_signing_key
        _require(key)
        form = await _read_form(request)
        try:
            timestamp, token, signature = (
                _text(form, name) for name in ("timestamp", "token", "signature")
            )
            if not timestamp or not token or not signature:
                raise InvalidToken("expected Mailgun's 'timestamp', 'token' and 'signature' fields")
            _check_fresh(timestamp)
            _check_signature(key, (timestamp + token).encode(), signature)
            raw = await _field_bytes(
                form, "body-mime", "a URL ending in 'mime' as the forward destination"
            )
        finally:
            await form.close()
        seen = self.seen_tokens
        seen.claim(token)
        try:
            response = await self._deliver(raw, "mailgun")
        except Exception:
            seen.release(token)  # not processed: Mailgun's retry must get through
            raise
        if response.status_code == 429:
            seen.release(token)  # refused for now: the retry is not a replay
        return response

    async def from_sendgrid(self, request: Request) -> Response:
        config = self.config
        _require(config.inbound_basic_auth)
        if challenge := _basic_auth(request, config.inbound_basic_auth):
            return challenge
        form = await _read_form(request)
        try:
            raw = await _field_bytes(form, "email", "'POST the raw, full MIME message' turned on")
        finally:
            await form.close()
        return await self._deliver(raw, "sendgrid")

    async def from_worker(self, request: Request) -> Response:
        """For an edge mail worker: the body is the message, signed with PORCH_INBOUND_SECRET:
        X-Porch-Signature = hex HMAC-SHA256(secret, X-Porch-Timestamp + "." + body). A
        worker that is the receiving MX (`porch smtp`) also sends what it saw of the
        sender, X-Porch-Envelope = {"peer_ip", "helo", "mail_from"} as JSON, and signs
        X-Porch-Timestamp + "." + X-Porch-Envelope + "." + body."""
        secret = self.config.inbound_secret
        _require(secret)
        timestamp = request.headers.get("x-porch-timestamp", "")
        signature = request.headers.get("x-porch-signature", "")
        if not timestamp or not signature:
            raise InvalidToken("expected X-Porch-Timestamp and X-Porch-Signature headers")
        _check_fresh(timestamp)
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind and kind not in RAW_TYPES:
            raise InvalidRequest(f"expected Content-Type {' or '.join(RAW_TYPES)}, got {kind!r}")
        body = await _read_body(request)
        seen = request.headers.get("x-porch-envelope")
        signed = (timestamp + "." + (seen + "." if seen is not None else "")).encode() + body
        _check_signature(secret, signed, signature)
        if not body.strip():
            raise InvalidRequest("expected a raw RFC 5322 message in the body, got an empty body")
        return await self._deliver(body, "raw", _envelope(seen) if seen is not None else None)

    async def _deliver(
        self, message: bytes, source: str, envelope: Envelope | None = None
    ) -> Response:
        outcome = await self.pipeline.receive(message, source=source, envelope=envelope)
        if outcome.temporary:  # providers retry a 429 later; a 200 would lose the mail
            return JSONResponse(
                {"verdict": outcome.verdict.value},
                status_code=429,
                headers={"retry-after": str(TEMPORARY_RETRY_AFTER)},
            )
        return JSONResponse({"verdict": outcome.verdict.value})


def _envelope(text: str) -> Envelope:
    """X-Porch-Envelope, signed: what the worker's SMTP server saw of the sender."""
    try:
        seen = json.loads(text)
        fields = {name: seen[name] for name in ("peer_ip", "helo", "mail_from")}
        ipaddress.ip_address(fields["peer_ip"])
        if not all(isinstance(v, str) for v in (fields["peer_ip"], fields["mail_from"])):
            raise TypeError
        if fields["helo"] is not None and not isinstance(fields["helo"], str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest(
            'expected X-Porch-Envelope as {"peer_ip": IP, "helo": name or null, '
            '"mail_from": address or ""}'
        ) from None
    return Envelope(**fields)


# -- credentials ---------------------------------------------------------------------


def _require(setting: str) -> None:
    """An endpoint without its setting does not exist: the same 404 as any unknown path."""
    if not setting:
        raise HTTPException(status_code=404)


def _basic_auth(request: Request, expected: str) -> Response | None:
    """None if the request carries `expected` ("user:password"); else the 401 to send."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return _challenge("expected HTTP Basic credentials (user:password in the webhook URL)")
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return _challenge("expected base64 of user:password after 'Basic', got something else")
    if not _same(given, expected):
        return _challenge("the user name or password is wrong")
    return None


def _challenge(message: str) -> Response:
    return JSONResponse(
        {"error": InvalidToken.code, "message": message},
        status_code=InvalidToken.status,
        headers={"www-authenticate": REALM},
    )


def _check_fresh(timestamp: str) -> None:
    if not WHOLE_NUMBER.fullmatch(timestamp):  # a few digits, not 4,000 (int(), float())
        raise InvalidToken(f"expected a timestamp in Unix seconds, got {timestamp[:40]!r}")
    moment = int(timestamp)
    skew = abs(time.time() - moment)
    if skew > SIGNATURE_WINDOW:
        raise InvalidToken(
            f"stale signature: the timestamp is {skew:.0f} s away from now; "
            f"at most {SIGNATURE_WINDOW} s is accepted"
        )


def _check_signature(key: str, signed: bytes, signature: str) -> None:
    expected = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
    if not _same(signature.strip().lower(), expected):
        raise InvalidToken(
            "the signature does not match: expected hex HMAC-SHA256 of the "
            "signed data with the configured key"
        )


def _same(given: str, expected: str) -> bool:
    """Constant time, and no length leaked either: compare digests."""
    digest = hashlib.sha256
    return hmac.compare_digest(
        digest(given.encode("utf-8", "surrogatepass")).digest(),
        digest(expected.encode("utf-8", "surrogatepass")).digest(),
    )


class SeenTokens:
    """Mailgun tokens accepted within the signature window, oldest first."""

    def __init__(
        self,
        window: float = 2 * SIGNATURE_WINDOW,
        limit: int = MAX_SEEN_TOKENS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Twice the window: a timestamp may be up to a window in the future, too.
        self.window = window
        self.limit = limit
        self.clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def claim(self, token: str) -> None:
        now = self.clock()
        while self._expiry and (
            next(iter(self._expiry.values())) <= now or len(self._expiry) >= self.limit
        ):
            self._expiry.popitem(last=False)
        if token in self._expiry:
            raise InvalidToken("this token was used before: a replayed request is refused")
        self._expiry[token] = now + self.window

    def release(self, token: str) -> None:
        self._expiry.pop(token, None)

    def __len__(self) -> int:
        return len(self._expiry)


# -- reading the request -------------------------------------------------------------


async def _read_body(request: Request) -> bytes:
    return await read_body(request, MAX_REQUEST_BYTES)


async def _read_form(request: Request) -> FormData:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind not in FORM_TYPES:
        raise InvalidRequest(f"expected Content-Type {' or '.join(FORM_TYPES)}, got {kind!r}")
    body = await _read_body(request)  # the size checked before any parsing
    replay = Request(request.scope, _replay(body))
    try:
        form = await replay.form(max_part_size=MAX_REQUEST_BYTES)
    except HTTPException as error:  # what Starlette makes of a malformed form
        raise InvalidRequest(
            f"expected {kind} form data, got a malformed body ({error.detail})"
        ) from None
    if not form:  # python-multipart reads a truncated body as no fields at all
        raise InvalidRequest(f"expected {kind} form data with fields, got none")
    return form


def _replay(body: bytes) -> Callable[[], Awaitable[Message]]:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _field_bytes(form: FormData, name: str, hint: str) -> bytes:
    value = form.get(name)
    if isinstance(value, UploadFile):
        data = await value.read()
    elif isinstance(value, str):
        data = value.encode()
    else:
        data = b""
    if not data.strip():
        raise InvalidRequest(
            f"expected the raw message in the '{name}' field ({hint}), got {_kind(value)}"
        )
    return data


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return "an empty value" if isinstance(value, str) else type(value).__name__
