"""What every `porch` command shares: settings, the store, one-line errors.

`porch --help` and the everyday commands must start fast (tests/test_cli_startup.py,
tests/bench/cli.py): the relay app, uvicorn, asyncpg, the mail stack and the like are
imported inside the commands that use them, never at the top of relay/cli/ modules."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from relay.config import FIELDS, Config, env_var
from relay.errors import CommandError, ConfigError, StoreUnavailable

if TYPE_CHECKING:
    from relay.store import Store

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
    import asyncio
    import sqlite3

    from relay.store import open_store

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


async def free_site_id(store: Store, name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:36].strip("-") or "site"
    candidate, n = base, 2
    while await store.get_site(candidate) is not None:
        candidate, n = f"{base}-{n}", n + 1
    return candidate
