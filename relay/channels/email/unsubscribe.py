"""Unsubscribe links in visitor emails: a page with one button, and RFC 8058 one-click
POST for mail clients. The signed token in the URL is the only credential needed."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from relay.errors import InvalidToken
from relay.store import Store
from relay.tokens import Tokens

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
</head><body><main><h1>{title}</h1>{body}</main></body></html>"""


class Unsubscribe:
    def __init__(self, store: Store, tokens: Tokens) -> None:
        self.store = store
        self.tokens = tokens

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/unsubscribe/{token}", self.confirm, methods=["GET"]),
            Route("/v1/unsubscribe/{token}", self.unsubscribe, methods=["POST"]),
        ]

    async def confirm(self, request: Request) -> Response:
        """GET: never unsubscribe on a GET (link scanners follow every link); ask first."""
        address, _ = self._read(request)
        body = (
            f"<p>Stop emails about this conversation to {html.escape(address)}?</p>"
            '<form method="post"><button type="submit">Stop these emails</button></form>'
        )
        return HTMLResponse(PAGE.format(title="Stop emails", body=body))

    async def unsubscribe(self, request: Request) -> Response:
        address, _ = self._read(request)
        await self.store.suppress([address], "unsubscribed")
        body = f"<p>Done: {html.escape(address)} will get no more emails from us.</p>"
        return HTMLResponse(PAGE.format(title="Unsubscribed", body=body))

    def _read(self, request: Request) -> tuple[str, str]:
        try:
            return self.tokens.read_unsubscribe(request.path_params["token"])
        except InvalidToken:
            raise InvalidToken(
                "this unsubscribe link is not valid: it was altered or cut"
            ) from None
