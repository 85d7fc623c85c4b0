"""The inbox page's socket, /inbox/live: the /v1/live protocol of an owner, signed in
by the session cookie instead of a token, over every site of the owner at once.

While it is open the owner's sites are "online" for visitors; revoking the session
closes it at once (4401).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from starlette.websockets import WebSocket

from relay.inbox.auth import check_same_origin, session_of
from relay.inputs import seq_value
from relay.live import Session, hello_frame, serve
from relay.models import Author
from relay.services import services

CLOSE_SIGNED_OUT = 4401


async def inbox_live(ws: WebSocket) -> None:
    s = services(ws)
    await ws.accept()
    signed_in: list[str] = []  # the session id, once known: presence is held under it

    async def opening() -> Session:
        # The cookie comes with any page's handshake: only the inbox's own may use it.
        check_same_origin(ws, s)
        session = await session_of(ws, s)
        signed_in.append(session.id)
        frame = await hello_frame(ws)
        sites = tuple(site.id for site in await s.store.owner_sites(session.email))
        return Session(ws, s, Author.OWNER, sites, None, seq_value(frame.get("since", 0), "since"))

    def hold(session: Session) -> AbstractContextManager[None]:
        return s.presence.inbox_open(
            session.sites, signed_in[0], lambda: session.end(CLOSE_SIGNED_OUT, "signed out")
        )

    await serve(ws, opening, hold)
