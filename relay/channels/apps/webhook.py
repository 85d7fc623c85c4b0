"""The one route every messaging app delivers to: /v1/channels/{id}/webhook, the id
naming a site's account (app_channels). GET answers Meta's verification handshake;
POST is verified by the app's own proof (Telegram's secret token, Meta's signature)
before anything is read, then handled event by event (relay.channels.apps.channel).

Answers: 200 once every event is handled (stored, or known as a duplicate); 403
unverified, nothing stored; 404 an unknown channel; 400 not the app's JSON; 413 too
large; 429 or 503 for "deliver it again later", which every app does.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from relay.channels.apps.channel import MessagingApp
from relay.errors import Forbidden, InvalidRequest, NotFound, RateLimited
from relay.inputs import parse_json_object, read_body
from relay.store import Store

log = logging.getLogger("porch.apps")

# Updates are small; a WhatsApp batch of statuses stays far below this.
MAX_WEBHOOK_BYTES = 1024 * 1024
RETRY_LATER = 60  # seconds: a message over the loop caps is delivered again after


class Webhook:
    def __init__(self, store: Store, apps: dict[str, MessagingApp]) -> None:
        self.store = store
        self.apps = apps

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/channels/{channel}/webhook", self.receive, methods=["GET", "POST"])]

    async def receive(self, request: Request) -> Response:
        channel = await self.store.app_channel(request.path_params["channel"])
        app = self.apps.get(channel.kind) if channel else None
        if channel is None or app is None:
            raise NotFound("no such channel")
        if request.method == "GET":
            answer = app.provider.handshake(channel, request.query_params)
            if answer is None:
                raise Forbidden("the verify token does not match")
            return PlainTextResponse(answer)
        raw = await read_body(request, MAX_WEBHOOK_BYTES)
        if not app.provider.verify(channel, request.headers, raw):
            log.warning("%s webhook for %s: not verified", channel.kind, channel.id)
            raise Forbidden(f"this request does not prove it comes from {app.provider.label}")
        payload = parse_json_object(raw)
        try:
            events = app.provider.parse(channel, payload)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InvalidRequest(f"not a {app.provider.label} webhook: {error}") from None
        for event in events:
            outcome = await app.receive(channel, event)
            if outcome.temporary:
                raise RateLimited("too many messages in this conversation", retry_after=RETRY_LATER)
        return JSONResponse({"ok": True})
