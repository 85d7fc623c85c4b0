"""Who is at the inbox: a site is "online" while an owner of it has the inbox open.

In-process (one relay); each inbox socket joins for every site its owner answers.
Visitors hear about changes as {"type": "presence", "online": bool} frames.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[bool], None]


class Presence:
    def __init__(self) -> None:
        self._sockets: Counter[str] = Counter()  # site → open inbox sockets
        self._listeners: defaultdict[str, set[Listener]] = defaultdict(set)
        self._endings: defaultdict[str, set[Callable[[], None]]] = defaultdict(set)

    def online(self, site: str) -> bool:
        return self._sockets[site] > 0

    @contextmanager
    def inbox_open(
        self, sites: tuple[str, ...], session: str, end: Callable[[], None]
    ) -> Iterator[None]:
        """Held for as long as an owner's inbox socket is open; `end` closes the socket
        when its session is revoked."""
        self._endings[session].add(end)
        for site in sites:
            self._sockets[site] += 1
            if self._sockets[site] == 1:
                self._tell(site, True)
        try:
            yield
        finally:
            self._endings[session].discard(end)
            if not self._endings[session]:
                del self._endings[session]
            for site in sites:
                self._sockets[site] -= 1
                if self._sockets[site] <= 0:
                    del self._sockets[site]
                    self._tell(site, False)

    @contextmanager
    def listen(self, site: str, listener: Listener) -> Iterator[None]:
        """A visitor socket's callback, called with the new state on every change."""
        self._listeners[site].add(listener)
        try:
            yield
        finally:
            members = self._listeners.get(site)
            if members is not None:
                members.discard(listener)
                if not members:
                    del self._listeners[site]

    def end_sessions(self, sessions: list[str]) -> None:
        """Revoked sessions: close their sockets now, not at their next request."""
        for session in sessions:
            for end in tuple(self._endings.get(session, ())):
                end()

    def _tell(self, site: str, online: bool) -> None:
        for listener in tuple(self._listeners.get(site, ())):
            listener(online)
