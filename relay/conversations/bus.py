"""Live fan-out inside one process: events to whoever watches a thread or a site.

A watcher is a plain callback, called synchronously in publish order; it must not
block (a live socket appends to its own buffer). The store is the truth; the bus only
saves a round trip, so a watcher that cannot keep up may drop out and resume from
the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from relay.models import Event

Watcher = Callable[[Event], None]


class Bus:
    def __init__(self) -> None:
        self._by_thread: defaultdict[str, set[Watcher]] = defaultdict(set)
        self._by_site: defaultdict[str, set[Watcher]] = defaultdict(set)

    def publish(self, event: Event) -> None:
        for watcher in (*self._by_thread.get(event.thread, ()), *self._by_site.get(event.site, ())):
            watcher(event)

    def watch_thread(self, thread: str, watcher: Watcher) -> Watching:
        return Watching(self._by_thread, thread, watcher)

    def watch_site(self, site: str, watcher: Watcher) -> Watching:
        return Watching(self._by_site, site, watcher)

    def watcher_count(self) -> int:
        return sum(map(len, self._by_thread.values())) + sum(map(len, self._by_site.values()))


class Watching:
    """Held (`with`) for as long as a socket watches: a plain object, not a generator,
    as every idle socket keeps one or more for its whole life."""

    __slots__ = ("_index", "_key", "_watcher")

    def __init__(self, index: defaultdict[str, set[Watcher]], key: str, watcher: Watcher) -> None:
        self._index, self._key, self._watcher = index, key, watcher

    def __enter__(self) -> None:
        self._index[self._key].add(self._watcher)

    def __exit__(self, *exc: object) -> None:
        members = self._index.get(self._key)
        if members is not None:
            members.discard(self._watcher)
            if not members:
                del self._index[self._key]
