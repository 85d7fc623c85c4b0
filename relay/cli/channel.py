"""`porch channel add|list|remove`: a site's accounts on messaging apps. Secrets are
given as flags or, out of the process list and shell history, as PORCH_CHANNEL_<NAME>
variables (PORCH_CHANNEL_BOT_TOKEN…; a flag wins); kept by the store, never printed."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from relay.channels.apps import OPTIONS, SECRETS
from relay.cli.common import load_config, with_store
from relay.errors import CommandError, PorchError

# The apps' code (httpx, each provider) loads only for these commands: see common.py.
if TYPE_CHECKING:
    from relay.store import Store


def secret_variable(name: str) -> str:
    """The environment variable `porch channel add` reads a secret option from."""
    return f"PORCH_CHANNEL_{name.upper()}"


def channel_options(kind: str, args: argparse.Namespace) -> dict[str, str]:
    """The app's options from the flags, a secret from its variable when not flagged;
    CommandError naming both ways for any missing."""
    options: dict[str, str] = {}
    missing: list[str] = []
    for name in OPTIONS[kind]:
        value = getattr(args, name, None) or ""
        if not value.strip() and name in SECRETS:
            value = os.environ.get(secret_variable(name), "")
        if not value.strip():
            flag = f"--{name.replace('_', '-')}"
            missing.append(f"{flag} (or {secret_variable(name)})" if name in SECRETS else flag)
        options[name] = value
    if missing:
        raise CommandError(f"{kind} needs {', '.join(missing)}")
    return options


def run_channel_add(args: argparse.Namespace) -> None:
    from relay.channels.apps.accounts import add_channel, describe

    config = load_config(args)
    options = channel_options(args.kind, args)

    async def add(store: Store) -> dict[str, object]:
        try:
            channel = await add_channel(store, config, args.site, args.kind, options, args.template)
        except PorchError as error:
            raise CommandError(error.message) from None
        return describe(config, channel)

    print(json.dumps(with_store(config, add), indent=2))


def run_channel_list(args: argparse.Namespace) -> None:
    from relay.channels.apps.accounts import describe

    config = load_config(args)

    async def listed(store: Store) -> list[dict[str, object]]:
        if await store.get_site(args.site) is None:
            raise CommandError(f"no site {args.site!r} (see `porch site list`)")
        return [describe(config, channel) for channel in await store.app_channels(args.site)]

    print(json.dumps(with_store(config, listed), indent=2))


def run_channel_remove(args: argparse.Namespace) -> None:
    from relay.channels.apps.accounts import remove_channel

    config = load_config(args)

    async def removed(store: Store) -> bool:
        return await remove_channel(store, config, args.site, args.channel)

    if not with_store(config, removed):
        raise CommandError(f"site {args.site!r} has no channel {args.channel!r}")
    print(f"Removed {args.channel}: its conversations stay in the inbox.")
