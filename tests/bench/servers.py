"""The servers under test, each in its own process so client and server never share a core's
event loop: the relay (`porch serve`), on SQLite or on a fresh PostgreSQL database, one
process or several on one database, a bare `websockets` echo server as the baseline, and
a bare uvicorn app streaming request bodies to disk for uploads.

Both print one line once their port is bound; we await that line instead of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import httpx

from relay.tokens import Tokens, new_secret_key
from tests.bench.harness import log, process_cpu_seconds

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SITE = "bench"
ORIGIN = "http://bench.example"
START_TIMEOUT = 20.0  # seconds for a server to bind its port
STOP_TIMEOUT = 10.0  # seconds for a graceful exit before SIGKILL
# Far above anything the benchmarks send: they measure the relay, not its rate limits.
UNLIMITED = "1000000"
# The PostgreSQL server the tests use (tests/pg.py); the benchmarks make databases on it.
POSTGRES = os.environ.get("PORCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Server:
    """A running server process: where to reach it and how to read its memory."""

    process: asyncio.subprocess.Process
    port: int
    output: deque[str] = field(default_factory=lambda: deque(maxlen=40))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def rss_kib(self) -> int:
        return proc_status_kib(self.pid, "VmRSS")

    def reset_peak_rss(self) -> None:
        """Start VmHWM (the peak RSS) afresh at the current RSS (proc(5), clear_refs)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def peak_rss_kib(self) -> int:
        """The highest RSS since reset_peak_rss (or since the start): every moment, not
        samples."""
        return proc_status_kib(self.pid, "VmHWM")

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def fd_limit(self) -> int:
        """The server's own soft limit on open files (it inherited ours)."""
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
        raise RuntimeError(f"no open-file limit in /proc/{self.pid}/limits")


@dataclass
class Relay(Server):
    secret_key: str = ""
    data_dir: Path = Path()
    database_url: str = ""  # PostgreSQL's, or "" for SQLite in data_dir
    env: dict[str, str] = field(default_factory=dict)  # its PORCH_* settings and the rest

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/v1/live"

    @property
    def owner_token(self) -> str:
        return Tokens((self.secret_key,)).owner_token(SITE)


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # "VmRSS:   12345 kB"
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def free_port() -> int:
    """A port the kernel just considered free (bind to 0, read it, release it)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def porch_command() -> list[str]:
    """`porch`, from this checkout (cwd=ROOT): the relay measured is the code beside the
    benchmark, even when the venv's editable install points at another checkout."""
    return [sys.executable, "-m", "relay"]


def relay_env(
    secret_key: str, database_url: str = "", settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    # The caller's own PORCH_* settings (a database path, synchronous=NORMAL) would
    # change what is measured: only ours go through.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PORCH_")}
    return {
        **inherited,
        "PORCH_SECRET_KEYS": secret_key,
        "PORCH_LOG_LEVEL": "warning",
        "PORCH_VISITOR_MESSAGES_PER_MINUTE": UNLIMITED,
        "PORCH_IP_MESSAGES_PER_MINUTE": UNLIMITED,
        "PORCH_THREADS_PER_IP_PER_HOUR": UNLIMITED,
        **({"PORCH_DATABASE_URL": database_url} if database_url else {}),
        **(settings or {}),
    }


@contextlib.asynccontextmanager
async def relay(
    database_url: str = "",
    settings: Mapping[str, str] | None = None,
    prepare: Callable[[Path], Awaitable[None]] | None = None,
) -> AsyncIterator[Relay]:
    """A fresh relay with the site `bench` registered, in a temp dir removed afterwards;
    on SQLite in that dir, or on PostgreSQL at `database_url`. `settings`: PORCH_*
    variables on top of the benchmarks' own (a mail server, an app's API). `prepare`:
    given the data dir once the site is registered, before the relay starts (to fill
    its database)."""
    async with relays(1, database_url, settings, prepare) as (only,):
        yield only


@contextlib.asynccontextmanager
async def relays(
    count: int,
    database_url: str = "",
    settings: Mapping[str, str] | None = None,
    prepare: Callable[[Path], Awaitable[None]] | None = None,
) -> AsyncIterator[list[Relay]]:
    """`count` relay processes on one database (the same secret key, so a token from one
    works on all) with the site `bench` registered. Several need PostgreSQL."""
    if count > 1 and not database_url:
        raise ValueError("relay processes share a database only on PostgreSQL")
    secret_key = new_secret_key()
    env = relay_env(secret_key, database_url, settings)
    engine = "postgresql" if database_url else "sqlite"
    with tempfile.TemporaryDirectory(prefix="porch-bench-") as tmp:
        data_dir = Path(tmp)
        await register_site(data_dir, env)
        if prepare is not None:
            await prepare(data_dir)
        async with contextlib.AsyncExitStack() as stack:
            started: list[Relay] = []
            for _ in range(count):
                port = free_port()
                command = [
                    *porch_command(),
                    *("serve", "--port", str(port), "--data-dir", str(data_dir)),
                ]
                process, output = await stack.enter_async_context(
                    _process(command, env, "Porch relay running")
                )
                server = Relay(
                    process,
                    port,
                    output,
                    secret_key=secret_key,
                    data_dir=data_dir,
                    database_url=database_url,
                    env=env,
                )
                await _check_ready(server)
                log(
                    f"  relay ({engine}) pid {server.pid} on port {port}"
                    " (attach `py-spy record --pid` here)"
                )
                started.append(server)
            yield started


@contextlib.asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A database URL whose tables live in a new schema, dropped afterwards (as
    tests/pg.py makes them). Its connections name themselves after the schema
    (application_name), for postgres_backends to find."""
    name = "porch_bench_" + uuid.uuid4().hex[:12]
    try:
        admin = await asyncpg.connect(POSTGRES, timeout=START_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise RuntimeError(f"no PostgreSQL at {POSTGRES} ({error}); set PORCH_TEST_PG") from None
    try:  # folding accents for search needs it; it lives in public for every schema
        await admin.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
        await admin.execute(f"CREATE SCHEMA {name}")
        try:
            query = urlencode({"search_path": f"{name},public", "application_name": name})
            separator = "&" if "?" in POSTGRES else "?"
            yield POSTGRES + separator + query
        finally:
            await admin.execute(f"DROP SCHEMA {name} CASCADE")
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "tests.bench.echo_server", "--port", str(port)]
    async with _process(command, dict(os.environ), "echo server ready") as (process, output):
        yield Server(process, port, output)


@contextlib.asynccontextmanager
async def upload_server(directory: Path) -> AsyncIterator[Server]:
    """The uploads baseline (upload_server.py), writing each request body into `directory`."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "tests.bench.upload_server"),
        *("--port", str(port), "--directory", str(directory)),
    ]
    async with _process(command, dict(os.environ), "upload server ready") as (process, output):
        yield Server(process, port, output)


