"""Unsubscribe links in visitor emails: a page with one button, and RFC 8058 one-click
POST for mail clients. The signed token in the URL is the only credential needed."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from relay.errors import InvalidToken
from relay.web.services import services

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
</head><body><main><h1>{title}</h1>{body}</main></body></html>"""


async def confirm(request: Request) -> Response:
    """GET: never unsubscribe on a GET (link scanners follow every link); ask first."""
    address, _ = _read(request)
    body = (
        f"<p>Stop emails about this conversation to {html.escape(address)}?</p>"
        '<form method="post"><button type="submit">Stop these emails</button></form>'
    )
    return HTMLResponse(PAGE.format(title="Stop emails", body=body))


async def unsubscribe(request: Request) -> Response:
    address, _ = _read(request)
    await services(request).store.suppress([address], "unsubscribed")
    body = f"<p>Done: {html.escape(address)} will get no more emails from us.</p>"
    return HTMLResponse(PAGE.format(title="Unsubscribed", body=body))


def _read(request: Request) -> tuple[str, str]:
    try:
        return services(request).tokens.read_unsubscribe(request.path_params["token"])
    except InvalidToken:
        raise InvalidToken("this unsubscribe link is not valid: it was altered or cut") from None


routes = [
    Route("/v1/unsubscribe/{token}", confirm, methods=["GET"]),
    Route("/v1/unsubscribe/{token}", unsubscribe, methods=["POST"]),
]
