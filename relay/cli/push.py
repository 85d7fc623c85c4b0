"""`porch push keys`: the installation's VAPID public key (relay/push/vapid.py)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from relay.cli.common import load_config, with_store

if TYPE_CHECKING:
    from relay.store import Store


def run_push_keys(args: argparse.Namespace) -> None:
    # Imported here: cryptography loads only for the commands that use it.
    from relay.push.vapid import installation_key

    config = load_config(args)

    async def public_key(store: Store) -> str:
        return (await installation_key(store)).public_key

    print(with_store(config, public_key))
