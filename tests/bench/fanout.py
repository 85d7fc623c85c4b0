"""Fan-out across relay processes: the delivered rate and visitor → owner latency at
RATE messages per second over THREADS visitor threads, in three set-ups of one run:

- sqlite: one relay on SQLite, the default engine, and the baseline of every row;
- postgresql: one relay on PostgreSQL;
- 2 relays: two relay processes on one PostgreSQL database, the visitors on relay A
  and the owner's socket on relay B, so every message crosses processes: A commits
  it, PostgreSQL NOTIFYs both relays, B reads it back from the database and sends it.

Open loop, with latency.py's scheduler: message i is sent at its planned time whatever
the relays do, round-robin over the visitors' sockets; latency runs from just before
the send to the arrival on the owner's socket, one clock. All relays stay up and the
set-ups take turns in SLICES, so a noisy moment on the shared machine lands on each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from relay.config import Config
from tests.bench import clients, servers
from tests.bench.harness import (
    NOISY_OTHERS,
    Machine,
    Row,
    at_most,
    cpu_by_pid,
    cpu_since,
    log,
    percentile,
)
from tests.bench.latency import LATE_LIMIT, Probe, paced, probe_id

FRAMES_PER_MINUTE = Config.ws_frames_per_minute  # a live socket's frames a minute, by default

RATE = 1000.0  # messages per second, all visitors together
THREADS = 500  # one visitor socket each
DURATION = 10.0  # seconds of measured sending per set-up
SLICES = 5
COUNT = int(RATE * DURATION)
PER_SLICE = COUNT // SLICES
CROSS_P99_MS = 20.0  # target for the cross-process tail
# Per socket: one warm-up message, COUNT / THREADS measured ones, the hello.
assert COUNT // THREADS + 2 < FRAMES_PER_MINUTE  # the relay's per-socket cap


@dataclass
class Setup:
    """Relays on one database; visitors on the first, the owner on the last."""

    name: str
    relays: list[servers.Relay]
    database_url: str = ""  # PostgreSQL's; "" for SQLite, inside the relay
    visitors: list[ClientConnection] = field(default_factory=list)
    owner: ClientConnection | None = None
    probe: Probe = field(default_factory=Probe)
    backends: list[int] = field(default_factory=list)  # PostgreSQL's processes for the relays
    cpu_seconds: float = 0.0  # relays and their database, in the measured slices
    delivering: float = 0.0  # seconds from each slice's first send to its last arrival
    # Visitor send → ack (committed), to tell the write from the fan-out. An ack may come
    # after the owner's copy, which takes the send time out of the probe: keep it here.
    acks: list[float] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)

    async def connect(self) -> None:
        tokens = await clients.seed_conversations(self.relays[0], THREADS)
        self.visitors = await clients.visitors(self.relays[0], tokens)
        self.owner = await clients.owner(self.relays[-1])

    def on_message(self, message: dict[str, Any], now: float) -> None:
        client_id = probe_id(message) or ""
        if client_id in self.probe.sent:
            self.sent_at[client_id] = self.probe.sent[client_id]
        self.probe.arrived(client_id, now)

    def on_ack(self, client_id: str, now: float) -> None:
        sent = self.probe.sent.get(client_id) or self.sent_at.pop(client_id, None)
        if sent is not None:
            self.acks.append(now - sent)

    async def read_acks(self, ws: ClientConnection) -> None:
        """A visitor's socket: acks timed, their own messages dropped, errors raised."""
        async for raw in ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            if frame["type"] == "ack":
                self.on_ack(frame["client_id"], now)
            elif frame["type"] == "error":
                raise RuntimeError(f"the relay refused a frame: {frame}")

    async def find_backends(self) -> None:
        if self.database_url:
            self.backends = await servers.postgres_backends(self.database_url)

    def pids(self) -> list[int]:
        return [*(relay.pid for relay in self.relays), *self.backends]

    def reset(self) -> None:
        self.probe.reset()
        self.acks.clear()
        self.sent_at.clear()

    async def slice(self, n: int) -> None:
        cpu = cpu_by_pid(self.pids())
        began = time.perf_counter()
        await paced(self.probe, self.visitors, "run", n * PER_SLICE, PER_SLICE, RATE)
        self.delivering += self.probe.last_arrival - began
        self.cpu_seconds += cpu_since(cpu)

    @property
    def delivered_rate(self) -> float:
        return len(self.probe.latencies) / self.delivering

    @property
    def cpu_us(self) -> float:
        """CPU per message of the relays and their database, microseconds."""
        return self.cpu_seconds / len(self.probe.latencies) * 1e6

    def ack_ms(self, fraction: float) -> float:
        return percentile(self.acks, fraction) * 1000

    def late(self) -> bool:
        return percentile(self.probe.lateness, 0.99) > LATE_LIMIT

    def describe(self) -> None:
        probe = self.probe
        late = percentile(probe.lateness, 0.99) * 1000
        log(
            f"  {self.name}: {len(probe.latencies)} messages sent at {probe.achieved_rate:.0f}/s,"
            f" delivered at {self.delivered_rate:.0f}/s; to the owner p50 {probe.ms(0.5):.2f} ms,"
            f" p99 {probe.ms(0.99):.2f} ms, max {probe.ms(1):.2f} ms; ack (committed) p50"
            f" {self.ack_ms(0.5):.2f} ms, p99 {self.ack_ms(0.99):.2f} ms; CPU"
            f" {self.cpu_us:.0f} µs per message ({len(self.relays)} relay,"
            f" {len(self.backends)} database processes);"
            f" scheduler late p99 {late:.2f} ms"
        )


