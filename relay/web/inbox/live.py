"""The inbox page's socket, /inbox/live: the /v1/live protocol of an owner, signed in
by the session cookie instead of a token, over every site of the owner at once.

While it is open and the page says the owner is looking ({"type": "here"}), the
owner's sites are "online" for visitors. Revoking the session closes it (4401): at
once from this process, else at its next frame (the page pings every 25 s), which also
notices when the owner's sites changed (4409: reconnect for the new list).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.websockets import WebSocket

from relay.errors import SitesChanged, Unauthorized
from relay.inputs import seq_value
from relay.models import Author, OwnerSession, Via
from relay.web.inbox.auth import check_same_origin, session_of
from relay.web.live import Session, hello_frame, serve
from relay.web.services import Services, services

CLOSE_SIGNED_OUT = 4401


async def inbox_live(ws: WebSocket) -> None:
    s = services(ws)
    await ws.accept()
    owner: list[OwnerSession] = []  # once signed in

    async def opening() -> Session:
        # The cookie comes with any page's handshake: only the inbox's own may use it.
        check_same_origin(ws, s)
        owner.append(await session_of(ws, s))
        frame = await hello_frame(ws)
        sites = await _sites(s, owner[0])
        session = Session(
            ws,
            s,
            Author.OWNER,
            sites,
            None,
            seq_value(frame.get("since", 0), "since"),
            via=Via.INBOX,
        )
        session.recheck = lambda: _recheck(s, owner[0], session.sites)
        return session

    @contextmanager
    def hold(session: Session) -> Iterator[None]:
        end = lambda: session.end(CLOSE_SIGNED_OUT, "signed out")  # noqa: E731
        with s.presence.inbox_open(session.sites, owner[0].id, end) as seat:
            session.here = seat.set_here
            yield

    await serve(ws, opening, hold)


async def _sites(s: Services, owner: OwnerSession) -> tuple[str, ...]:
    return tuple(site.id for site in await s.store.owner_sites(owner.email))


async def _recheck(s: Services, owner: OwnerSession, sites: tuple[str, ...]) -> None:
    if await s.store.get_session(owner.id) is None:
        raise Unauthorized("signed out: this session was revoked or has expired")
    if await _sites(s, owner) != sites:
        raise SitesChanged("the sites you answer for changed: reconnect")
