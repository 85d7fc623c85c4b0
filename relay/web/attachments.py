"""Photos and files over HTTP: uploads by the visitor (`POST /v1/thread/attachments`) and
the owner (`POST /v1/owner/threads/{thread}/attachments`), each `multipart/form-data` with
one part `file` → `201 {"id", "name", "type", "size", "url"}`; and downloads by a signed,
short-lived link (`GET /v1/attachments/{token}/{name}`) that needs no Authorization
header, so an <img> and a plain link work.

A download can never run script in the relay's origin: every answer carries nosniff
and a sandboxing CSP, and only the raster images the relay re-encoded are `inline`;
everything else is an `attachment`.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from relay.attachments.uploads import receive_file
from relay.errors import InvalidToken, NotFound
from relay.limits import enforce
from relay.models import Author, Thread
from relay.tokens import ATTACHMENT_MAX_AGE
from relay.web.api import visitor_thread
from relay.web.owner import owned_thread
from relay.web.services import Services, services

INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})  # re-encoded by us
SANDBOX = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


async def visitor_upload(request: Request) -> Response:
    s = services(request)
    thread = await visitor_thread(request, s)
    enforce((s.limits.uploads_by_visitor, thread.visitor, "files from this visitor"))
    return await upload(request, s, thread, Author.VISITOR)


async def owner_upload(request: Request) -> Response:
    s = services(request)
    thread = await owned_thread(request, s, request.path_params["thread"])
    return await upload(request, s, thread, Author.OWNER)


async def upload(request: Request, s: Services, thread: Thread, uploader: Author) -> Response:
    """The one part `file` of the request, streamed to disk, then kept for `thread`."""
    scratch = await s.files.scratch()
    try:
        received = await receive_file(request, scratch, await s.files.limit(thread.site))
    except BaseException:
        await asyncio.to_thread(scratch.unlink, missing_ok=True)
        raise
    attached = (await s.files.keep(scratch, received.name, thread, uploader)).attached
    return JSONResponse({**attached.to_json(), "url": s.link(attached)}, status_code=201)


async def download(request: Request) -> Response:
    s = services(request)
    try:
        attachment_id = s.tokens.read_attachment(request.path_params["token"])
    except InvalidToken as error:  # altered or expired: as if there were nothing there
        raise NotFound(error.message, reason=error.reason) from None
    attachment = await s.store.attachment(attachment_id)
    path = await s.blobs.local_path(attachment.digest) if attachment else None
    if attachment is None or path is None:
        raise NotFound("this file is no longer here")
    inline = attachment.type in INLINE_TYPES
    return FileResponse(
        path,
        media_type=attachment.type,
        filename=attachment.name,
        content_disposition_type="inline" if inline else "attachment",
        headers={
            "x-content-type-options": "nosniff",
            "content-security-policy": SANDBOX,
            "cache-control": f"private, max-age={ATTACHMENT_MAX_AGE}",
            # The widget shows it from the site's own page: another origin.
            "cross-origin-resource-policy": "cross-origin",
            "referrer-policy": "no-referrer",
        },
    )


routes = [
    Route("/v1/thread/attachments", visitor_upload, methods=["POST"]),
    Route("/v1/owner/threads/{thread}/attachments", owner_upload, methods=["POST"]),
    Route("/v1/attachments/{token}/{name}", download, methods=["GET"]),
]
