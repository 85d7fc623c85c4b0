"""What LISTEN/NOTIFY costs the PostgreSQL store: durable inserts with notifications
as they are, versus with the store's `_notify` replaced by a no-op.

As store.py does for SQLite: PostgresStore.add_message from WRITERS concurrent
coroutines (group commit batches them), a message counted once its COMMIT is back.
With notifications, the store's own listener hears each batch and reads its messages
back to publish them, in this process, as in a relay: that work is part of the cost.
Without, nothing is published: no relay could run so; the no-op is patched in here,
in the benchmark only.

Each mode has a fresh database of its own (a notification reaches every listener of
the database it was sent in); each round opens a store on it, starts THREADS new
conversations, measures, and closes the store. Rounds alternate between the modes so
noise hits both; the best of ROUNDS is kept, as noise only ever slows a run down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from relay.models import Event, MessageAdded
from relay.store.base import StoreEvent
from relay.store.postgres import PostgresStore
from relay.store.rows import Db
from tests.bench import servers
from tests.bench.harness import Row, at_least_ratio, log
from tests.bench.store import seed, write

WRITERS = 64
MESSAGES = WRITERS * 60
ROUNDS = 3
PUBLISH_TIMEOUT = 10.0  # seconds for the listener to publish the last message


def silent(db: Db, events: list[StoreEvent]) -> None:
    """In place of PostgresStore._notify: no NOTIFY in the batch's transaction."""


async def store_rate(url: str, notify: bool) -> float:
    """Messages per second through PostgresStore.add_message from WRITERS coroutines."""
    store = PostgresStore(url)
    if not notify:
        store._notify = silent  # type: ignore[method-assign]
    published = 0

    def count(event: Event) -> None:
        nonlocal published
        published += isinstance(event, MessageAdded)

    store.on_commit = count
    await store.open()
    try:
        threads = await seed(store)
        await asyncio.wait_for(store.listening.wait(), PUBLISH_TIMEOUT)
        before = published
        started = time.perf_counter()
        rate = await write(store, threads, MESSAGES, WRITERS)
        if notify:  # every message comes back by NOTIFY, or the mode measures nothing
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                while published - before < MESSAGES:
                    await asyncio.sleep(0.001)
            took = time.perf_counter() - started
            log(f"    with NOTIFY: {rate:,.0f} msg/s; all published back at {MESSAGES / took:,.0f}")
        else:
            log(f"    without NOTIFY: {rate:,.0f} msg/s")
        return rate
    finally:
        await store.close()


async def run() -> list[Row]:
    log(f"notify: {WRITERS} writers x {MESSAGES // WRITERS} messages; best of {ROUNDS}")
    rates: dict[bool, list[float]] = {True: [], False: []}
    async with contextlib.AsyncExitStack() as stack:
        urls = {
            notify: await stack.enter_async_context(servers.postgres_database())
            for notify in (True, False)
        }
        for _ in range(ROUNDS):
            for notify in (False, True):
                rates[notify].append(await store_rate(urls[notify], notify))
    return [
        Row(
            "postgresql inserts with NOTIFY (msg/s)",
            max(rates[True]),
            "msg/s",
            max(rates[False]),
            at_least_ratio(0.9, "without"),
        )
    ]
