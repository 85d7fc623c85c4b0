"""What every `porch` command shares: settings, the store, one-line errors, serving."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import re
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn

from relay.config import FIELDS, Config, env_var
from relay.demo import setup as demo
from relay.errors import CommandError, ConfigError, StoreUnavailable
from relay.inputs import normalize_origin
from relay.store import Store, open_store
from relay.tokens import new_secret_key

DEMO_SITE = "demo"
DEMO_OWNER = "owner@dupont.example"
DEMO_REPLY_DOMAIN = "reply.dupont.localhost"
DEMO_NOTIFY_DELAY = 3  # seconds: the demo mailbox fills while the visitor watches
SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$")
SECRET_FILE = "secret_key"  # inside the demo's data dir
LOG_FORMAT = "%(levelname)-9s %(name)s: %(message)s"


def load_config(args: argparse.Namespace, *, demo_key: bool = True) -> Config:
    """Settings from env and flags. Commands other than `serve` also use the key that
    `porch demo` keeps in its data dir, so `porch reply` works against the demo."""
    overrides = {name: getattr(args, f"setting_{name}", None) for name in FIELDS}
    config = Config.load(os.environ, **overrides)
    demo_key_file = config.data_dir / SECRET_FILE
    if demo_key and not config.secret_keys and demo_key_file.exists():
        config = dataclasses.replace(config, secret_keys=(demo_key_file.read_text().strip(),))
    return config


def with_store(config: Config, work: Callable[[Store], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        store = open_store(config)
        try:
            await store.open()
        except (OSError, sqlite3.Error, StoreUnavailable) as error:
            where = "--database-url" if config.database_url else "--data-dir or --database"
            raise CommandError(f"cannot open the database {store}: {error} ({where})") from None
        try:
            return await work(store)
        except ValueError as error:  # the store's refusals, e.g. a site id taken meanwhile
            raise CommandError(str(error)) from None
        finally:
            await store.close()

    return asyncio.run(run())


# -- helpers ------------------------------------------------------------------------


def require_secret(config: Config) -> None:
    if not config.secret_keys:
        raise ConfigError(
            f"{env_var('secret_keys')} is not set: make a key with `porch keygen` and run "
            f"`export {env_var('secret_keys')}=<key>` (comma-separate older keys after it)"
        )


def demo_secret(data_dir: Path) -> str:
    """The demo's own key, made once and kept (0600) so tokens survive restarts."""
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = new_secret_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


def demo_origins(config: Config) -> tuple[str, ...]:
    origin = normalize_origin(config.base_url)
    also = origin.replace("://127.0.0.1", "://localhost")
    return tuple(dict.fromkeys((origin, also)))


def free_port() -> int:
    """A port nobody listens on right now (the demo's internal mail servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def free_site_id(store: Store, name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:36].strip("-") or "site"
    candidate, n = base, 2
    while await store.get_site(candidate) is not None:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


class _Server(uvicorn.Server):
    """uvicorn's server, printing our banner once the port is really bound."""

    banner = ""

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.banner:
            print(self.banner, flush=True)


def serve(
    config: Config,
    *,
    site_dir: Path | None = None,
    banner: str = "",
    demo_setup: demo.Setup | None = None,
) -> None:
    from relay.app import create_app  # keeps `porch keygen` and `--help` fast

    # uvicorn configures only its own loggers; ours (porch.mail, porch.inbound, …) too.
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT)
    app = create_app(config, site_dir=site_dir, demo_setup=demo_setup)
    server = _Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            ws_max_size=config.ws_max_frame_bytes,
            # Per-message deflate costs ~300 KiB per socket; chat frames are tiny.
            ws_per_message_deflate=False,
            proxy_headers=bool(config.forwarded_allow_ips),
            forwarded_allow_ips=config.forwarded_allow_ips or None,
            lifespan="on",
        )
    )
    server.banner = banner or f"Porch relay running: {config.base_url}/"
    server.run()
    if not server.started:
        raise CommandError(
            f"could not start on {config.host}:{config.port} (is the port in use? try --port)"
        )
