"""Who is at the inbox: a site is "online" while an owner of it is looking at the inbox
(an inbox socket whose page is visible and focused: the page says so with "here"
frames), not merely while a tab is left open.

Each inbox socket takes a seat for every site its owner answers. Visitors hear about
changes as {"type": "presence", "online": bool} frames. With several relay processes
(PostgreSQL), each says which of its sites have an owner here when that changes and
every HEARTBEAT seconds (keep_shared); what another process stopped saying for
REMOTE_TTL seconds (it died) is forgotten.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[bool], None]
HEARTBEAT = 20.0  # seconds between a process's reminders of its owners at the inbox
REMOTE_TTL = 3 * HEARTBEAT


class Seat:
    """One inbox socket's place: here (looking) or away."""

    def __init__(self, presence: Presence, sites: tuple[str, ...]) -> None:
        self._presence = presence
        self.sites = sites
        self.here = False

    def set_here(self, here: bool) -> None:
        if here != self.here:
            self.here = here
            for site in self.sites:
                self._presence._count(site, 1 if here else -1)


class Listening:
    __slots__ = ("_listeners", "_site", "_listener")

    def __init__(
        self, listeners: defaultdict[str, set[Listener]], site: str, listener: Listener
    ) -> None:
        self._listeners, self._site, self._listener = listeners, site, listener

    def __enter__(self) -> None:
        self._listeners[self._site].add(self._listener)

    def __exit__(self, *exc: object) -> None:
        members = self._listeners.get(self._site)
        if members is not None:
            members.discard(self._listener)
            if not members:
                del self._listeners[self._site]


class Presence:
    def __init__(self) -> None:
        self._here: Counter[str] = Counter()  # site → inbox sockets looking at it
        self._listeners: defaultdict[str, set[Listener]] = defaultdict(set)
        self._endings: defaultdict[str, set[Callable[[], None]]] = defaultdict(set)
        self._remote: defaultdict[str, dict[str, float]] = defaultdict(
            dict
        )  # site → {process: until}
        self.on_change: Callable[[str, bool], None] | None = None  # this process's seats

    def online(self, site: str) -> bool:
        return self._here[site] > 0 or site in self._remote

    def here_sites(self) -> list[str]:
        """Sites with an owner at the inbox through this process."""
        return list(self._here)

    def heard(self, process: str, site: str, online: bool) -> None:
        """What another relay process said of its owners at `site`'s inbox."""
        before = self.online(site)
        if online:
            self._remote[site][process] = time.monotonic() + REMOTE_TTL
        elif site in self._remote:
            self._remote[site].pop(process, None)
            if not self._remote[site]:
                del self._remote[site]
        self._tell(site, before)

    def expire(self) -> None:
        """Forget what other processes stopped saying (they died)."""
        now = time.monotonic()
        for site, processes in list(self._remote.items()):
            before = self.online(site)
            for process, until in list(processes.items()):
                if until < now:
                    del processes[process]
            if not processes:
                del self._remote[site]
            self._tell(site, before)

    @contextmanager
    def inbox_open(
        self, sites: tuple[str, ...], session: str, end: Callable[[], None]
    ) -> Iterator[Seat]:
        """Held for as long as an owner's inbox socket is open (here until it says
        otherwise); `end` closes the socket when its session is revoked."""
        self._endings[session].add(end)
        seat = Seat(self, sites)
        seat.set_here(True)
        try:
            yield seat
        finally:
            seat.set_here(False)
            self._endings[session].discard(end)
            if not self._endings[session]:
                del self._endings[session]

    def listen(self, site: str, listener: Listener) -> Listening:
        """A visitor socket's callback, called with the new state on every change (a
        context manager; a class, not a generator: one is held by every idle socket)."""
        return Listening(self._listeners, site, listener)

    def end_sessions(self, sessions: list[str]) -> None:
        """Revoked sessions: close their sockets now, not at their next request."""
        for session in sessions:
            for end in tuple(self._endings.get(session, ())):
                end()

    def _count(self, site: str, delta: int) -> None:
        before, here_before = self.online(site), self._here[site] > 0
        self._here[site] += delta
        if self._here[site] <= 0:
            del self._here[site]
        here = self._here[site] > 0
        if here != here_before and self.on_change is not None:
            self.on_change(site, here)
        self._tell(site, before)

    def _tell(self, site: str, before: bool) -> None:
        if self.online(site) != before:
            for listener in tuple(self._listeners.get(site, ())):
                listener(not before)


async def keep_shared(presence: Presence, share: Callable[[str, bool], Awaitable[None]]) -> None:
    """Several relay processes: remind the others of this one's owners at the inbox,
    and forget what the others stopped saying."""
    while True:
        await asyncio.sleep(HEARTBEAT)
        for site in presence.here_sites():
            await share(site, True)
        presence.expire()
