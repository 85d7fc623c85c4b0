"""Test helpers: running a real relay in a thread, HTTP and WebSocket clients."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import socket
import threading
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from relay.app import create_app
from relay.config import Config
from relay.conversations import Conversations
from relay.conversations.notify import NotificationPolicy
from relay.models import Site
from relay.store import Store, open_store
from relay.tokens import Tokens, new_secret_key
from tests.fakes.dns_server import FakeDns

T = TypeVar("T")
# Debian's Chromium; without the networking flags it keeps calling Google's hosts,
# which this machine refuses.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_TIMEOUT = 10.0  # seconds; a relay not up by then has failed
SECRET = new_secret_key()
ALPHA_ORIGIN = "https://alpha.example"
BETA_ORIGIN = "https://beta.example"
ALPHA = Site(
    id="alpha",
    name="Alpha Bakery",
    owner_emails=("owner@alpha.example",),
    origins=(ALPHA_ORIGIN,),
    settings={"greeting": "Hello!", "language": "en"},
)
BETA = Site(
    id="beta",
    name="Beta Plumbing",
    owner_emails=("owner@beta.example",),
    origins=(BETA_ORIGIN,),
    settings={"language": "fr"},
)


# What a site without hours, texts or replies yet tells visitors about availability.
NO_AVAILABILITY = {
    "online": False,
    "open": True,
    "has_hours": False,
    "next_open": None,
    "reply_seconds": None,
    "reply_source": None,
    "away_text": "",
    "away_texts": {},
    "timezone": "UTC",
    "zone_names": {"en": "UTC", "fr": "UTC"},
}


def talk(store: Store, notify: NotificationPolicy | None = None) -> Conversations:
    """The one write path over a store a test opened itself (no relay around it)."""
    return Conversations(store, notify=notify)


def relay_config(tmp_path: Path, **overrides: Any) -> Config:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "secret_keys": (SECRET,),
        "log_level": "warning",
        "sqlite_synchronous": "NORMAL",
    }
    values.update(overrides)
    return Config.load({}, **values)


def seed_sites(config: Config, sites: Iterable[Site]) -> None:
    async def seed() -> None:
        store = open_store(config)
        await store.open()
        for site in sites:
            await store.add_site(site, replace=True)
        await store.close()

    run_sync(seed)


def run_sync(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to the end from sync code, even inside an async test's loop."""
    results: list[T] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(work())))
    thread.start()
    thread.join()
    if not results:
        raise RuntimeError("the coroutine failed; see the traceback above")
    return results[0]


# Servers under test listen below Linux's ephemeral range (32768-60999), which every
# outgoing connection draws its local port from: a port picked there, released and bound
# again by a child process a moment later (free_port) could meanwhile be some client's,
# and the server fail with "address already in use".
SERVER_PORTS = range(10_000, 32_768)


def free_socket() -> socket.socket:
    # Named TCP (not proto 0): asyncio sets TCP_NODELAY only then, and without it each
    # keep-alive response written in two parts waits ~40 ms for a delayed ACK.
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", random.choice(SERVER_PORTS)))
        except OSError:  # taken: by another test process, or a server of this one
            sock.close()
            continue
        return sock


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()  # where the app and its store live
        await super().startup(sockets)
        self.ready.set()


@dataclass
class RunningRelay:
    config: Config
    server: _Server
    thread: threading.Thread
    tokens: Tokens = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = Tokens(self.config.secret_keys)

    @property
    def url(self) -> str:
        return self.config.base_url

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/live"

    @property
    def services(self) -> Any:
        """The running app's shared services (the store, the mailer, ...)."""
        return self.server.config.app.state.services

    async def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Await a coroutine on the relay's own loop (its store's methods, say)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.server.loop))

    def owner_token(self, site: str = "alpha") -> str:
        return self.tokens.owner_token(site)

    def client(self, origin: str | None = ALPHA_ORIGIN) -> httpx.AsyncClient:
        headers = {"origin": origin} if origin else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    def db(self) -> Any:
        """A separate connection to the relay's database for assertions (either engine;
        `with relay.db() as db:` closes it)."""
        from tests.pg import open_database

        return open_database(self.config.database_url, self.config.database_path)

    def counts(self) -> dict[str, int]:
        with self.db() as conn:
            return {
                table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("sites", "visitors", "threads", "messages")
            }

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


_QUIET_DNS: FakeDns | None = None


def quiet_dns() -> str:
    """A DNS server that knows no name ("127.0.0.1:PORT"), one per test process: relays
    under test check the senders of mail against it, never against the machine's
    resolver (which may be slow, or absent). Tests about those checks start their own."""
    global _QUIET_DNS
    if _QUIET_DNS is None:
        _QUIET_DNS = FakeDns()
        _QUIET_DNS.start()
    return _QUIET_DNS.address


