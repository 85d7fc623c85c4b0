"""The relay's WebSockets, handed straight from the ASGI server to their handlers.

Through Starlette's router a socket's task keeps a dozen frames suspended for its
whole life (middleware, exception handlers, routing: ~5 KiB of the ~30 KiB an idle
socket costs) and every frame it sends passes two wrappers. Sockets need none of them:
their errors end as a close code (relay.web.live), never as an HTTP response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

Handler = Callable[[WebSocket], Awaitable[None]]


class Sockets:
    """ASGI middleware, first inside Starlette's error middleware: a WebSocket to one of
    `paths` goes to its handler; everything else on to the app."""

    def __init__(self, app: ASGIApp, paths: Mapping[str, Handler]) -> None:
        self.app = app
        self.paths = dict(paths)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: the handler's (or the app's) is awaited in our place.
        if scope["type"] == "websocket":
            handler = self.paths.get(scope["path"])
            if handler is not None:
                return handler(DirectWebSocket(scope, receive, send))
        return self.app(scope, receive, send)


class DirectWebSocket(WebSocket):
    """Starlette's WebSocket, its state checks kept for the handshake and the close,
    skipped for each frame once connected (the ASGI server never sends anything else)."""

    async def receive(self) -> Message:
        if self.client_state is not WebSocketState.CONNECTED:
            return await super().receive()
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.client_state = WebSocketState.DISCONNECTED
        return message

    async def send_text(self, data: str) -> None:
        if self.application_state is not WebSocketState.CONNECTED:
            await super().send_text(data)  # Starlette's error for a closed socket
            return
        try:
            await self._send({"type": "websocket.send", "text": data})
        except OSError:  # the client left (as Starlette reports it)
            self.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(code=1006) from None