async def measure(setups: list[Setup]) -> float:
    """Warm up, then the measured slices in turns; the share of the machine others used."""
    for setup in setups:
        await setup.connect()
    sockets = [ws for setup in setups for ws in (*setup.visitors, setup.owner) if ws is not None]
    try:
        async with asyncio.TaskGroup() as group:
            readers = []
            for setup in setups:
                assert setup.owner is not None
                readers.append(
                    group.create_task(clients.read_messages(setup.owner, setup.on_message))
                )
                # Visitors are sent acks and their own messages: read them, or buffers fill.
                readers += [group.create_task(setup.read_acks(ws)) for ws in setup.visitors]
            try:
                for setup in setups:  # a message per visitor: first statements, caches
                    await paced(setup.probe, setup.visitors, "warm", 0, THREADS, RATE)
                    setup.reset()
                    await setup.find_backends()  # every connection is open by now
                machine = Machine(*(pid for setup in setups for pid in setup.pids()))
                for n in range(SLICES):
                    for setup in setups:
                        await setup.slice(n)
                others = machine.others()
            finally:
                for task in readers:
                    task.cancel()
    finally:
        await clients.close_all(sockets)
    return others


async def run() -> list[Row]:
    log(
        f"fanout: {RATE:g} msg/s over {THREADS} visitor threads for {DURATION:g} s per set-up,"
        f" in {SLICES} turns; sqlite, postgresql, 2 relays on postgresql (owner on the second)"
    )
    async with contextlib.AsyncExitStack() as stack:
        one_url = await stack.enter_async_context(servers.postgres_schema())
        two_url = await stack.enter_async_context(servers.postgres_schema())
        sqlite = Setup("sqlite", await stack.enter_async_context(servers.relays(1)))
        postgres = Setup(
            "postgresql", await stack.enter_async_context(servers.relays(1, one_url)), one_url
        )
        cross = Setup(
            "2 relays", await stack.enter_async_context(servers.relays(2, two_url)), two_url
        )
        others = await measure([sqlite, postgres, cross])
    for setup in (sqlite, postgres, cross):
        setup.describe()
    log(f"  others used {others:.0%} of the machine")

    def note(*setups: Setup) -> str:
        reasons = ["client late"] if any(setup.late() for setup in setups) else []
        if others > NOISY_OTHERS:
            reasons.append(f"others {others:.0%}")
        return "noisy: " + ", ".join(reasons) if reasons else ""

    base = sqlite.probe
    return [
        Row(
            "fanout: delivered, postgresql (msg/s)",
            postgres.delivered_rate,
            "msg/s",
            sqlite.delivered_rate,
        ),
        Row(
            "fanout: delivered, 2 relays (msg/s)",
            cross.delivered_rate,
            "msg/s",
            sqlite.delivered_rate,
        ),
        Row("fanout: p50, postgresql (ms)", postgres.probe.ms(0.5), "ms", base.ms(0.5)),
        Row(
            "fanout: p99, postgresql (ms)",
            postgres.probe.ms(0.99),
            "ms",
            base.ms(0.99),
            note=note(sqlite, postgres),
        ),
        Row("fanout: p50, 2 relays (ms)", cross.probe.ms(0.5), "ms", base.ms(0.5)),
        Row(
            "fanout: p99, 2 relays (ms)",
            cross.probe.ms(0.99),
            "ms",
            base.ms(0.99),
            at_most(CROSS_P99_MS, "ms"),
            note(sqlite, cross),
        ),
        Row("fanout: max, 2 relays (ms)", cross.probe.ms(1), "ms", base.ms(1)),
        # Send → ack: the commit alone, on the visitors' relay; the rest is the fan-out.
        Row("  ack p99, postgresql (ms)", postgres.ack_ms(0.99), "ms", sqlite.ack_ms(0.99)),
        Row("  ack p99, 2 relays (ms)", cross.ack_ms(0.99), "ms", sqlite.ack_ms(0.99)),
        # PostgreSQL's work for the relays counts: SQLite's is inside the relay process.
        Row("  CPU per message, postgresql (µs)", postgres.cpu_us, "µs", sqlite.cpu_us),
        Row("  CPU per message, 2 relays (µs)", cross.cpu_us, "µs", sqlite.cpu_us),
        Row("fanout: achieved send rate", cross.probe.achieved_rate, "msg/s", base.achieved_rate),
    ]
