"""What LISTEN/NOTIFY costs the PostgreSQL store: durable inserts with notifications
as they are, versus with the store's `_notify` replaced by a no-op.

As store.py does for SQLite: PostgresStore.add_message from WRITERS concurrent
coroutines (group commit batches them), a message counted once its COMMIT is back.
With notifications, the store's own listener hears each batch and reads its messages
back to publish them, in this process, as in a relay: that work is part of the cost.
Without, nothing is published: no relay could run so; the no-op is patched in here,
in the benchmark only.

Each mode has a fresh schema of its own (so its own notification channel); each round
opens a store on it, starts THREADS new conversations, measures, and closes the store.
After a warm-up round of each, rounds alternate between the modes so noise hits both;
the best of ROUNDS is kept, as noise only ever slows a run down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from dataclasses import dataclass

from relay.models import Event, MessageAdded
from relay.store import Listeners
from relay.store.engine import StoreEvent
from relay.store.postgres import PostgresStore
from relay.store.rows import Db
from tests.bench import servers
from tests.bench.harness import (
    NOISY_OTHERS,
    Machine,
    Row,
    at_least_ratio,
    cpu_by_pid,
    cpu_since,
    log,
)
from tests.bench.store import seed, write

WRITERS = 64
MESSAGES = WRITERS * 60
ROUNDS = 4
PUBLISH_TIMEOUT = 10.0  # seconds for the listener to publish the last message


def silent(db: Db, events: list[StoreEvent]) -> None:
    """In place of PostgresStore._notify: no NOTIFY in the batch's transaction."""


@dataclass(frozen=True)
class Round:
    rate: float  # messages per second
    cpu_us: float  # CPU per message, this process and its PostgreSQL server processes
    others: float  # share of the machine other processes used meanwhile


async def store_rate(url: str, notify: bool) -> Round:
    """Messages per second through PostgresStore.add_message from WRITERS coroutines."""
    published = 0

    def count(event: Event) -> None:
        nonlocal published
        published += isinstance(event, MessageAdded)

    store = PostgresStore(url, Listeners(committed=count))
    if not notify:
        store._notify = silent  # type: ignore[method-assign]
    await store.open()
    try:
        threads = await seed(store)
        await asyncio.wait_for(store.listening.wait(), PUBLISH_TIMEOUT)
        # PostgreSQL's processes serving this store work for us: not noise. Their CPU
        # and ours per message hardly move with noise, unlike the rate, which also
        # waits on the disk (a COMMIT waits for its fsync).
        backends = await servers.postgres_backends(url)
        machine = Machine(*backends)
        cpu = cpu_by_pid([os.getpid(), *backends])
        before = published
        started = time.perf_counter()
        rate = await write(store, threads, MESSAGES, WRITERS)
        if notify:  # every message comes back by NOTIFY, or the mode measures nothing
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                while published - before < MESSAGES:
                    await asyncio.sleep(0.001)
        took = time.perf_counter() - started
        result = Round(rate, cpu_since(cpu) / MESSAGES * 1e6, machine.others())
        log(
            f"    {'with' if notify else 'without'} NOTIFY: {rate:,.0f} msg/s"
            + (f", all published back at {MESSAGES / took:,.0f}/s" if notify else "")
            + f"; CPU {result.cpu_us:.0f} µs per message; others {result.others:.0%}"
        )
        return result
    finally:
        await store.close()


async def run() -> list[Row]:
    log(
        f"notify: {WRITERS} writers x {MESSAGES // WRITERS} messages;"
        f" best of {ROUNDS} after a warm-up round"
    )
    rounds: dict[bool, list[Round]] = {True: [], False: []}
    async with contextlib.AsyncExitStack() as stack:
        urls = {
            notify: await stack.enter_async_context(servers.postgres_schema())
            for notify in (True, False)
        }
        for notify in (False, True):  # warm-up: a new database's first round is slow
            await store_rate(urls[notify], notify)
        for _ in range(ROUNDS):
            for notify in (False, True):
                rounds[notify].append(await store_rate(urls[notify], notify))
    others = statistics.median(r.others for r in (*rounds[True], *rounds[False]))
    return [
        Row(
            "postgresql inserts with NOTIFY (msg/s)",
            max(r.rate for r in rounds[True]),
            "msg/s",
            max(r.rate for r in rounds[False]),
            at_least_ratio(0.9, "without"),
            f"noisy: others {others:.0%}" if others > NOISY_OTHERS else "",
        ),
        Row(
            "  CPU per message, with NOTIFY (µs)",
            statistics.median(r.cpu_us for r in rounds[True]),
            "µs",
            statistics.median(r.cpu_us for r in rounds[False]),
        ),
    ]
