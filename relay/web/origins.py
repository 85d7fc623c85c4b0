"""Which web pages may talk to the relay: each site's registered origins.

Browsers send Origin on every cross-origin request and WebSocket; the relay refuses
one that the site did not register. A request without Origin is not from a browser
page (curl, a server) and carries no ambient credentials, so it is allowed.
"""

from __future__ import annotations

import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.errors import ForbiddenOrigin
from relay.models import Site
from relay.store import Store

# Paths a visitor's page calls from the site's origin. Owner and inbound endpoints
# are not for cross-origin browsers and get no CORS headers.
CORS_PREFIXES = ("/v1/sites/", "/v1/thread", "/v1/resume")
# A preflight answer may be cached by the browser this long (seconds).
PREFLIGHT_MAX_AGE = 600
# How long the middleware trusts its memory of "origin is registered" (seconds);
# a site added with the CLI is seen within this delay.
KNOWN_ORIGIN_TTL = 5.0


def check_origin(origin: str | None, site: Site) -> None:
    if origin is not None and origin not in site.origins:
        raise ForbiddenOrigin(f"origin {origin!r} is not registered for site {site.id!r}")


class CORSMiddleware:
    """CORS for the visitor API, with origins looked up in the store."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store
        self._known: dict[str, tuple[bool, float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(CORS_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = await self._allowed(origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(send, origin, allowed)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed:
                message["headers"] = [*message.get("headers", []), *_cors_headers(origin)]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _allowed(self, origin: str) -> bool:
        now = time.monotonic()
        cached = self._known.get(origin)
        if cached and cached[1] > now:
            return cached[0]
        allowed = await self.store.origin_allowed(origin)
        if len(self._known) > 10_000:  # bounded: Origin is client-controlled
            self._known.clear()
        self._known[origin] = (allowed, now + KNOWN_ORIGIN_TTL)
        return allowed

    async def _preflight(self, send: Send, origin: str, allowed: bool) -> None:
        if allowed:
            status, body = 204, b""
            headers = [
                *_cors_headers(origin),
                (b"access-control-allow-methods", b"GET, POST, DELETE"),
                (b"access-control-allow-headers", b"Authorization, Content-Type"),
                (b"access-control-max-age", str(PREFLIGHT_MAX_AGE).encode()),
            ]
        else:
            status = 403
            body = (
                b'{"error":"forbidden_origin","message":"this origin is not registered'
                b' for any site"}'
            )
            headers = [(b"content-type", b"application/json"), (b"vary", b"Origin")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", b"Retry-After, Content-Disposition"),
        (b"vary", b"Origin"),
    ]
