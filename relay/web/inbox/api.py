"""The JSON API of the inbox page, under /inbox/api. Cookie session; every POST passes
the CSRF checks of relay/inbox/auth.py. An owner sees the threads of every site they
answer for, and nothing of any other site (another site's thread is "not found")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.catalogue import LANGUAGES
from relay.channels.apps.accounts import add_channel, describe, remove_channel
from relay.conversations import Actor
from relay.errors import Conflict, NotFound, Unavailable, UnprocessableRequest
from relay.inputs import (
    MAX_NAME_CHARS,
    MAX_PAGE_MESSAGES,
    client_id,
    email_address,
    encode_list_cursor,
    list_cursor,
    message_content,
    optional_text,
    parse_json_object,
    query_since,
    read_body,
    read_json,
    seq_value,
)
from relay.limits import enforce
from relay.models import Author, NotifyMode, Owner, OwnerSession, Site, ThreadStatus, Via
from relay.sites.availability import public_availability
from relay.sites.settings import apply_changes, form_fields, public_settings
from relay.web.api import typical_reply
from relay.web.attachments import upload
from relay.web.inbox import answers, held, push
from relay.web.inbox.apps import chat_of, no_template, site_apps, thread_apps, window_open
from relay.web.inbox.auth import (
    check_same_origin,
    clear_cookie,
    owned_site,
    set_cookie,
    signed_in,
)
from relay.web.services import Services, client_ip, services
from relay.web.widget import snippet

MAX_ALIASES = 10
STATUS_FILTERS = {"open": ThreadStatus.OPEN, "closed": ThreadStatus.CLOSED, "all": None}

OWNER = Actor(Author.OWNER, Via.INBOX)  # an owner signed in to the inbox page
SITE_FIELDS = form_fields()  # relay/sites/settings.py declares them; site_form.js draws them


async def ask_for_link(request: Request) -> Response:
    """Email a sign-in link. The answer is the same whether or not the address is an
    owner's: the form must not tell strangers who owns what."""
    s = services(request)
    check_same_origin(request, s)
    data = await read_json(request, s.config.max_request_bytes)
    email = email_address(data)
    language = data.get("language") if data.get("language") in LANGUAGES else "en"
    if not s.config.mail_enabled:
        raise Unavailable(
            "this relay sends no email (PORCH_SMTP_URL is not set): "
            "print a sign-in link with `porch owner login EMAIL`"
        )
    enforce(
        (s.limits.logins_by_ip, client_ip(request), "sign-in links from this address"),
        (s.limits.logins_by_email, email, "sign-in links for this email"),
    )
    await s.store.queue_login_email(email, language)
    return JSONResponse({"sent": True}, status_code=202)


async def open_session(request: Request) -> Response:
    """Trade a sign-in link's token (used once) for a session cookie."""
    s = services(request)
    check_same_origin(request, s)
    data = await read_json(request, s.config.max_request_bytes)
    token = data.get("token")
    if not isinstance(token, str):
        raise UnprocessableRequest("'token' must be the text after #login= in the link")
    claim = s.tokens.read_login(token)
    session = await s.store.start_session(claim.email, claim.jti, request.headers.get("user-agent"))
    response = JSONResponse(await me(s, session))
    set_cookie(request, response, session.id)
    return response


async def get_session(request: Request) -> Response:
    session = await signed_in(request)
    return JSONResponse(await me(services(request), session))


