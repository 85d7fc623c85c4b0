"""Emailed replies held because their sender could not be verified (relay/channels/email/
inbound.py), under /inbox/api/held: the list for the signed-in owner's sites, and the
owner's decision on each, released (posted as if it had just arrived) or discarded (the
mail forgotten). An owner sees and decides only those of their own sites; another's is
"not found". relay/web/inbox/api.py mounts these routes and adds a thread's own to it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.channels.email import EmailChannel
from relay.errors import Conflict, NotFound
from relay.models import Author, Via
from relay.store.held import HeldReply
from relay.web.inbox.auth import signed_in
from relay.web.services import Services, services

PRIVATE = {"cache-control": "no-store"}


async def list_held(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    sites = [site.id for site in await s.store.owner_sites(session.email)]
    held = await s.store.held_replies(sites)
    return JSONResponse({"held": [reply.to_json() for reply in held]}, headers=PRIVATE)


async def release(request: Request) -> Response:
    """Post it; 409, and it stays held, if it cannot be posted (its sender may no longer
    write to the conversation, or nothing is left of it to post)."""
    session = await signed_in(request)
    s = services(request)
    held, raw = await _owned(s, session.email, request.path_params["id"])
    channel = s.channels[Via.EMAIL]
    assert isinstance(channel, EmailChannel)
    # Claimed first, so that a discard at the same moment cannot follow a post; the mail
    # is forgotten only once posted (a crash in between leaves it to release again).
    if not await s.store.claim_release(held.id):
        raise NotFound("this reply was released or discarded meanwhile")
    try:
        outcome = await channel.pipeline.release(held, raw)
    except Exception:  # the thread erased meanwhile, the store down: it waits again
        await s.store.hold_again(held.id)
        raise
    if not outcome.posted:
        await s.store.hold_again(held.id)
        raise Conflict(f"this reply cannot be posted: {outcome.verdict.value}; discard it")
    await s.store.decide_held(held.id, "released", session.email)
    assert outcome.message is not None
    return JSONResponse(
        {"released": True, "message": outcome.message.to_json(Author.OWNER, s.link)},
        headers=PRIVATE,
    )


async def discard(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    held, _ = await _owned(s, session.email, request.path_params["id"])
    if not await s.store.decide_held(held.id, "discarded", session.email):
        raise NotFound("this reply was released or discarded meanwhile")
    return JSONResponse({"discarded": True}, headers=PRIVATE)


async def thread_held(s: Services, thread: str, site: str) -> list[dict[str, object]]:
    return [reply.to_json() for reply in await s.store.held_replies([site], thread)]


async def _owned(s: Services, owner: str, given: str) -> tuple[HeldReply, bytes]:
    found = await s.store.held_reply(int(given)) if given.isdecimal() and len(given) < 19 else None
    sites = {site.id for site in await s.store.owner_sites(owner)}
    if found is None or found[0].site not in sites:
        raise NotFound(f"no held reply {given!r} in your inbox")
    return found


routes = [
    Route("/inbox/api/held", list_held, methods=["GET"]),
    Route("/inbox/api/held/{id}/release", release, methods=["POST"]),
    Route("/inbox/api/held/{id}/discard", discard, methods=["POST"]),
]
