"""Latency: visitor → owner at a steady RATE spread over SOCKETS visitor threads.

Open loop: a scheduler sends message i at start + i/RATE whatever the replies do, so
a slow relay shows up as latency instead of slowing the senders down (coordinated
omission). Latency is from just before the visitor's send to the frame's arrival on
the owner's socket; both ends live in this process and share its clock.

Baseline: the same schedule against the echo server, each frame timed until its echo
is back on the sending socket (one hop in, one hop out, like visitor → relay → owner).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from relay.live import FRAMES_PER_MINUTE
from tests.bench import clients, servers
from tests.bench.harness import Row, at_most, log, percentile

RATE = 500.0  # messages per second, all sockets together
SOCKETS = 100
DURATION = 10.0  # seconds of the measured run
WARMUP = SOCKETS  # one message per socket first, not measured
COUNT = int(RATE * DURATION)
DRAIN_TIMEOUT = 10.0  # seconds for the last messages to arrive after the last send
assert COUNT // SOCKETS + 1 < FRAMES_PER_MINUTE  # the relay's fixed per-socket cap


@dataclass
class Probe:
    """Send times by client_id, and the latencies of those that arrived."""

    expected: int
    sent: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    send_times: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)  # how late the scheduler sent
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def arrived(self, client_id: str | None, now: float) -> None:
        started = self.sent.pop(client_id or "", None)
        if started is None:
            return  # not one of this run's messages (the thread's first, or warm-up)
        self.latencies.append(now - started)
        if len(self.latencies) == self.expected:
            self.done.set()

    @property
    def achieved_rate(self) -> float:
        span = self.send_times[-1] - self.send_times[0]
        return (len(self.send_times) - 1) / span if span > 0 else float("nan")


async def paced(probe: Probe, sockets: Sequence[ClientConnection], tag: str, count: int) -> None:
    """Send `count` frames round-robin over `sockets` at RATE, on schedule, then wait
    until all have arrived."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        due = start + i / RATE
        if (delay := due - loop.time()) > 0:
            # Sleep until the planned time, not for a fixed step: lateness never adds up.
            await asyncio.sleep(delay)
        cid = f"{tag}-{i}"
        frame = clients.dumps({"type": "send", "body": f"latency probe {i}", "client_id": cid})
        now = time.perf_counter()
        probe.lateness.append(loop.time() - due)
        probe.send_times.append(now)
        probe.sent[cid] = now
        await sockets[i % len(sockets)].send(frame)
    async with asyncio.timeout(DRAIN_TIMEOUT):
        await probe.done.wait()


async def measure(
    sockets: Sequence[ClientConnection],
    readers: Callable[[Probe], list[Coroutine[Any, Any, None]]],
) -> Probe:
    """A warm-up then the measured run, with `readers` feeding each probe."""
    result = Probe(COUNT)
    for probe, tag, count in ((Probe(WARMUP), "warm", WARMUP), (result, "run", COUNT)):
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(reader) for reader in readers(probe)]
            try:
                await paced(probe, sockets, tag, count)
            finally:
                for task in tasks:
                    task.cancel()
    return result


async def relay_latency() -> Probe:
    async with servers.relay() as relay:
        tokens = await clients.start_threads(relay, SOCKETS)
        visitors = await clients.visitors(relay, tokens)
        owner = await clients.owner(relay)
        try:

            def readers(probe: Probe) -> list[Coroutine[Any, Any, None]]:
                def on_message(message: dict[str, Any], now: float) -> None:
                    probe.arrived(message.get("client_id"), now)

                # Visitors are sent acks and their own messages: read them, or buffers fill.
                drains = [clients.drain(ws) for ws in visitors]
                return [clients.read_messages(owner, on_message), *drains]

            return await measure(visitors, readers)
        finally:
            await clients.close_all([*visitors, owner])


async def echo_latency() -> Probe:
    async with servers.echo_server() as server:
        url = f"ws://{servers.HOST}:{server.port}/"
        sockets = [await clients.open_socket(url) for _ in range(SOCKETS)]
        try:

            def readers(probe: Probe) -> list[Coroutine[Any, Any, None]]:
                async def echoes(ws: ClientConnection) -> None:
                    async for raw in ws:
                        now = time.perf_counter()
                        probe.arrived(json.loads(raw)["client_id"], now)

                return [echoes(ws) for ws in sockets]

            return await measure(sockets, readers)
        finally:
            await clients.close_all(sockets)


def describe(name: str, probe: Probe) -> None:
    ms = [x * 1000 for x in probe.latencies]
    late = [x * 1000 for x in probe.lateness]
    log(
        f"  {name}: {len(ms)} messages at {probe.achieved_rate:.0f}/s; latency p50 "
        f"{percentile(ms, 0.5):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, max {max(ms):.2f} ms;"
        f" scheduler late p99 {percentile(late, 0.99):.2f} ms, max {max(late):.2f} ms"
    )


async def run() -> list[Row]:
    log(f"latency: {RATE:g} msg/s over {SOCKETS} sockets for {DURATION:g} s")
    ours = await relay_latency()
    describe("relay", ours)
    base = await echo_latency()
    describe("echo", base)

    def ms(probe: Probe, fraction: float) -> float:
        return percentile(probe.latencies, fraction) * 1000

    return [
        Row("latency p50 (ms)", ms(ours, 0.5), "ms", ms(base, 0.5)),
        Row("latency p99 (ms)", ms(ours, 0.99), "ms", ms(base, 0.99), at_most(10, "ms")),
        Row("latency max (ms)", ms(ours, 1.0), "ms", ms(base, 1.0)),
        Row("latency: achieved rate", ours.achieved_rate, "msg/s", base.achieved_rate),
    ]
