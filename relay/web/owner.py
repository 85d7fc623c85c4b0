"""The owner API: the site owner's view of every conversation (CLI, inbox page)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.conversations import Actor
from relay.errors import NotFound
from relay.inputs import (
    bearer,
    client_id,
    message_content,
    read_json,
    seq_value,
)
from relay.models import Author, Thread, Via
from relay.web.api import history
from relay.web.services import Services, services

OWNER = Actor(Author.OWNER, Via.API)  # an owner's program, with an owner token


async def list_threads(request: Request) -> Response:
    s = services(request)
    claim = s.tokens.read_owner(bearer(request))
    summaries = await s.store.list_threads(claim.site)
    return JSONResponse({"threads": [summary.to_json() for summary in summaries]})


async def get_thread(request: Request) -> Response:
    s = services(request)
    thread = await owned_thread(request, s, request.path_params["thread"])
    return await history(request, s, thread, Author.OWNER)


async def post_message(request: Request) -> Response:
    s = services(request)
    thread = await owned_thread(request, s, request.path_params["thread"])
    data = await read_json(request, s.config.max_request_bytes)
    body, attachments = message_content(data, s.config.max_body_chars)
    message, created = await s.conversations.post(
        thread.id, OWNER, body, client_id(data), attachments
    )
    return JSONResponse(message.to_json(Author.OWNER, s.link), status_code=201 if created else 200)


async def mark_read(request: Request) -> Response:
    s = services(request)
    thread = await owned_thread(request, s, request.path_params["thread"])
    data = await read_json(request, s.config.max_request_bytes)
    await s.conversations.mark_read(thread.id, Author.OWNER, seq_value(data.get("seq"), "seq"))
    return Response(status_code=204)


async def owned_thread(request: Request, s: Services, thread_id: str) -> Thread:
    claim = s.tokens.read_owner(bearer(request))
    thread = await s.store.get_thread(thread_id)
    # Another site's thread is "not found", not "forbidden": ids are not confirmed.
    if thread is None or thread.site != claim.site:
        raise NotFound(f"no thread {thread_id!r} on this site")
    return thread


routes = [
    Route("/v1/owner/threads", list_threads, methods=["GET"]),
    Route("/v1/owner/threads/{thread}", get_thread, methods=["GET"]),
    Route("/v1/owner/threads/{thread}/messages", post_message, methods=["POST"]),
    Route("/v1/owner/threads/{thread}/read", mark_read, methods=["POST"]),
]
