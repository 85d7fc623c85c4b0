"""Live fan-out inside one process: events to whoever watches a thread or a site.

A watcher is a plain callback, called synchronously in publish order; it must not
block (a live socket appends to its own buffer). The store is the truth; the bus only
saves a round trip, so a watcher that cannot keep up may drop out and resume from
the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from relay.models import Event

Watcher = Callable[[Event], None]


class Bus:
    def __init__(self) -> None:
        self._by_thread: defaultdict[str, set[Watcher]] = defaultdict(set)
        self._by_site: defaultdict[str, set[Watcher]] = defaultdict(set)

    def publish(self, event: Event) -> None:
        for watcher in (*self._by_thread.get(event.thread, ()), *self._by_site.get(event.site, ())):
            watcher(event)

    @contextmanager
    def watch_thread(self, thread: str, watcher: Watcher) -> Iterator[None]:
        with _member(self._by_thread, thread, watcher):
            yield

    @contextmanager
    def watch_site(self, site: str, watcher: Watcher) -> Iterator[None]:
        with _member(self._by_site, site, watcher):
            yield

    def watcher_count(self) -> int:
        return sum(map(len, self._by_thread.values())) + sum(map(len, self._by_site.values()))


@contextmanager
def _member(index: defaultdict[str, set[Watcher]], key: str, watcher: Watcher) -> Iterator[None]:
    index[key].add(watcher)
    try:
        yield
    finally:
        members = index.get(key)
        if members is not None:
            members.discard(watcher)
            if not members:
                del index[key]
