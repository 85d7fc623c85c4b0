"""Live fan-out inside one process: events to the sockets that watch a thread or a site.

The store is the truth; the bus only saves a round trip. A subscriber that falls too
far behind is dropped (its socket closes and the client resumes from its last seq),
so one slow reader never holds memory or slows the others.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from relay.models import Event

# Events a socket may have queued before it counts as too slow. At the default
# limits one visitor thread sees a few events a minute; an owner socket sees the
# whole site. 1,000 is minutes of backlog either way.
QUEUE_LIMIT = 1000


class Subscription:
    """A queue of events for one socket; `overflowed` once it could not keep up."""

    __slots__ = ("queue", "overflowed")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            # Wake the reader so it sees the overflow rather than waiting forever.
            self.queue.get_nowait()
            self.queue.put_nowait(event)


class Bus:
    def __init__(self) -> None:
        self._by_thread: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._by_site: defaultdict[str, set[Subscription]] = defaultdict(set)

    def publish(self, event: Event) -> None:
        for subscription in self._by_thread.get(event.thread, ()):
            subscription.offer(event)
        for subscription in self._by_site.get(event.site, ()):
            subscription.offer(event)

    @contextmanager
    def watch_thread(self, thread: str) -> Iterator[Subscription]:
        with _member(self._by_thread, thread) as subscription:
            yield subscription

    @contextmanager
    def watch_site(self, site: str) -> Iterator[Subscription]:
        with _member(self._by_site, site) as subscription:
            yield subscription

    def subscriber_count(self) -> int:
        return sum(map(len, self._by_thread.values())) + sum(map(len, self._by_site.values()))


@contextmanager
def _member(index: defaultdict[str, set[Subscription]], key: str) -> Iterator[Subscription]:
    subscription = Subscription()
    index[key].add(subscription)
    try:
        yield subscription
    finally:
        members = index.get(key)
        if members is not None:
            members.discard(subscription)
            if not members:
                del index[key]
