"""Inbox sessions: an HttpOnly cookie carrying a signed session id, checked against the
store (so a session can be revoked), and CSRF protection on every POST.

CSRF: a POST must come from the relay's own origin (Origin header) and carry
X-CSRF-Token, an HMAC of the session id that only the signed-in page can read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from relay.errors import Forbidden, NotFound, Unauthorized
from relay.models import OwnerSession, Site
from relay.store.inbox import SESSION_DAYS
from relay.web.services import Services, services

COOKIE = "porch_session"
COOKIE_MAX_AGE = SESSION_DAYS * 24 * 3600  # a phone in use stays signed in
CSRF_HEADER = "x-csrf-token"
TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is written at most this often


def own_origins(connection: HTTPConnection, s: Services) -> set[str]:
    """The origins the inbox is served from: as the browser reached it, and as configured."""
    origins = {s.config.base_url}
    host = connection.headers.get("host")
    if host:
        origins.add(f"{connection.url.scheme}://{host}")
    return {origin.replace("ws://", "http://").replace("wss://", "https://") for origin in origins}


def check_same_origin(connection: HTTPConnection, s: Services) -> None:
    """Refuse a request a page of another site made (browsers always send Origin on a
    POST and on a WebSocket handshake)."""
    origin = connection.headers.get("origin")
    if origin is None or origin not in own_origins(connection, s):
        raise Forbidden(f"requests to the inbox must come from the inbox itself, not {origin!r}")


async def session_of(connection: HTTPConnection, s: Services) -> OwnerSession:
    """The live session whose cookie came with the request, else 401."""
    cookie = connection.cookies.get(COOKIE)
    session_id = s.tokens.read_session_cookie(cookie) if cookie else None
    session = await s.store.get_session(session_id) if session_id else None
    if session is None:
        raise Unauthorized("sign in to the inbox: this session is missing, ended or revoked")
    seen = datetime.fromisoformat(session.last_seen_at.replace("Z", "+00:00"))
    if datetime.now(UTC) - seen > TOUCH_EVERY:
        await s.store.touch_session(session.id)
    return session


async def signed_in(request: Request, *, csrf: bool = True) -> OwnerSession:
    """The session of an inbox request; a POST must also pass the CSRF checks."""
    s = services(request)
    session = await session_of(request, s)
    if request.method == "POST" and csrf:
        check_same_origin(request, s)
        given = request.headers.get(CSRF_HEADER, "")
        if not s.tokens.csrf_matches(session.id, given):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header: reload the inbox")
    return session


def set_cookie(request: Request, response: Response, session_id: str) -> None:
    s = services(request)
    response.set_cookie(
        COOKIE,
        s.tokens.session_cookie(session_id),
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or s.config.base_url.startswith("https://"),
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


async def owned_site(s: Services, session: OwnerSession, site_id: str) -> Site:
    """A site the signed-in owner answers for; NotFound for any other (never "forbidden":
    another business's site ids are not theirs to learn)."""
    for site in await s.store.owner_sites(session.email):
        if site.id == site_id:
            return site
    raise NotFound(f"no site {site_id!r} of yours")
