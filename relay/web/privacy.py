"""The visitor's control over their data: download it, erase it. And retention: the
relay erases conversations idle longer than a site's `retention_days`, daily."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from relay.attachments.blobs import Blobs
from relay.errors import NotFound
from relay.store import Store
from relay.web.api import visitor_thread
from relay.web.services import services

log = logging.getLogger("porch.privacy")

DAY = 24 * 3600.0


async def export(request: Request) -> Response:
    """Everything stored about the visitor: ?format=text for a readable transcript."""
    s = services(request)
    thread = await visitor_thread(request, s)
    data = await s.store.export_visitor(thread.visitor)
    if data is None:
        raise NotFound("nothing is stored for this visitor")
    disposition = 'attachment; filename="conversation.{}"'
    if request.query_params.get("format") == "text":
        return PlainTextResponse(
            transcript(data), headers={"content-disposition": disposition.format("txt")}
        )
    return JSONResponse(data, headers={"content-disposition": disposition.format("json")})


async def erase(request: Request) -> Response:
    s = services(request)
    thread = await visitor_thread(request, s)
    digests = await s.store.visitor_digests(thread.visitor)
    await s.store.delete_visitor(thread.visitor)
    await s.store.forget_unused_blobs(s.blobs, digests)  # their photos and files go too
    return Response(status_code=204)


def transcript(data: dict[str, object]) -> str:
    site = data["site"]["name"]  # type: ignore[index]
    lines = [f"Your conversation with {site}", ""]
    for thread in data["threads"]:  # type: ignore[attr-defined]
        for message in thread["messages"]:
            who = "You" if message["author"] == "visitor" else site
            when = message["created_at"][:16].replace("T", " ")
            lines += [f"{who}, {when} UTC:", message["body"], ""]
    return "\n".join(lines)


# A held reply nobody released in this long is discarded, its mail with it.
HELD_DAYS = 30


async def purge_daily(store: Store, blobs: Blobs, reply_tag_days: int) -> None:
    """Run the retention purge at start-up, then once a day; uploads no message carried
    and the files no conversation holds any more go with it, and the reply addresses of
    conversations silent for `reply_tag_days` stop working (0: they never do)."""
    while True:
        if reply_tag_days:
            expired = await store.expire_reply_tags(reply_tag_days)
            if expired:
                log.info("email: %d reply addresses expired", expired)
        stale = await store.discard_stale_held(HELD_DAYS)
        if stale:
            log.info("email: discarded %d replies held over %d days", stale, HELD_DAYS)
        purged = await store.purge_idle()
        if purged:
            log.info("retention: erased %d idle conversations", len(purged))
        unsent = await store.purge_unsent()
        if unsent:
            log.info("attachments: removed %d uploads no message carried", unsent)
        forgotten = await store.forget_unused_blobs(blobs)
        if forgotten:
            log.info("attachments: removed %d files no conversation holds", forgotten)
        await asyncio.sleep(DAY)


routes = [
    Route("/v1/thread/export", export, methods=["GET"]),
    Route("/v1/thread", erase, methods=["DELETE"]),
]
