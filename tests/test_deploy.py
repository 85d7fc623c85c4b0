"""The reverse proxy configurations of the README's "Deploy", run for real in front of
`porch serve`: HTTP and both WebSockets pass, and each visitor keeps their own address
for the rate limits, whatever X-Forwarded-For they send. Each proxy's test runs where
it is installed (`apt-get install nginx-light caddy`) and is skipped elsewhere."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import (
    ALPHA,
    ALPHA_ORIGIN,
    STARTUP_TIMEOUT,
    PorchProcess,
    add_site,
    free_port,
    porch_env,
)

README = Path(__file__).resolve().parent.parent / "README.md"
CREATED = 201
RATE_LIMITED = 429
CLOSED_SIGNED_OUT = 4401  # the inbox socket of someone not signed in
# Loopback addresses other than the proxy's own: two visitors as the proxy sees them.
VISITOR_A = "127.0.0.2"
VISITOR_B = "127.0.0.3"


def readme_block(language: str) -> str:
    return README.read_text(encoding="utf-8").split(f"```{language}\n", 1)[1].split("```", 1)[0]


def substitute(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"the README's configuration no longer has {old!r}"
        text = text.replace(old, new)
    return text


@dataclass
class Proxy:
    url: str
    process: asyncio.subprocess.Process


async def run_nginx(tmp_path: Path, port: int, relay_port: int) -> asyncio.subprocess.Process:
    """The README's server blocks in a minimal nginx.conf, one process, files in tmp."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=chat.example.com", "-keyout", "key.pem", "-out", "cert.pem"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    servers = substitute(
        readme_block("nginx"),
        {
            "listen 80;": f"listen 127.0.0.1:{free_port()};",
            "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
            "/etc/letsencrypt/live/chat.example.com/fullchain.pem": str(tmp_path / "cert.pem"),
            "/etc/letsencrypt/live/chat.example.com/privkey.pem": str(tmp_path / "key.pem"),
            "127.0.0.1:8000": f"127.0.0.1:{relay_port}",
        },
    )
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = tmp_path / "nginx.conf"
    config.write_text(
        f"daemon off;\nmaster_process off;\npid {tmp_path / 'nginx.pid'};\n"
        f"error_log {tmp_path / 'error.log'} warn;\nevents {{}}\n"
        f"http {{\n    access_log off;\n{temp_paths}\n{servers}\n}}\n"
    )
    command = ["nginx", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    return await asyncio.create_subprocess_exec(*command)


async def run_caddy(tmp_path: Path, port: int, relay_port: int) -> asyncio.subprocess.Process:
    """The README's Caddyfile over plain HTTP (no certificate authority to ask here)."""
    site = substitute(
        readme_block("caddyfile"),
        {
            "chat.example.com {": f"http://127.0.0.1:{port} {{",
            "127.0.0.1:8000": f"127.0.0.1:{relay_port}",
        },
    )
    config = tmp_path / "Caddyfile"
    config.write_text("{\n\tadmin off\n}\n" + site)
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    command = ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"]
    return await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


PROXIES = {"nginx": ("https", run_nginx), "caddy": ("http", run_caddy)}


@pytest.fixture(params=list(PROXIES))
async def proxy(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Proxy]:
    name = request.param
    scheme, run = PROXIES[name]
    if not shutil.which(name) or (name == "nginx" and not shutil.which("openssl")):
        pytest.skip(f"{name} is not installed")
    port, relay_port = free_port(), free_port()
    url = f"{scheme}://127.0.0.1:{port}"
    env = porch_env(
        tmp_path / "data",
        forwarded_allow_ips="127.0.0.1",  # the proxy, as the README says
        public_url=url,
        threads_per_ip_per_hour="1",
    )
    add_site(env)
    relay = await PorchProcess.start(env, relay_port)
    process = await run(tmp_path, port, relay_port)
    try:
        await wait_until_it_answers(url, process)
        yield Proxy(url, process)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        await relay.stop()


async def wait_until_it_answers(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(verify=False, timeout=1) as client:
        for _ in range(int(STARTUP_TIMEOUT * 10)):
            assert process.returncode is None, "the proxy exited"
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the proxy did not answer within {STARTUP_TIMEOUT} s")


def client_from(proxy: Proxy, address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address, verify=False)
    return httpx.AsyncClient(
        base_url=proxy.url, transport=transport, headers={"origin": ALPHA_ORIGIN}, timeout=10
    )


def no_verification() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def start_from(proxy: Proxy, address: str, **headers: str) -> httpx.Response:
    async with client_from(proxy, address) as client:
        return await client.post(
            f"/v1/sites/{ALPHA.id}/threads", json={"body": "Hello"}, headers=headers
        )


async def test_the_readme_proxy_config_passes_sockets_and_visitor_addresses(
    proxy: Proxy,
) -> None:
    started = await start_from(proxy, VISITOR_A)
    assert started.status_code == CREATED, started.text
    assert (await start_from(proxy, VISITOR_A)).status_code == RATE_LIMITED
    assert (await start_from(proxy, VISITOR_B)).status_code == CREATED
    spoofed = await start_from(proxy, VISITOR_A, **{"x-forwarded-for": "198.51.100.7"})
    assert spoofed.status_code == RATE_LIMITED

    ws_url = proxy.url.replace("http", "ws", 1)
    tls = no_verification() if ws_url.startswith("wss:") else None
    async with connect(f"{ws_url}/v1/live", origin=ALPHA_ORIGIN, ssl=tls) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello", "token": started.json()["token"]}))
        await ws.send(json.dumps({"type": "send", "body": "through the proxy", "client_id": "p-1"}))
        while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "ack":
            pass
    # Upgraded and handed to the relay, which closes it: nobody is signed in.
    with pytest.raises(ConnectionClosed) as closed:
        async with connect(f"{ws_url}/inbox/live", origin=proxy.url, ssl=tls) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"type": "hello"}))
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSED_SIGNED_OUT