async def postgres_backends(url: str) -> list[int]:
    """Pids of the PostgreSQL server processes serving the connections made with `url`
    (from postgres_schema, so the relays'): their CPU is the relays' work, not noise."""
    name = parse_qs(urlsplit(url).query)["application_name"][0]
    conn = await asyncpg.connect(POSTGRES, timeout=START_TIMEOUT)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
            " AND backend_type = 'client backend'",
            name,
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


async def register_site(data_dir: Path, env: dict[str, str]) -> None:
    await porch_cli(
        data_dir,
        env,
        *("site", "add", "--name", "Bench", "--origin", ORIGIN),
        *("--owner-email", "o@bench.example", "--id", SITE),
    )


async def porch_cli(data_dir: Path, env: Mapping[str, str], *args: str) -> str:
    """`porch ARGS…` on the relay's data (as an operator runs it); its standard output."""
    process = await asyncio.create_subprocess_exec(
        *porch_command(),
        *args,
        "--data-dir",
        str(data_dir),
        env=dict(env),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    finally:
        await _stop(process)
    if process.returncode != 0:
        said = (err or out).decode(errors="replace").strip()
        raise RuntimeError(f"`porch {' '.join(args[:2])}` failed: {said}")
    return out.decode()


async def _check_ready(server: Server) -> None:
    """The banner means the port is bound; /readyz says the store answers too."""
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        response = await client.get(f"{server.http_url}/readyz")
    if response.status_code != 200:
        raise RuntimeError(f"/readyz answered {response.status_code}: {response.text}")


@contextlib.asynccontextmanager
async def _process(
    command: Sequence[str], env: dict[str, str], ready_line: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, deque[str]]]:
    """Start `command`, wait for a line containing `ready_line`, stop it on exit.

    The output is read for as long as the process lives (a full pipe would block the
    server mid-benchmark); its last lines are kept for error messages.
    """
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: deque[str] = deque(maxlen=40)
    ready = asyncio.Event()
    errors: list[str] = []

    async def read_output() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            output.append(line)
            if ready_line in line:
                ready.set()
            # At log level warning a healthy server prints nothing after its banner.
            if line.startswith(("ERROR", "Traceback")):
                errors.append(line)

    reader = asyncio.create_task(read_output())
    try:
        started = asyncio.create_task(ready.wait())
        await asyncio.wait({started, reader}, timeout=START_TIMEOUT, return_when="FIRST_COMPLETED")
        started.cancel()
        if not ready.is_set():
            last = " | ".join(output) or "no output"
            raise RuntimeError(f"{command[0]} did not start ({last})")
        yield process, output
        if process.returncode is not None:
            raise RuntimeError(f"{command[0]} exited early ({' | '.join(output)})")
    finally:
        await _stop(process)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        if errors:
            log(
                f"  WARNING: the server logged {len(errors)} errors, the last: {' | '.join(output)}"
            )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
