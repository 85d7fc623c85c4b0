"""'Notify me here when they answer' in Chromium: offered after the first message on a
site that serves /porch-sw.js (one importScripts line to the relay), never on one that
does not (the relay checks the file: the page never asks its own origin for it, so no
404 on its console); the worker registers at its own scope, /porch-push/. Headless
Chromium has no push service, so subscribing fails there: the widget says so and keeps
nothing. The worker's own handlers are run with a stand-in for `self` (a page cannot
receive a push)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.e2e.conftest import UNLIMITED, _PageServer
from tests.e2e.pages import PAGE
from tests.e2e.test_widget import STORED_VISITOR, open_and_send
from tests.support import (
    ALPHA,
    STARTUP_TIMEOUT,
    RunningRelay,
    free_socket,
    relay_config,
    seed_sites,
    start_relay,
)

OFFER = "Notify me here when they answer"
BOX = "porch-chat .push"
NOTICE = "porch-chat .notice"
# Playwright's contexts are incognito ones, where Chromium has no Push API and says so
# on the console itself as a page subscribes (with no way for the page to know before).
INCOGNITO = "Chrome currently does not support the Push API in incognito mode"


@dataclass
class Site:
    """A relay, and the business's site on another origin, with or without the worker."""

    relay: RunningRelay
    origin: str
    serves_worker: bool = True
    pushes: list[str] = field(default_factory=list)  # requests to /v1/thread/push
    asked: list[str] = field(default_factory=list)  # requests the site got for its worker

    def rows(self) -> int:
        with self.relay.db() as db:
            return int(db.execute("SELECT COUNT(*) FROM push_subscriptions").fetchone()[0])


def site_app(site: Site) -> Starlette:
    async def page(request: Request) -> Response:
        return HTMLResponse(
            PAGE.format(
                lang="en", title="Alpha Bakery", head="", body="", relay=site.relay.url, extra=""
            )
        )

    async def worker(request: Request) -> Response:
        site.asked.append(f"{request.method} {request.headers.get('user-agent', '')}")
        if not site.serves_worker:
            return PlainTextResponse("Not Found", status_code=404)
        line = f"importScripts('{site.relay.url}/porch-sw.js');\n"
        return PlainTextResponse(line, media_type="text/javascript")

    return Starlette(
        routes=[
            Route("/", page),
            Route("/porch-sw.js", worker, methods=["GET", "HEAD"]),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
        ]
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    sock = free_socket()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = relay_config(
        tmp_path,
        visitor_messages_per_minute=UNLIMITED,
        ip_messages_per_minute=UNLIMITED,
        threads_per_ip_per_hour=UNLIMITED,
        push_endpoint_allow=(origin,),  # the site is on loopback: checked only if allowed
    )
    seed_sites(config, [replace(ALPHA, origins=(origin,))])
    site = Site(start_relay(config), origin)
    server = _PageServer(uvicorn.Config(site_app(site), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        if not server.ready.wait(STARTUP_TIMEOUT):
            raise RuntimeError(f"the site failed to start within {STARTUP_TIMEOUT} s")
        yield site
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        site.relay.stop()


@pytest.fixture
def visitor(browser: Browser, site: Site) -> Iterator[tuple[BrowserContext, Page]]:
    """A browser that lets the site notify (as if the visitor had said yes before), and
    its page, which must log no error (a 404 for a missing worker would be one)."""
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=site.origin)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith(INCOGNITO)
            else None
        ),
    )
    page.on(
        "request",
        lambda r: site.pushes.append(r.method) if r.url.endswith("/v1/thread/push") else None,
    )
    try:
        yield context, page
    finally:
        context.close()
    assert not errors, f"the page logged errors: {errors}"


def first_message(page: Page, site: Site) -> bool:
    """The visitor's first message, stored, and the relay asked whether the site has the
    worker (it asked the site, once): what it answered."""
    page.goto(site.origin + "/")
    check = f"{site.relay.url}/v1/sites/alpha/push-worker?origin={quote(site.origin, safe='')}"
    with page.expect_request_finished(lambda r: r.url == check) as asked:
        open_and_send(page, "Do you bake rye on Fridays?")
        expect(page.locator(STORED_VISITOR)).to_have_count(1)
    response = asked.value.response()
    assert response is not None and response.status == 200
    assert len(site.asked) == 1 and site.asked[0].startswith("GET Porch/")  # the relay
    served = response.json()["served"]
    assert isinstance(served, bool)
    return served


def registration(page: Page) -> Any:
    return page.evaluate(
        """() => navigator.serviceWorker.getRegistration('/porch-push/').then((r) => r && {
            scope: r.scope, script: (r.active || r.waiting || r.installing)?.scriptURL })"""
    )


