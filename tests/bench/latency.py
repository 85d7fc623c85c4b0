"""Latency: visitor → owner at a steady RATE spread over SOCKETS visitor threads.

Open loop: a scheduler sends message i at start + i/RATE whatever the replies do, so
a slow relay shows up as latency instead of slowing the senders down (coordinated
omission). Latency is from just before the visitor's send to the frame's arrival on
the owner's socket; both ends live in this process and share its clock.

Baseline: the same schedule against the echo server, each frame timed until its echo
is back on the sending socket (one hop in, one hop out, like visitor → relay → owner).

The tail of a 10 s run on a shared machine says as much about the machine as about
the server, so the two runs are cut into SLICES and interleaved (relay, echo, relay,
...): a noisy moment lands on both, and the baseline's tail shows how noisy it was.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from relay.config import Config
from tests.bench import clients, servers
from tests.bench.harness import NOISY_OTHERS, Machine, Row, at_most, log, percentile

FRAMES_PER_MINUTE = Config.ws_frames_per_minute  # a live socket's frames a minute, by default

RATE = 500.0  # messages per second, all sockets together
SOCKETS = 100
DURATION = 10.0  # seconds of measured sending, per server
SLICES = 5  # each server's run is cut into this many, alternating with the other's
COUNT = int(RATE * DURATION)
PER_SLICE = COUNT // SLICES
DRAIN_TIMEOUT = 10.0  # seconds for the last messages to arrive after the last send
# Past this, a run is flagged noisy: the client could not keep its own schedule (its
# loop was starved, so the tail measures the machine), as when others take the cores.
LATE_LIMIT = 0.002  # seconds, p99 of how late the scheduler sent
assert COUNT // SOCKETS + 1 < FRAMES_PER_MINUTE  # the relay's per-socket cap


# A probe's body names it: the owner's socket does not see a visitor's client_id (it
# is the visitor's secret), so the body is what the arrival is known by.
PROBE_BODY = "latency probe "


def probe_id(message: dict[str, Any]) -> str | None:
    """The probe a message on the owner's socket is (None: not a probe)."""
    body = message.get("body") or ""
    return body.removeprefix(PROBE_BODY) if body.startswith(PROBE_BODY) else None


@dataclass
class Probe:
    """Send times by probe id (the client_id, also in the body), and the latencies of
    those that arrived."""

    sent: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)  # how late the scheduler sent
    spans: list[tuple[int, float]] = field(default_factory=list)  # (messages, seconds)
    last_arrival: float = 0.0  # perf_counter() when the latest probe arrived
    goal: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, more: int) -> None:
        self.goal += more
        self.done.clear()

    def arrived(self, client_id: str | None, now: float) -> None:
        started = self.sent.pop(client_id or "", None)
        if started is None:
            return  # not a probe (the thread's first message)
        self.latencies.append(now - started)
        self.last_arrival = now
        if len(self.latencies) >= self.goal:
            self.done.set()

    def reset(self) -> None:
        """Forget the warm-up."""
        self.latencies.clear()
        self.lateness.clear()
        self.spans.clear()
        self.goal = 0

    @property
    def achieved_rate(self) -> float:
        sent = sum(count - 1 for count, _ in self.spans)  # intervals, not messages
        seconds = sum(span for _, span in self.spans)
        return sent / seconds if seconds > 0 else float("nan")

    def ms(self, fraction: float) -> float:
        return percentile(self.latencies, fraction) * 1000


async def paced(
    probe: Probe,
    sockets: Sequence[ClientConnection],
    tag: str,
    first: int,
    count: int,
    rate: float = RATE,
) -> None:
    """Send `count` frames round-robin over `sockets` at `rate` per second, on schedule,
    then wait until all have arrived."""
    probe.expect(count)
    loop = asyncio.get_running_loop()
    start = loop.time()
    began = time.perf_counter()
    for i in range(first, first + count):
        due = start + (i - first) / rate
        if (delay := due - loop.time()) > 0:
            # Sleep until the planned time, not for a fixed step: lateness never adds up.
            await asyncio.sleep(delay)
        cid = f"{tag}-{i}"
        frame = clients.dumps({"type": "send", "body": PROBE_BODY + cid, "client_id": cid})
        now = time.perf_counter()
        probe.lateness.append(loop.time() - due)
        probe.sent[cid] = now
        await sockets[i % len(sockets)].send(frame)
    probe.spans.append((count, time.perf_counter() - began))
    async with asyncio.timeout(DRAIN_TIMEOUT):
        await probe.done.wait()


