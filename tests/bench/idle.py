"""Idle visitors: how many open, idle visitor sockets one relay holds while others talk,
what each costs in memory, and whether the talk stays fast; on SQLite and PostgreSQL.

Per engine, one relay: IDLE + ACTIVE conversations are started over HTTP, then ACTIVE
visitors send RATE messages per second in all, open loop (latency.py's scheduler),
to one owner socket, for DURATION seconds: the quiet run, the baseline. Then IDLE more
visitor sockets connect (hello → ready, BATCH at a time) and stay silent, and the same
traffic runs again: the p99 of that, visitor send → owner socket, is the result. The
relay's RSS (VmRSS) is read just before and just after the idle sockets connect: its
growth ÷ IDLE is the memory per socket, beside the echo server's for as many sockets.

All clients are coroutines of this one process (the `websockets` library on asyncio),
sharing the machine's two cores with the relay; idle sockets cost it no CPU.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

from relay.config import Config
from tests.bench import clients, servers
from tests.bench.harness import (
    NOISY_OTHERS,
    Machine,
    Row,
    at_least,
    at_most,
    log,
    percentile,
)
from tests.bench.latency import LATE_LIMIT, Probe, paced, probe_id
from tests.bench.memory import check_fd_limit, echo_growth

FRAMES_PER_MINUTE = Config.ws_frames_per_minute  # a live socket's frames a minute, by default

# Issue 20's 20,000 connected visitors, less what this machine's open-file limit leaves
# no room for: 20,000 a process, which a process here cannot raise (`ulimit -Hn`), for
# the sockets, the relay's database and the clients' own files.
IDLE = 19_000
ACTIVE = 50  # visitors who talk meanwhile, one thread each
RATE = 200.0  # messages per second, all active visitors together
DURATION = 10.0  # seconds of traffic, before and again with the idle sockets
COUNT = int(RATE * DURATION)
BATCH = 100  # idle sockets connecting at once
P99_MS = 50.0
# Per active socket: the hello, a warm-up message, and both runs within a minute.
assert 2 * COUNT // ACTIVE + 2 < FRAMES_PER_MINUTE  # the relay's per-socket cap


@dataclass(frozen=True)
class Result:
    quiet: Probe  # the traffic before the idle sockets came
    busy: Probe  # the same traffic with them
    held: int  # idle sockets still open after the traffic
    kib_per_socket: float
    note: str


async def traffic(
    probe: Probe, active: Sequence[ClientConnection], tag: str, pids: Sequence[int]
) -> float:
    """COUNT messages at RATE; the share of the machine others than this process and
    `pids` (the relay, its PostgreSQL server processes) used meanwhile."""
    machine = Machine(*pids)
    await paced(probe, active, tag, 0, COUNT, RATE)
    return machine.others()


async def measure(engine: str, database_url: str = "") -> Result:
    async with servers.relay(database_url) as relay:
        check_fd_limit(relay, IDLE)
        started = time.perf_counter()
        tokens = await clients.seed_conversations(relay, ACTIVE + 1 + IDLE)
        took = time.perf_counter() - started
        log(f"  {engine}: {len(tokens)} conversations written to its database in {took:.1f} s")
        active = await clients.visitors(relay, tokens[:ACTIVE])
        owner = await clients.owner(relay)
        quiet, busy = Probe(), Probe()
        probe = quiet
        idle: list[ClientConnection] = []

        def on_message(message: dict[str, Any], now: float) -> None:
            probe.arrived(probe_id(message), now)

        try:
            async with asyncio.TaskGroup() as group:
                readers = [
                    group.create_task(clients.read_messages(owner, on_message)),
                    *(group.create_task(clients.drain(ws)) for ws in active),
                ]
                try:
                    await paced(quiet, active, "warm", 0, ACTIVE, RATE)
                    quiet.reset()
                    pids = [relay.pid]
                    if database_url:  # its connections are open by now
                        pids += await servers.postgres_backends(database_url)
                    others = [await traffic(quiet, active, "quiet", pids)]
                    # One socket first, so one-time costs are not charged to the idle ones.
                    await clients.close_all(await clients.visitors(relay, tokens[ACTIVE:][:1]))
                    before = relay.rss_kib()
                    started = time.perf_counter()
                    idle = await clients.visitors(relay, tokens[ACTIVE + 1 :], batch=BATCH)
                    took = time.perf_counter() - started
                    after = relay.rss_kib()
                    log(
                        f"  {engine}: {len(idle)} idle sockets ready in {took:.1f} s;"
                        f" RSS {before:,} KiB → {after:,} KiB"
                    )
                    probe = busy
                    others.append(await traffic(busy, active, "busy", pids))
                    held = sum(ws.state is State.OPEN for ws in idle)
                finally:
                    for task in readers:
                        task.cancel()
        finally:
            await clients.close_all([*active, owner, *idle])
    for name, run, share in (("quiet", quiet, others[0]), (f"{IDLE} idle", busy, others[1])):
        late = percentile(run.lateness, 0.99) * 1000
        log(
            f"  {engine}, {name}: {len(run.latencies)} messages at {run.achieved_rate:.0f}/s;"
            f" p50 {run.ms(0.5):.2f} ms, p99 {run.ms(0.99):.2f} ms, max {run.ms(1):.2f} ms;"
            f" scheduler late p99 {late:.2f} ms; others {share:.0%}"
        )
    return Result(quiet, busy, held, (after - before) / IDLE, noise(quiet, busy, others))


def noise(quiet: Probe, busy: Probe, others: list[float]) -> str:
    reasons = []
    if any(percentile(run.lateness, 0.99) > LATE_LIMIT for run in (quiet, busy)):
        reasons.append("client late")
    if max(others) > NOISY_OTHERS:
        reasons.append(f"others {max(others):.0%}")
    return "noisy: " + ", ".join(reasons) if reasons else ""


async def run() -> list[Row]:
    log(
        f"idle: {IDLE} idle visitor sockets on one relay while {ACTIVE} visitors send"
        f" {RATE:g} msg/s for {DURATION:g} s, before and with them; sqlite, postgresql"
    )
    sqlite = await measure("sqlite")
    async with servers.postgres_schema() as url:
        postgres = await measure("postgresql", url)
    echo = await echo_growth(IDLE)
    rows = []
    for engine, result in (("sqlite", sqlite), ("postgresql", postgres)):
        rows += [
            Row(
                f"idle: p99 with {IDLE:,} idle, {engine} (ms)",
                result.busy.ms(0.99),
                "ms",
                result.quiet.ms(0.99),
                at_most(P99_MS, "ms"),
                result.note,
            ),
            Row(
                f"  idle sockets held, {engine}",
                result.held,
                "sockets",
                target=at_least(IDLE, "sockets"),
            ),
            Row(f"  RSS per idle socket, {engine} (KiB)", result.kib_per_socket, "KiB", echo),
        ]
    return rows
