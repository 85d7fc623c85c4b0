"""Who is at the inbox: a site is "online" while an owner of it is looking at the inbox
(an inbox socket whose page is visible and focused: the page says so with "here"
frames), not merely while a tab is left open.

In-process (one relay); each inbox socket takes a seat for every site its owner
answers. Visitors hear about changes as {"type": "presence", "online": bool} frames.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[bool], None]


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

    def online(self, site: str) -> bool:
        return self._here[site] > 0

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
        before = self.online(site)
        self._here[site] += delta
        if self._here[site] <= 0:
            del self._here[site]
        if self.online(site) != before:
            for listener in tuple(self._listeners.get(site, ())):
                listener(not before)
