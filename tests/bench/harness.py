"""What every benchmark shares: result rows, targets, the table, percentiles, limits."""

from __future__ import annotations

import contextlib
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    """A goal on the ratio to the baseline (`of_ratio`) or on our number itself."""

    at_most: bool  # True: ours must be <= value; False: >= value
    value: float
    of_ratio: bool
    text: str  # how the table shows it, e.g. "≥ 0.6× echo"

    def met(self, ours: float, ratio: float | None) -> bool | None:
        measured = ratio if self.of_ratio else ours
        if measured is None or math.isnan(measured):
            return None
        return measured <= self.value if self.at_most else measured >= self.value


def at_least_ratio(value: float, baseline: str) -> Target:
    return Target(at_most=False, value=value, of_ratio=True, text=f"≥ {value:g}× {baseline}")


def at_least(value: float, unit: str) -> Target:
    return Target(at_most=False, value=value, of_ratio=False, text=f"≥ {value:,g} {unit}")


def at_most(value: float, unit: str) -> Target:
    return Target(at_most=True, value=value, of_ratio=False, text=f"≤ {value:g} {unit}")


@dataclass(frozen=True)
class Row:
    """One line of the table. `baseline` is measured in the same run, never remembered."""

    name: str
    ours: float
    unit: str
    baseline: float | None = None
    target: Target | None = None
    note: str = ""  # shown after the verdict, e.g. why the run may not be trusted

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.ours / self.baseline

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "—"
        met = self.target.met(self.ours, self.ratio)
        return "n/a" if met is None else ("met" if met else "MISSED")


@dataclass(frozen=True)
class Failed:
    """A benchmark that could not finish: shown in the table instead of its rows."""

    name: str
    error: str


def number(value: float | None, unit: str = "") -> str:
    if value is None or math.isnan(value):
        return "—"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def table(rows: Sequence[Row | Failed]) -> str:
    header = ("benchmark", "ours", "baseline", "ratio", "target", "result")
    lines: list[tuple[str, ...]] = [header]
    for row in rows:
        if isinstance(row, Failed):
            lines.append((row.name, "error", "—", "—", "—", row.error[:60]))
            continue
        ratio = row.ratio
        lines.append(
            (
                row.name,
                number(row.ours, row.unit),
                number(row.baseline, row.unit),
                "—" if ratio is None else f"{ratio:.2f}×",
                row.target.text if row.target else "—",
                f"{row.verdict} ({row.note})" if row.note else row.verdict,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    # Names left-aligned, numbers right-aligned so digits line up.
    align = ("<", ">", ">", ">", "<", "<")
    out = []
    for n, line in enumerate(lines):
        cells = [f"{cell:{a}{w}}" for cell, a, w in zip(line, align, widths, strict=True)]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def raise_fd_limit(needed: int) -> int:
    """Lift this process's open-file limit to the hard limit; children inherit it.

    Returns the new soft limit; raises if even the hard limit is below `needed`.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed * 2)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise RuntimeError(
            f"the open-file limit is {target} (hard); {needed} are needed: raise `ulimit -Hn`"
        )
    return target


# Past this share of the machine used by other processes, a result is flagged noisy.
NOISY_OTHERS = 0.15


def noisy(others: Iterable[float]) -> str:
    """A row's note when other processes took more than NOISY_OTHERS of the machine
    (the median over its rounds), else ''."""
    share = statistics.median(others)
    return f"noisy: others {share:.0%}" if share > NOISY_OTHERS else ""


class Machine:
    """How much of the machine others took while we measured.

    /proc/stat counts every CPU's busy and stolen time; what our processes used
    (this client and the server `pids`) is taken out, the rest is noise: other
    processes, or the hypervisor giving our cores to someone else.
    """

    def __init__(self, *pids: int) -> None:
        self._ours = cpu_by_pid((os.getpid(), *pids))
        self._busy, self._time = self._busy_seconds(), time.monotonic()

    @staticmethod
    def _busy_seconds() -> float:
        # cpu  user nice system idle iowait irq softirq steal ...
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
        return busy / os.sysconf("SC_CLK_TCK")

    def others(self) -> float:
        """Share of all cores used by others since creation, 0..1."""
        busy = self._busy_seconds() - self._busy
        ours = cpu_since(self._ours)
        capacity = (time.monotonic() - self._time) * (os.cpu_count() or 1)
        return max(0.0, busy - ours) / capacity if capacity else 0.0


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a whole process (all its threads) so far."""
    # /proc/PID/stat: the command may hold spaces, so count fields after its ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """CPU time so far of each of `pids` still running."""
    seconds = {}
    for pid in pids:
        # A PostgreSQL server process ends with its connection (a relay reconnecting).
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            seconds[pid] = process_cpu_seconds(pid)
    return seconds


def cpu_since(before: dict[int, float]) -> float:
    """CPU time the processes of `before` (cpu_by_pid) used since, but those that ended
    meanwhile, whose last reading is lost."""
    now = cpu_by_pid(before)
    return sum(now[pid] - before[pid] for pid in now)


def log(text: str) -> None:
    """Progress and details go to stderr; stdout carries only the table."""
    print(text, file=sys.stderr, flush=True)