async def echoes(ws: ClientConnection, probe: Probe) -> None:
    async for raw in ws:
        now = time.perf_counter()
        probe.arrived(json.loads(raw)["client_id"], now)


async def measure(relay: servers.Relay, echo: servers.Server) -> tuple[Probe, Probe, float]:
    """Both probes, and the share of the machine others used meanwhile."""
    tokens = await clients.start_threads(relay, SOCKETS)
    visitors = await clients.visitors(relay, tokens)
    owner = await clients.owner(relay)
    echo_url = f"ws://{servers.HOST}:{echo.port}/"
    echo_sockets = [await clients.open_socket(echo_url) for _ in range(SOCKETS)]
    ours, base = Probe(), Probe()

    def on_message(message: dict[str, Any], now: float) -> None:
        ours.arrived(probe_id(message), now)

    try:
        async with asyncio.TaskGroup() as group:
            readers = [
                group.create_task(clients.read_messages(owner, on_message)),
                # Visitors are sent acks and their own messages: read them, or buffers fill.
                *(group.create_task(clients.drain(ws)) for ws in visitors),
                *(group.create_task(echoes(ws, base)) for ws in echo_sockets),
            ]
            try:
                await paced(ours, visitors, "warm", 0, SOCKETS)
                await paced(base, echo_sockets, "warm", 0, SOCKETS)
                ours.reset()
                base.reset()
                machine = Machine(relay.pid, echo.pid)
                for n in range(SLICES):
                    await paced(ours, visitors, "run", n * PER_SLICE, PER_SLICE)
                    await paced(base, echo_sockets, "run", n * PER_SLICE, PER_SLICE)
                others = machine.others()
            finally:
                for task in readers:
                    task.cancel()
    finally:
        await clients.close_all([*visitors, owner, *echo_sockets])
    return ours, base, others


def describe(name: str, probe: Probe) -> None:
    late = [x * 1000 for x in probe.lateness]
    log(
        f"  {name}: {len(probe.latencies)} messages at {probe.achieved_rate:.0f}/s; latency "
        f"p50 {probe.ms(0.5):.2f} ms, p99 {probe.ms(0.99):.2f} ms, max {probe.ms(1):.2f} ms;"
        f" scheduler late p99 {percentile(late, 0.99):.2f} ms, max {max(late):.2f} ms"
    )


def noise(probe: Probe, others: float) -> str:
    """Why this run's tail may say more about the machine than about the relay."""
    reasons = []
    if percentile(probe.lateness, 0.99) > LATE_LIMIT:
        reasons.append("client late")
    if others > NOISY_OTHERS:
        reasons.append(f"others {others:.0%}")
    return "noisy: " + ", ".join(reasons) if reasons else ""


async def run() -> list[Row]:
    log(
        f"latency: {RATE:g} msg/s over {SOCKETS} sockets for {DURATION:g} s per server, "
        f"in {SLICES} alternating slices"
    )
    async with servers.relay() as relay, servers.echo_server() as echo:
        ours, base, others = await measure(relay, echo)
    describe("relay", ours)
    describe("echo", base)
    log(f"  others used {others:.0%} of the machine")
    return [
        Row("latency p50 (ms)", ours.ms(0.5), "ms", base.ms(0.5)),
        Row(
            "latency p99 (ms)",
            ours.ms(0.99),
            "ms",
            base.ms(0.99),
            at_most(10, "ms"),
            noise(ours, others),
        ),
        Row("latency max (ms)", ours.ms(1), "ms", base.ms(1)),
        Row("latency: achieved rate", ours.achieved_rate, "msg/s", base.achieved_rate),
    ]