def start_relay(config: Config) -> RunningRelay:
    sock = free_socket()
    port = sock.getsockname()[1]
    dns = config.dns_servers or (quiet_dns(),)
    config = Config.load({}, **{**config.__dict__, "port": port, "dns_servers": dns})
    server = _Server(
        uvicorn.Config(
            create_app(config),
            log_level=config.log_level,
            ws_max_size=config.ws_max_frame_bytes,
            ws_per_message_deflate=False,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    if not server.ready.wait(STARTUP_TIMEOUT) or not server.started:
        server.should_exit = True
        raise RuntimeError(f"the relay failed to start within {STARTUP_TIMEOUT} s")
    return RunningRelay(config, server, thread)


# -- clients -----------------------------------------------------------------------


async def start_thread(
    client: httpx.AsyncClient, body: str = "Hello", site: str = "alpha", **extra: Any
) -> dict[str, Any]:
    response = await client.post(f"/v1/sites/{site}/threads", json={"body": body, **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def tampered(token: str) -> str:
    """A signed token (or a URL ending in one) with one byte of its signature flipped:
    never valid. Replacing its last characters instead can land on the same bytes, one
    time in a thousand: the last base64 character carries padding bits."""
    head, _, signature = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0xFF
    return f"{head}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@dataclass
class Live:
    """A live socket after hello: what was replayed, and a way to read what follows."""

    ws: ClientConnection
    replayed: list[dict[str, Any]]
    ready: dict[str, Any]

    async def next(self, kind: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame (of `kind`, skipping others)."""
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if kind is None or frame["type"] == kind:
                return frame  # type: ignore[no-any-return]

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))


async def open_live(
    relay: RunningRelay, token: str, since: int = 0, origin: str | None = ALPHA_ORIGIN
) -> Live:
    return await open_live_url(relay.ws_url, token, since, origin)


async def open_live_url(
    url: str, token: str, since: int = 0, origin: str | None = ALPHA_ORIGIN
) -> Live:
    """A live socket after hello, with what the relay replayed before "ready"."""
    ws = await connect(url, origin=origin, compression=None)  # type: ignore[arg-type]
    await ws.send(json.dumps({"type": "hello", "token": token, "since": since}))
    replayed = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame["type"] == "ready":
            return Live(ws, replayed, frame)
        if frame["type"] == "message":
            replayed.append(frame["message"])


# -- `porch` as a subprocess ------------------------------------------------------------


def porch_env(data_dir: Path, **settings: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PORCH_")}
    env.update(
        {
            "PORCH_SECRET_KEYS": SECRET,
            "PORCH_DATA_DIR": str(data_dir),
            "PORCH_LOG_LEVEL": "warning",
            "PORCH_DNS_SERVERS": quiet_dns(),
        }
    )
    env.update({f"PORCH_{k.upper()}": v for k, v in settings.items()})
    return env


def make_idle(relay: RunningRelay, days: int) -> None:
    """The site keeps conversations `days` days; every thread was last active in 2020."""
    with relay.db() as db:
        db.execute("UPDATE threads SET updated_at = '2020-01-01T00:00:00.000Z'")
        settings = json.loads(
            db.execute("SELECT settings FROM sites WHERE id = 'alpha'").fetchone()[0]
        )
        db.execute(
            "UPDATE sites SET settings = ? WHERE id = 'alpha'",
            (json.dumps({**settings, "retention_days": days}),),
        )


def relay_env(relay: RunningRelay) -> dict[str, str]:
    """porch_env for CLI commands against this relay's database, whichever engine."""
    url = relay.config.database_url
    return porch_env(relay.config.data_dir, **({"database_url": url} if url else {}))


def porch_command() -> list[str]:
    import sys

    return [sys.executable, "-m", "relay"]


def add_site(env: dict[str, str], site: Site = ALPHA) -> None:
    """Register `site` with `porch site add`, as an operator would."""
    import subprocess

    subprocess.run(
        [*porch_command(), "site", "add", "--id", site.id, "--name", site.name]
        + [arg for origin in site.origins for arg in ("--origin", origin)]
        + [arg for email in site.owner_emails for arg in ("--owner-email", email)],
        env=env,
        check=True,
        capture_output=True,
    )


class PorchProcess:
    """`porch serve` in a child process, ready once it prints its banner."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    @classmethod
    async def start(cls, env: dict[str, str], port: int) -> PorchProcess:
        process = await asyncio.create_subprocess_exec(
            *porch_command(),
            "serve",
            "--port",
            str(port),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        output = []
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                while True:
                    line = (await process.stdout.readline()).decode()
                    output.append(line)
                    if not line:
                        raise RuntimeError("porch serve exited:\n" + "".join(output))
                    if line.startswith("Porch relay running"):
                        break
        except TimeoutError:
            process.kill()
            raise RuntimeError(
                f"porch serve did not start within {STARTUP_TIMEOUT} s:\n" + "".join(output)
            ) from None
        # Keep draining its output so a chatty relay never blocks on a full pipe.
        asyncio.get_running_loop().create_task(process.stdout.read())
        return cls(process, f"http://127.0.0.1:{port}")

    async def kill(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown, no flush, nothing
        await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


def free_port() -> int:
    with free_socket() as sock:
        return int(sock.getsockname()[1])
