"""The visitor API: what the widget calls from the site's pages."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.catalogue import LANGUAGES
from relay.conversations import Actor
from relay.errors import InvalidToken, NotFound, PorchError, Unavailable, UnprocessableRequest
from relay.inputs import (
    MAX_NAME_CHARS,
    MAX_PAGE_MESSAGES,
    bearer,
    client_id,
    email_address,
    message_body,
    message_content,
    optional_text,
    page_url,
    query_since,
    read_json,
    seq_value,
)
from relay.limits import Check, enforce, refund
from relay.models import Author, Site, Thread, Via
from relay.sites.availability import public_availability, reply_delays, typical_reply_seconds
from relay.sites.settings import IDENTITY_SECRET, public_config
from relay.web.origins import check_origin
from relay.web.services import Services, client_ip, services

MAX_USER_ID_CHARS = 200  # a site's user id: a number, a UUID, an email at most
# Whether an owner is at the inbox changes by the minute, and an owner who saves a
# setting expects the next page view to show it: not cached. The request is cheap (one
# indexed read; the reply time is kept below).
CONFIG_CACHE = "no-cache"
# The typical reply time moves slowly, and measuring it reads a month of messages.
REPLY_TIME_TTL = 300.0

VISITOR = Actor(Author.VISITOR, Via.WIDGET)  # whoever writes through the widget


async def site_config(request: Request) -> Response:
    s = services(request)
    site = await visitor_site(request, request.path_params["site"])
    availability = public_availability(
        site, s.clock.now(), s.presence.online(site.id), await typical_reply(s, site.id)
    )
    # The messaging apps a visitor may continue in (relay.web.apps): no secret, no handle.
    channels = [{"id": c.id, "kind": c.kind} for c in await s.store.app_channels(site.id)]
    config = {**public_config(site, availability), "channels": channels}
    # What the widget subscribes a device with (relay/web/push.py): the installation's.
    config["push_key"] = (await s.push_key()).public_key
    return JSONResponse(config, headers={"cache-control": CONFIG_CACHE})


async def typical_reply(s: Services, site_id: str) -> float | None:
    """The site's median reply time, measured at most every REPLY_TIME_TTL seconds."""
    now = time.monotonic()
    cached = s.reply_times.get(site_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    typical = typical_reply_seconds(reply_delays(await s.store.reply_delay_rows(site_id)))
    s.reply_times[site_id] = (now + REPLY_TIME_TTL, typical)  # one entry per existing site
    return typical


async def start_thread(request: Request) -> Response:
    s = services(request)
    site = await visitor_site(request, request.path_params["site"])
    data = await read_json(request, s.config.max_request_bytes)
    body = message_body(data, s.config.max_body_chars)
    cid = client_id(data)
    name = optional_text(data, "name", MAX_NAME_CHARS)
    page = page_url(data, site.origins)
    identity = data.get("identity")
    external_id = verified_user(site, identity) if isinstance(identity, dict) else None
    ip = client_ip(request)
    taken = enforce(
        (s.limits.threads_by_ip, ip, "new conversations from this address"),
        (s.limits.messages_by_ip, ip, "messages from this address"),
    )
    # The widget's language: automatic replies are written in it.
    language = data.get("language") if data.get("language") in LANGUAGES else None
    started = await s.conversations.start(
        site.id,
        body=body,
        client_id=cid,
        name=name,
        page=page,
        external_id=external_id,
        language=language,
    )
    if not started.created:  # a retry of a start that already succeeded
        refund(taken)
    return JSONResponse(
        {
            "token": s.tokens.visitor_token(started.visitor, site.id, started.epoch),
            "thread": started.thread.to_json(),
            "message": started.message.to_json(Author.VISITOR, s.link),
        },
        status_code=201 if started.created else 200,
    )


async def get_thread(request: Request) -> Response:
    s = services(request)
    thread = await visitor_thread(request, s)
    page = await history_page(request, s, thread, Author.VISITOR)
    page["email_confirmed"] = await s.store.email_confirmed(thread.visitor)
    return JSONResponse(page)


async def history(request: Request, s: Services, thread: Thread, reader: Author) -> Response:
    return JSONResponse(await history_page(request, s, thread, reader))


async def history_page(
    request: Request, s: Services, thread: Thread, reader: Author
) -> dict[str, Any]:
    """A thread and a page of its messages after ?since=N, as `reader` sees them."""
    messages = await s.store.thread_messages(thread.id, query_since(request), MAX_PAGE_MESSAGES)
    return {
        "thread": thread.to_json(),
        "messages": [m.to_json(reader, s.link) for m in messages],
        "more": len(messages) == MAX_PAGE_MESSAGES,
    }


async def post_message(request: Request) -> Response:
    s = services(request)
    thread = await visitor_thread(request, s)
    data = await read_json(request, s.config.max_request_bytes)
    body, attachments = message_content(data, s.config.max_body_chars)
    cid = client_id(data)
    taken = visitor_send_limits(s, thread, client_ip(request))
    try:
        message, created = await s.conversations.post(
            thread.id, VISITOR, body, cid, attachments, site=thread.site
        )
    except PorchError:  # an attachment not theirs, or taken: nothing was sent
        refund(taken)
        raise
    if not created:
        refund(taken)
    return JSONResponse(
        message.to_json(Author.VISITOR, s.link), status_code=201 if created else 200
    )


async def mark_read(request: Request) -> Response:
    s = services(request)
    thread = await visitor_thread(request, s)
    data = await read_json(request, s.config.max_request_bytes)
    await s.conversations.mark_read(thread.id, Author.VISITOR, seq_value(data.get("seq"), "seq"))
    return Response(status_code=204)


def visitor_send_limits(s: Services, thread: Thread, ip: str) -> list[Check]:
    return enforce(
        (s.limits.messages_by_visitor, thread.visitor, "messages from this visitor"),
        (s.limits.messages_by_ip, ip, "messages from this address"),
    )


async def set_contact(request: Request) -> Response:
    """The visitor leaves a name and an address for replies by email (unverified)."""
    s = services(request)
    thread = await visitor_thread(request, s)
    data = await read_json(request, s.config.max_request_bytes)
    email = email_address(data)
    name = optional_text(data, "name", MAX_NAME_CHARS)
    await s.store.set_contact(thread.visitor, token_epoch(request, s), name=name, email=email)
    return JSONResponse({"name": name, "email": email})


async def identify(request: Request) -> Response:
    """A signed-in user of the site: `hash` = hex HMAC-SHA256(site identity secret, id),
    computed by the site's server. Verified: their one thread, on every device (an
    anonymous thread of this browser is merged in). Not verified: a display name at
    most, no access."""
    s = services(request)
    site = await visitor_site(request, request.path_params["site"])
    data = await read_json(request, s.config.max_request_bytes)
    name = optional_text(data, "name", MAX_NAME_CHARS)
    anonymous = await optional_visitor_thread(request, s)
    user = verified_user(site, data)
    if user is None:
        if anonymous is not None and name:
            await s.store.set_name(anonymous.visitor, name)
        return JSONResponse({"verified": False})
    found = await s.store.identify(site.id, user, anonymous.visitor if anonymous else None, name)
    if found is None:
        return JSONResponse({"verified": True, "token": None, "thread": None})
    thread, epoch, visitor = found
    return JSONResponse(
        {
            "verified": True,
            "token": s.tokens.visitor_token(visitor, site.id, epoch),
            "thread": thread.to_json(),
        }
    )


def verified_user(site: Site, data: dict[str, Any]) -> str | None:
    """The site's user id if its hash verifies with the site's identity secret."""
    user, given = data.get("id"), data.get("hash")
    secret = IDENTITY_SECRET.of(site)
    if not (isinstance(user, str) and isinstance(given, str) and isinstance(secret, str)):
        return None
    if not 0 < len(user) <= MAX_USER_ID_CHARS:
        return None
    expected = hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()
    given = given.strip().lower()
    # compare_digest refuses str with non-ASCII characters (TypeError): such a hash is wrong.
    return user if given.isascii() and hmac.compare_digest(expected, given) else None


async def optional_visitor_thread(request: Request, s: Services) -> Thread | None:
    """The caller's thread if they sent a valid visitor token, else None (no error)."""
    if "authorization" not in request.headers:
        return None
    try:
        return await visitor_thread(request, s)
    except PorchError:
        return None


async def resume_link(request: Request) -> Response:
    """Email the visitor a link that opens this conversation on another device."""
    s = services(request)
    thread = await visitor_thread(request, s)
    if not s.config.mail_enabled:
        raise Unavailable("this relay sends no email (PORCH_SMTP_URL is not set)")
    data = await read_json(request, s.config.max_request_bytes)
    email = email_address(data)
    site = await s.store.get_site(thread.site)
    assert site is not None
    page = page_url(data, site.origins) or thread.page or site.origins[0] + "/"
    enforce((s.limits.links_by_visitor, thread.visitor, "links asked for"))
    await s.store.request_resume_link(thread, token_epoch(request, s), email, page)
    return JSONResponse({"email": email}, status_code=202)


async def resume(request: Request) -> Response:
    """Open a resume link: a new visitor token, on this device, for the same thread."""
    s = services(request)
    data = await read_json(request, s.config.max_request_bytes)
    token = data.get("token")
    if not isinstance(token, str):
        raise UnprocessableRequest("'token' must be the text after #porch= in the link")
    claim = s.tokens.read_resume(token)
    site = await s.store.get_site(claim.site)
    origin = request.headers.get("origin")
    if site is None or (origin is not None and origin not in site.origins):
        raise InvalidToken("this link belongs to another website", reason="other_site")
    thread, epoch = await s.store.use_resume(claim)
    return JSONResponse(
        {
            "token": s.tokens.visitor_token(claim.visitor, claim.site, epoch),
            "thread": thread.to_json(),
        }
    )


async def sign_out(request: Request) -> Response:
    """{"everywhere": true}: every token of this visitor stops, sockets close (4401)."""
    s = services(request)
    thread = await visitor_thread(request, s)
    data = await read_json(request, s.config.max_request_bytes)
    if data.get("everywhere") is True:
        await s.store.sign_out_everywhere(thread)
    return Response(status_code=204)


async def visitor_site(request: Request, site_id: str) -> Site:
    """The site a visitor request names, from one of its origins (else 403)."""
    site = await services(request).store.get_site(site_id)
    if site is None:
        raise NotFound(f"no site {site_id!r}")
    check_origin(request.headers.get("origin"), site)
    return site


def token_epoch(request: Request, s: Services) -> int:
    """The epoch of the visitor token that came with the request (checked already by
    visitor_thread): writes that direct mail check it again inside their transaction."""
    return s.tokens.read_visitor(bearer(request)).epoch


async def visitor_thread(request: Request, s: Services) -> Thread:
    """The thread of the visitor whose token came with the request, seen from an allowed page."""
    claim = s.tokens.read_visitor(bearer(request))
    site = await s.store.get_site(claim.site)
    thread = await s.store.visitor_thread(claim.visitor, claim.epoch)
    if site is None or thread is None or thread.site != site.id:
        raise InvalidToken("this token's conversation no longer exists")
    check_origin(request.headers.get("origin"), site)
    return thread


routes = [
    Route("/v1/sites/{site}/config", site_config, methods=["GET"]),
    Route("/v1/sites/{site}/threads", start_thread, methods=["POST"]),
    Route("/v1/sites/{site}/identify", identify, methods=["POST"]),
    Route("/v1/thread", get_thread, methods=["GET"]),
    Route("/v1/thread/messages", post_message, methods=["POST"]),
    Route("/v1/thread/read", mark_read, methods=["POST"]),
    Route("/v1/thread/contact", set_contact, methods=["POST"]),
    Route("/v1/thread/resume-link", resume_link, methods=["POST"]),
    Route("/v1/thread/sign-out", sign_out, methods=["POST"]),
    Route("/v1/resume", resume, methods=["POST"]),
]