def test_on_a_site_with_the_worker_it_is_offered_and_registers_at_its_own_scope(
    site: Site, visitor: tuple[BrowserContext, Page]
) -> None:
    _, page = visitor
    assert first_message(page, site) is True
    offer = page.get_by_role("button", name=OFFER)
    expect(offer).to_be_visible()
    expect(page.locator(BOX).get_by_role("button", name="No thanks")).to_be_visible()
    assert registration(page) is None  # nothing registered, asked or stored before the click
    assert page.evaluate("Object.keys(localStorage)") == ["porch:alpha"]

    offer.focus()
    page.keyboard.press("Enter")  # reachable and usable from the keyboard
    # No push service here: the browser cannot subscribe, and the widget says so.
    expect(page.locator(NOTICE)).to_have_text("This browser could not turn on notifications.")
    assert registration(page) == {
        "scope": f"{site.origin}/porch-push/",
        "script": f"{site.origin}/porch-sw.js",
    }
    assert page.evaluate(
        "navigator.serviceWorker.getRegistration('/').then((r) => r?.scope ?? null)"
    ) in (None, f"{site.origin}/porch-push/")  # nothing at the site's own scope
    assert site.pushes == [] and site.rows() == 0  # nothing POSTed, nothing kept
    expect(offer).to_be_visible()  # may be tried again, from where the keyboard is
    expect(offer).to_be_enabled()
    expect(offer).to_be_focused()
    assert page.evaluate("Object.keys(localStorage)") == ["porch:alpha"]


def test_no_thanks_puts_the_offer_away_for_this_conversation(
    site: Site, visitor: tuple[BrowserContext, Page]
) -> None:
    _, page = visitor
    assert first_message(page, site) is True
    page.locator(BOX).get_by_role("button", name="No thanks").click()
    expect(page.get_by_role("button", name=OFFER)).to_be_hidden()
    expect(page.locator("porch-chat textarea")).to_be_focused()
    page.reload()
    page.locator("porch-chat .launcher").click()
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    expect(page.locator(BOX)).to_be_attached()  # the part is there, and offers nothing
    expect(page.get_by_role("button", name=OFFER)).to_be_hidden()
    assert registration(page) is None


def test_on_a_site_without_the_worker_nothing_is_offered(
    site: Site, visitor: tuple[BrowserContext, Page]
) -> None:
    _, page = visitor
    site.serves_worker = False
    assert first_message(page, site) is False
    expect(page.locator(BOX)).to_be_attached()
    # The answer's body was read (the request finished): a task later, it is applied.
    page.evaluate("new Promise((resolve) => setTimeout(resolve))")
    expect(page.get_by_role("button", name=OFFER)).to_be_hidden()
    assert registration(page) is None
    assert site.pushes == [] and site.rows() == 0
    assert len(site.asked) == 1  # by the relay, once: the page never asked its origin


def test_the_worker_shows_a_push_and_opens_its_page(site: Site, page: Page) -> None:
    """porch-sw.js run against a stand-in for the worker's `self`: what it registers,
    what it shows for a push (nothing for one that is not Porch's JSON), and what a tap
    focuses or opens."""
    source = httpx.get(f"{site.relay.url}/porch-sw.js").text
    seen = page.evaluate(
        """(source) => {
        const listeners = {}, shown = [], opened = [], focused = [], waits = [];
        let closed = 0;
        const windows = [{ url: 'https://shop.example/cakes#porch=x',
                           focus() { focused.push(this.url); return Promise.resolve(this); } }];
        const self = {
          addEventListener: (type, handler) => { listeners[type] = handler; },
          registration: { showNotification: (title, options) => {
            shown.push({ title, options }); return Promise.resolve(); } },
          clients: { matchAll: async () => windows,
                     openWindow: async (url) => { opened.push(url); } },
        };
        new Function('self', source)(self);
        const event = (fields) => ({ ...fields, waitUntil: (p) => waits.push(p) });
        const push = (json) => listeners.push(event({ data: json && { json } }));
        push(() => ({ title: 'Alpha Bakery', body: 'Yes, every Friday.',
                      url: 'https://shop.example/cakes', tag: 't_1' }));
        push(() => { throw new SyntaxError('not JSON'); });
        push(null);
        push(() => ({ title: 'no url', body: '', tag: 't_1' }));
        push(() => ({ title: 'x', body: 'y', url: 'javascript:alert(1)', tag: 't_1' }));
        const tap = (url) => listeners.notificationclick(event({
          notification: { data: { url }, close: () => { closed += 1; } } }));
        tap('https://shop.example/cakes');
        tap('https://shop.example/bread');
        tap('javascript:alert(1)');
        return Promise.all(waits).then(() => (
          { types: Object.keys(listeners).sort(), shown, opened, focused, closed }));
    }""",
        source,
    )
    assert seen == {
        "types": ["notificationclick", "push"],  # no fetch: the site's pages are never touched
        "shown": [
            {
                "title": "Alpha Bakery",
                "options": {
                    "body": "Yes, every Friday.",
                    "tag": "t_1",
                    "renotify": True,
                    "data": {"url": "https://shop.example/cakes"},
                },
            }
        ],
        "focused": ["https://shop.example/cakes#porch=x"],  # already open: brought forward
        "opened": ["https://shop.example/bread"],
        "closed": 3,
    }