async def log_out(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    raw = await read_body(request, s.config.max_request_bytes)  # may be empty: one device
    data = parse_json_object(raw) if raw else {}
    everywhere = data.get("everywhere") is True
    revoked = await s.store.revoke_sessions(session.email, None if everywhere else session.id)
    await push.forget_devices(s, session.email, None if everywhere else revoked)
    s.presence.end_sessions(revoked)
    response = Response(status_code=204)
    clear_cookie(response)
    return response


async def revoke_session(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    revoked = await s.store.revoke_sessions(session.email, request.path_params["id"])
    if not revoked:
        raise NotFound(f"no session {request.path_params['id']!r} of yours is signed in")
    await push.forget_devices(s, session.email, revoked)
    s.presence.end_sessions(revoked)
    return Response(status_code=204)


async def update_me(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    data = await read_json(request, s.config.max_request_bytes)
    owner = await s.store.get_owner(session.email)
    changes: dict[str, Any] = {}
    if "name" in data:
        changes["name"] = optional_text(data, "name", MAX_NAME_CHARS) or None
    if "language" in data:
        if data["language"] not in LANGUAGES:
            raise UnprocessableRequest(
                f"'language' must be one of {', '.join(LANGUAGES)}, got {data['language']!r}"
            )
        changes["language"] = data["language"]
    if "notify" in data:
        modes = [mode.value for mode in NotifyMode]
        if data["notify"] not in modes:
            raise UnprocessableRequest(
                f"'notify' must be one of {', '.join(modes)}, got {data['notify']!r}"
            )
        changes["notify"] = data["notify"]
    if "aliases" in data:
        changes["aliases"] = _aliases(data["aliases"], session.email)
    unknown = set(data) - {"name", "language", "notify", "aliases"}
    if unknown:
        raise UnprocessableRequest(f"unknown field {sorted(unknown)[0]!r}")
    await s.store.save_owner(Owner(**{**owner.__dict__, **changes}))
    return JSONResponse(await me(s, session))


async def list_threads(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    sites = [site.id for site in await s.store.owner_sites(session.email)]
    wanted = request.query_params.get("site")
    if wanted:
        if wanted not in sites:
            raise NotFound(f"no site {wanted!r} of yours")
        sites = [wanted]
    status_name = request.query_params.get("status", "open")
    if status_name not in STATUS_FILTERS:
        raise UnprocessableRequest(f"'status' must be open, closed or all, got {status_name!r}")
    search = request.query_params.get("q")
    before = list_cursor(request.query_params.get("before"))
    # The cursor first: a message stored while the list is read comes again on the
    # socket (the page de-duplicates by seq) rather than never.
    seq = await s.store.last_seq()
    page = await s.store.inbox_threads(sites, STATUS_FILTERS[status_name], search, before)
    return JSONResponse(
        {
            "threads": [t.to_json() for t in page.threads],
            "seq": seq,
            "next": encode_list_cursor(page.next),
        }
    )


async def get_thread(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    summary = await _owned(s, session, request.path_params["thread"])
    messages = await s.store.thread_messages(
        summary.thread.id, query_since(request), MAX_PAGE_MESSAGES
    )
    return JSONResponse(
        {
            "thread": summary.to_json(),
            "messages": [m.to_json(Author.OWNER, s.link) for m in messages],
            "more": len(messages) == MAX_PAGE_MESSAGES,
            "held": await held.thread_held(s, summary.thread.id, summary.thread.site),
            **await thread_apps(s, summary.thread.id),
        }
    )


async def post_message(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    summary = await _owned(s, session, request.path_params["thread"])
    data = await read_json(request, s.config.max_request_bytes)
    body, attachments = message_content(data, s.config.max_body_chars)
    message, created = await s.conversations.post(
        summary.thread.id, OWNER, body, client_id(data), attachments
    )
    return JSONResponse(message.to_json(Author.OWNER, s.link), status_code=201 if created else 200)


async def upload_attachment(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    summary = await _owned(s, session, request.path_params["thread"])
    return await upload(request, s, summary.thread, Author.OWNER)


async def send_template(request: Request) -> Response:
    """Send the app's approved template to a customer whose reply window has closed
    (WhatsApp): it invites them to write again, which reopens it."""
    session = await signed_in(request)
    s = services(request)
    summary = await _owned(s, session, request.path_params["thread"])
    data = await read_json(request, s.config.max_request_bytes)
    found = await chat_of(s, summary.thread.id, data.get("channel"))
    if found is None:
        raise NotFound("'channel' must be the id of one of this conversation's chats")
    chat, channel = found
    if not channel.template:
        raise UnprocessableRequest(no_template(s, chat, channel))
    if window_open(s, chat, channel):
        raise Conflict("the customer wrote within the app's reply window: reply as usual")
    await s.store.queue_template(chat, channel.kind)
    return JSONResponse({"queued": True}, status_code=202)


async def set_status(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    summary = await _owned(s, session, request.path_params["thread"])
    data = await read_json(request, s.config.max_request_bytes)
    status = data.get("status")
    if status not in ("open", "closed"):
        raise UnprocessableRequest(f"'status' must be open or closed, got {status!r}")
    await s.conversations.set_status(summary.thread.id, ThreadStatus(status))
    updated = await s.store.inbox_thread(summary.thread.id)
    assert updated is not None
    return JSONResponse(updated.to_json())


async def mark_read(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    summary = await _owned(s, session, request.path_params["thread"])
    data = await read_json(request, s.config.max_request_bytes)
    await s.conversations.mark_read(
        summary.thread.id, Author.OWNER, seq_value(data.get("seq"), "seq")
    )
    return Response(status_code=204)


async def update_site(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    site = await owned_site(s, session, request.path_params["site"])
    data = await read_json(request, s.config.max_request_bytes)
    _no_owner_removed(site, data.get("owner_emails"))
    saved = await s.store.add_site(apply_changes(site, data), replace=True)
    s.conversations.site_changed(saved.id)  # hours and away texts apply at once
    s.answers.changed(saved.id)  # and synonyms
    return JSONResponse(await site_out(s, saved))


async def add_app(request: Request) -> Response:
    """Connect a messaging-app account to the site (the same checks as `porch channel
    add`): its secrets are kept, never shown again."""
    session = await signed_in(request)
    s = services(request)
    site = await owned_site(s, session, request.path_params["site"])
    data = await read_json(request, s.config.max_request_bytes)
    options = data.get("options")
    template = data.get("template") or None
    if not isinstance(options, dict) or not isinstance(template, str | None):
        raise UnprocessableRequest("send {'kind', 'options': {name: value}, 'template'?}")
    channel = await add_channel(
        s.store, s.config, site.id, str(data.get("kind")), options, template
    )
    return JSONResponse(describe(s.config, channel), status_code=201)


async def remove_app(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    site = await owned_site(s, session, request.path_params["site"])
    if not await remove_channel(s.store, s.config, site.id, request.path_params["channel"]):
        raise NotFound(f"no channel {request.path_params['channel']!r} on this site")
    return Response(status_code=204)


# -- shapes ----------------------------------------------------------------------------


async def me(s: Services, session: OwnerSession) -> dict[str, Any]:
    owner = await s.store.get_owner(session.email)
    sites = await s.store.owner_sites(session.email)
    sessions = await s.store.list_sessions(session.email)
    return {
        "email": owner.email,
        "name": owner.name,
        "language": owner.language,
        "notify": owner.notify,
        "aliases": list(owner.aliases),
        "csrf": s.tokens.csrf_token(session.id),
        "session": session.id,
        "sites": [await site_out(s, site) for site in sites],
        "site_fields": SITE_FIELDS,  # the settings form of every site, field by field
        "sessions": [
            {
                "id": other.id,
                "user_agent": other.user_agent,
                "created_at": other.created_at,
                "last_seen_at": other.last_seen_at,
                "current": other.id == session.id,
            }
            for other in sessions
        ],
    }


async def site_out(s: Services, site: Site) -> dict[str, Any]:
    return {
        "id": site.id,
        "name": site.name,
        "origins": list(site.origins),
        "owner_emails": list(site.owner_emails),
        "settings": public_settings(site),
        "snippet": snippet(s.config, site.id),
        "channels": await site_apps(s, site.id),
        "availability": public_availability(
            site,
            s.clock.now(),
            s.presence.online(site.id),
            await typical_reply(s, site.id),
        ),
    }


async def _owned(s: Services, session: OwnerSession, thread_id: str) -> Any:
    summary = await s.store.inbox_thread(thread_id)
    if summary is None or summary.thread.site not in {
        site.id for site in await s.store.owner_sites(session.email)
    }:
        raise NotFound(f"no thread {thread_id!r} in your inbox")
    return summary


def _no_owner_removed(site: Site, wanted: Any) -> None:
    """Owners may invite a colleague from the inbox, not remove one: a stolen session or
    a falling-out must not lock the business out of its own site."""
    if not isinstance(wanted, list):
        return  # absent, or refused with the field's own message by apply_changes
    kept = {str(email).strip().lower() for email in wanted}
    removed = [email for email in site.owner_emails if email.lower() not in kept]
    if removed:
        raise UnprocessableRequest(
            f"'owner_emails': {removed[0]} can only be removed by the relay's operator "
            "(porch site set --owner-email); add addresses here",
            reason="owner_emails",
        )


def private(handler: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
    """Answers hold visitors' words and the CSRF token: never kept by a cache."""

    async def answer(request: Request) -> Response:
        response = await handler(request)
        response.headers["cache-control"] = "no-store"
        return response

    return answer


def _aliases(raw: Any, email: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_ALIASES:
        raise UnprocessableRequest(f"'aliases' must be a list of at most {MAX_ALIASES} addresses")
    found: list[str] = []
    for item in raw:
        try:
            alias = email_address({"email": item})
        except UnprocessableRequest:
            raise UnprocessableRequest(
                f"'aliases' must hold addresses like ann@example.com, got {str(item)[:80]!r}"
            ) from None
        if alias != email and alias not in found:
            found.append(alias)
    return tuple(found)


routes = [
    Route("/inbox/api/login", private(ask_for_link), methods=["POST"]),
    Route("/inbox/api/session", private(get_session), methods=["GET"]),
    Route("/inbox/api/session", private(open_session), methods=["POST"]),
    Route("/inbox/api/logout", private(log_out), methods=["POST"]),
    Route("/inbox/api/sessions/{id}/revoke", private(revoke_session), methods=["POST"]),
    Route("/inbox/api/me", private(update_me), methods=["POST"]),
    Route("/inbox/api/threads", private(list_threads), methods=["GET"]),
    Route("/inbox/api/threads/{thread}", private(get_thread), methods=["GET"]),
    Route("/inbox/api/threads/{thread}/messages", private(post_message), methods=["POST"]),
    Route("/inbox/api/threads/{thread}/status", private(set_status), methods=["POST"]),
    Route("/inbox/api/threads/{thread}/attachments", private(upload_attachment), methods=["POST"]),
    Route("/inbox/api/threads/{thread}/template", private(send_template), methods=["POST"]),
    Route("/inbox/api/threads/{thread}/read", private(mark_read), methods=["POST"]),
    Route("/inbox/api/sites/{site}/settings", private(update_site), methods=["POST"]),
    Route("/inbox/api/sites/{site}/channels", private(add_app), methods=["POST"]),
    Route(
        "/inbox/api/sites/{site}/channels/{channel}/remove", private(remove_app), methods=["POST"]
    ),
    *answers.routes,
    *push.routes,
    *held.routes,
]
