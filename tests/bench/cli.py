"""CLI start-up (issue 20): the import time of `porch --help`, `porch site list` and
`porch mail inspect FILE`, run as an operator runs them (the `porch` script of the venv),
against `python -c pass` in the same rounds. Target ≤ 150 ms each.

Import time is what `-X importtime` reports (PYTHONPROFILEIMPORTTIME=1): the sum of every
module's own time, the interpreter's start-up modules included, as the baseline's are.
The process's wall time is shown beside it, for context. Modules load from compiled
bytecode, as in an installed porch: the warm-up round writes it to a temporary
PYTHONPYCACHEPREFIX (a checkout run with PYTHONDONTWRITEBYTECODE would compile every
relay module on every start, ~50 ms more).
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.harness import Machine, Row, at_most, log, noisy

ROUNDS = 15  # after one warm-up round, which also writes the .pyc files and the database
TARGET_MS = 150
EMAIL = Path(__file__).resolve().parents[1] / "mail" / "corpus" / "apple_mail_macos_en.eml"
PORCH = Path(sys.executable).parent / "porch"  # the console script pip installed

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "porch --help": [str(PORCH), "--help"],
    "porch site list": [str(PORCH), "site", "list"],
    "porch mail inspect": [str(PORCH), "mail", "inspect", str(EMAIL)],
}
BASELINE = "python -c pass"


def import_ms(stderr: str) -> float:
    """The total of `-X importtime`'s self column ("import time: self | cumulative | name")."""
    total = 0
    for line in stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            total += int(line.removeprefix("import time:").split("|")[0])
    return total / 1000


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(import ms, wall ms) of one run; raises if the command failed."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    wall = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-500:]}")
    return import_ms(done.stderr), wall


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rounds(env: dict[str, str]) -> tuple[dict[str, list[float]], dict[str, list[float]], float]:
    """Every command once per round, in turn, so a noisy moment hits all of them; and
    the share of the machine others took meanwhile."""
    imports: dict[str, list[float]] = {name: [] for name in COMMANDS}
    walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():  # warm-up
        measure(command, env)
    machine, started, children = Machine(), time.monotonic(), children_cpu_seconds()
    for _ in range(ROUNDS):
        for name, command in COMMANDS.items():
            spent, wall = measure(command, env)
            imports[name].append(spent)
            walls[name].append(wall)
    # The commands run as children of this process: their CPU time is ours too.
    capacity = (time.monotonic() - started) * (os.cpu_count() or 1)
    ours = (children_cpu_seconds() - children) / capacity
    return imports, walls, max(0.0, machine.others() - ours)


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="porch-bench-cli-") as temp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORCH_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            PORCH_DATA_DIR=str(Path(temp) / "data"),
            PYTHONPYCACHEPREFIX=str(Path(temp) / "pycache"),
            PYTHONPROFILEIMPORTTIME="1",
        )
        imports, walls, others = await asyncio.to_thread(rounds, env)
    note = noisy([others])
    base, base_wall = statistics.median(imports[BASELINE]), statistics.median(walls[BASELINE])
    rows = []
    for name in COMMANDS:
        if name == BASELINE:
            continue
        ours = statistics.median(imports[name])
        fastest = min(imports[name])
        log(f"cli: {name}: import {ours:.1f} ms (fastest {fastest:.1f}), baseline {base:.1f}")
        rows.append(
            Row(f"{name}: import time (ms)", ours, "ms", base, at_most(TARGET_MS, "ms"), note)
        )
        rows.append(
            Row(f"  {name}: wall time (ms)", statistics.median(walls[name]), "ms", base_wall)
        )
    return rows
