"""Run Porch's benchmarks and print one table (see tests/bench/README.md).

    cd /work/main && .venv/bin/python -m tests.bench.run [--only NAME,...]

Progress and details go to stderr, the table to stdout. Exit status 1 if a benchmark
could not run; a missed target is a result, not a failure (exit 0), unless --strict.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
from collections.abc import Awaitable, Callable

from tests.bench import (
    answers,
    apps,
    cli,
    embed,
    fanout,
    idle,
    latency,
    memory,
    notify,
    search,
    store,
    store_size,
    throughput,
    trimmer,
    uploads,
)
from tests.bench.harness import Failed, Row, log, raise_fd_limit, table

# name → (benchmark, seconds it may take before it is cancelled)
BENCHMARKS: dict[str, tuple[Callable[[], Awaitable[list[Row]]], float]] = {
    "throughput": (throughput.run, 60),
    "latency": (latency.run, 60),
    "fanout": (fanout.run, 120),
    "store": (store.run, 60),
    "store_size": (store_size.run, 150),
    "notify": (notify.run, 60),
    "search": (search.run, 90),
    "memory": (memory.run, 90),
    "idle": (idle.run, 600),
    "embed": (embed.run, 90),
    "apps": (apps.run, 120),
    "uploads": (uploads.run, 120),
    "answers": (answers.run, 180),
    "trimmer": (trimmer.run, 60),
    "cli": (cli.run, 120),
}


async def main(names: list[str]) -> list[Row | Failed]:
    # Thousands of sockets on each side; the servers inherit the raised limit.
    raise_fd_limit(max(2 * memory.SOCKETS, idle.IDLE) + 900)
    rows: list[Row | Failed] = []
    for name in names:
        run, limit = BENCHMARKS[name]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                rows += await run()
        except Exception as error:  # one broken benchmark must not hide the others
            cause = first_cause(error)
            traceback.print_exception(cause)
            reason = "timed out" if isinstance(cause, TimeoutError) else str(cause)
            rows.append(Failed(name, f"{type(cause).__name__}: {reason}"))
        log(f"{name}: {time.perf_counter() - started:.1f} s")
    return rows


def first_cause(error: BaseException) -> BaseException:
    """The first real error inside (nested) task groups: dozens of sockets failing
    the same way would otherwise print dozens of identical tracebacks."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def cli() -> None:
    parser = argparse.ArgumentParser(description="Porch benchmarks.")
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; expected {', '.join(BENCHMARKS)}")
    started = time.perf_counter()
    rows = asyncio.run(main(names))
    print(table(rows))
    log(f"total: {time.perf_counter() - started:.1f} s")
    failed = any(isinstance(row, Failed) for row in rows)
    missed = any(isinstance(row, Row) and row.verdict == "MISSED" for row in rows)
    sys.exit(1 if failed or (args.strict and missed) else 0)


if __name__ == "__main__":
    cli()
