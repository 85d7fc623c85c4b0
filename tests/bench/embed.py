"""What the embed script costs a page before anyone touches the chat: main-thread time
(Chromium's TaskDuration, median over LOADS cold loads) against the same page without
the snippet, and the bytes the widget transfers before interaction. Then the full UI on a
CPU throttled like a mid-range phone (4x): loading the embed and opening the panel,
against a bare shadow-DOM button on the same page, and the click-to-composer time."""

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


# Chromium's CPU throttling for a mid-range phone (Lighthouse's mobile preset: 4x).
PHONE_THROTTLING = 4
PHONE_LOADS = 8
# In the page: click the chat button, and the time until the composer shows (one frame
# after it is laid out).
OPEN_FULL_UI = """async () => {
  const root = document.querySelector('porch-chat').shadowRoot;
  const start = performance.now();
  root.querySelector('.launcher').click();
  await new Promise((done) => {
    const shown = () => root.querySelector('textarea')?.offsetParent;
    const look = () => (shown() ? done() : requestAnimationFrame(look));
    look();
  });
  await new Promise((done) => requestAnimationFrame(done));
  return performance.now() - start;
}"""


async def phone_load(browser: Browser, url: str, full_ui: bool) -> tuple[float, float]:
    """Main-thread ms of one cold load on a 4x-throttled CPU (the full UI opened, for the
    embed), and the ms from the click to the composer shown (0 for the bare button)."""
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": PHONE_THROTTLING})
    await cdp.send("Performance.enable")
    await page.goto(url, wait_until="load")
    opened = 0.0
    if url.endswith(("/embedded", "/floor")):
        await page.locator(".launcher").wait_for()
    if full_ui:
        opened = float(await page.evaluate(OPEN_FULL_UI))
    await page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    await context.close()
    return metrics["TaskDuration"] * 1000, opened


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
                phone_blank, phone_floor, phone_full, click_to_ui = [], [], [], []
                for _ in range(PHONE_LOADS):
                    phone_blank.append((await phone_load(browser, f"{pages_url}/blank", False))[0])
                    phone_floor.append((await phone_load(browser, f"{pages_url}/floor", False))[0])
                    ms, opened = await phone_load(browser, f"{pages_url}/embedded", True)
                    phone_full.append(ms)
                    click_to_ui.append(opened)
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
            f"full UI on a {PHONE_THROTTLING}x-throttled phone (ms)",
            statistics.median(phone_full) - statistics.median(phone_blank),
            "ms",
            statistics.median(phone_floor) - statistics.median(phone_blank),
            note="main-thread time added to a blank page: loading the embed and opening the "
            "panel, vs loading a bare shadow-DOM button",
        ),
        Row(
            "  click to composer shown, throttled (ms)",
            statistics.median(click_to_ui),
            "ms",
            note="the conversation UI fetched and drawn on the click",
        ),
        Row(
            "embed bytes before interaction",
            statistics.median(transferred) / 1024,
            "KiB",
            target=at_most(4, "KiB"),
        ),
    ]
