"""What the embed script costs a page before anyone touches the chat: main-thread time
(Chromium's TaskDuration, median over LOADS cold loads) against the same page without
the snippet, and the bytes the widget transfers before interaction."""

from __future__ import annotations

import socket
import statistics
import threading
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

import uvicorn
from playwright.async_api import Browser, async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.bench.harness import Row, at_most, log
from tests.support import (
    ALPHA,
    CHROMIUM,
    CHROMIUM_ARGS,
    free_socket,
    relay_config,
    seed_sites,
    start_relay,
)

LOADS = 20
PAGE = (
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Blank</title></head>"
    "<body><h1>A blank page</h1>{snippet}</body></html>"
)


# The least any chat bubble costs: one fixed round button in a shadow root and nothing
# else. What the engine charges for that is the floor under every embed.
FLOOR_JS = """
const host = document.createElement('div');
document.body.append(host);
const root = host.attachShadow({mode: 'open'});
const sheet = new CSSStyleSheet();
sheet.replaceSync(':host{position:fixed;right:20px;bottom:20px}'
  + 'button{width:56px;height:56px;border:0;border-radius:50%;background:#2f3a45}');
root.adoptedStyleSheets = [sheet];
const button = document.createElement('button');
button.className = 'launcher';
root.append(button);
"""


class _Pages(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: object = None) -> None:
        await super().startup(sockets)  # type: ignore[arg-type]
        self.ready.set()


def page_server(relay: str, sock: socket.socket) -> tuple[_Pages, threading.Thread]:
    snippet = f'<script src="{relay}/widget.js" data-site="alpha" async></script>'

    async def blank(request: Request) -> Response:
        return HTMLResponse(PAGE.format(snippet=""))

    async def embedded(request: Request) -> Response:
        return HTMLResponse(PAGE.format(snippet=snippet))

    async def floor(request: Request) -> Response:
        return HTMLResponse(PAGE.format(snippet='<script src="/floor.js" async></script>'))

    async def floor_js(request: Request) -> Response:
        return Response(FLOOR_JS, media_type="text/javascript")

    app = Starlette(
        routes=[
            Route("/blank", blank),
            Route("/embedded", embedded),
            Route("/floor", floor),
            Route("/floor.js", floor_js),
            Route("/favicon.ico", lambda r: Response(status_code=204)),
        ]
    )
    server = _Pages(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    if not server.ready.wait(10):
        raise RuntimeError("the page server did not start within 10 s")
    return server, thread


async def load(browser: Browser, url: str, relay: str, embedded: bool) -> tuple[float, int]:
    """Main-thread ms and bytes from the relay, for one cold load (fresh context)."""
    context = await browser.new_context()
    page = await context.new_page()
    responses = []
    page.on("response", lambda response: responses.append(response))
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    await page.goto(url, wait_until="load")
    if embedded:
        await page.locator(".launcher").wait_for()
    # The same end point for both pages: two frames painted after everything is in.
    await page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    relay_bytes = 0
    for response in responses:
        if response.url.startswith(relay):
            sizes = await response.request.sizes()
            relay_bytes += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    await context.close()
    return metrics["TaskDuration"] * 1000, relay_bytes


async def run() -> list[Row]:
    with TemporaryDirectory() as tmp:
        config = relay_config(Path(tmp), log_level="warning")
        sock = free_socket()
        pages_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        seed_sites(config, [replace(ALPHA, origins=(pages_url,))])
        relay = start_relay(config)
        pages, pages_thread = page_server(relay.url, sock)
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                blank, floor, embedded, transferred = [], [], [], []
                for _ in range(LOADS):  # interleaved, so noise hits all alike
                    blank.append((await load(browser, f"{pages_url}/blank", relay.url, False))[0])
                    floor.append((await load(browser, f"{pages_url}/floor", relay.url, True))[0])
                    ms, size = await load(browser, f"{pages_url}/embedded", relay.url, True)
                    embedded.append(ms)
                    transferred.append(size)
                await browser.close()
        finally:
            relay.stop()
            pages.should_exit = True
            pages_thread.join(10)
    base = statistics.median(blank)
    added = statistics.median(embedded) - base
    floor_added = statistics.median(floor) - base
    log(
        f"embed: blank {base:.1f} ms, bare shadow button {statistics.median(floor):.1f} ms, "
        f"with embed {statistics.median(embedded):.1f} ms, bytes {sorted(set(transferred))}"
    )
    return [
        Row(
            "embed main-thread time (ms)",
            added,
            "ms",
            base,
            at_most(5, "ms"),
            note="ours = added to a blank page; baseline = the blank page",
        ),
        Row(
            "  vs a bare shadow-DOM button",
            added,
            "ms",
            floor_added,
            note="baseline = what one fixed shadow button adds",
        ),
        Row(
            "embed bytes before interaction",
            statistics.median(transferred) / 1024,
            "KiB",
            target=at_most(4, "KiB"),
        ),
    ]
