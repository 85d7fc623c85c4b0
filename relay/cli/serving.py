"""Running the relay for `porch serve` and `porch demo`: uvicorn and the whole app, so
only those two commands import this module (the others start without them)."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import uvicorn

from relay.app import create_app
from relay.cli.common import LOG_FORMAT, SECRET_FILE
from relay.config import Config
from relay.demo import setup as demo
from relay.errors import CommandError
from relay.inputs import normalize_origin
from relay.tokens import new_secret_key


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
