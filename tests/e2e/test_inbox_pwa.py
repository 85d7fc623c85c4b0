"""The inbox as an installable app, in real Chromium against a real relay: its manifest
and icons (Chromium itself finds it installable), the service worker that controls
/inbox/ and keeps the shell for when the network is gone (the page then says it is
offline, and comes back by itself), and "Notify me on this device", which cannot
complete here (headless Chromium has no push service): it says so, and posts nothing.
The owner's devices are listed and removed from the settings."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from PIL import Image
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    expect,
    sync_playwright,
)

from relay.assets import asset_dir
from tests.e2e.conftest import Stage, running_stage, screenshot
from tests.e2e.test_inbox import OWNER_EMAIL, SESSION, assert_accessible, visitor_writes
from tests.e2e.test_inbox_apps import open_inbox
from tests.fakes.push_service import FakePushService
from tests.support import CHROMIUM, CHROMIUM_ARGS

TEXT = json.loads((asset_dir("widget") / "messages.json").read_text())["en"]
PUSH = "/inbox/api/push"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile"
# What Chromium logs by itself, not the page: a request the network refused while
# offline, the socket it could not reopen, the signed-out page's session check, and
# its note that a private window has no Push API.
OFFLINE = re.compile(r"net::ERR_INTERNET_DISCONNECTED|WebSocket connection to .* failed")
INCOGNITO_PUSH = "does not support the Push API in incognito mode"
PNG_ICONS = {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")}


# The worker fully activated: `ready` resolves while it may still be activating, and a
# push handed over then can be lost.
ACTIVATED = """async () => {
  const worker = (await navigator.serviceWorker.ready).active;
  if (worker.state !== 'activated') {
    await new Promise((done) => worker.addEventListener('statechange', () => {
      if (worker.state === 'activated') done();
    }));
  }
  return true;
}"""


@contextmanager
def watched(context: BrowserContext, allowed: re.Pattern[str] | None = None) -> Iterator[Page]:
    """A page of `context` that must throw nothing and log no error but those Chromium
    logs by itself for what the test does (`allowed`)."""
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "")
        if "status of 401" in message.text and where.endswith(SESSION):
            return
        if allowed and allowed.search(message.text):
            return
        errors.append(f"{message.text} ({where})")

    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on("console", on_console)
    yield page
    assert errors == [], errors


@pytest.fixture
def push_stage(tmp_path: Path) -> Iterator[tuple[Stage, FakePushService]]:
    """A stage whose relay takes subscriptions on a fake push service."""
    with (
        FakePushService() as service,
        running_stage(tmp_path, push_endpoint_allow=(service.origin,)) as stage,
    ):
        yield stage, service


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[BrowserContext]:
    """Chromium with a profile on disk: not a private window, so it judges whether
    the inbox can be installed, and tries the Push API for real."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's Chromium is not installed at /usr/bin/chromium")
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield context
        context.close()


def image(page: Page, url: str) -> Image.Image:
    response = page.request.get(url)
    assert response.status == 200, url
    assert response.headers["content-type"] == "image/png", url
    return Image.open(io.BytesIO(response.body()))


def open_devices(page: Page) -> None:
    page.get_by_role("button", name=TEXT["inbox.header.settings"]).click()
    page.get_by_role("tab", name=TEXT["inbox.settings.tab.devices"]).click()


def push_devices(page: Page) -> list[dict[str, Any]]:
    """GET /inbox/api/push with the page's own cookie."""
    response = page.request.get(urljoin(page.url, PUSH))
    assert response.ok, response.text()
    return response.json()["devices"]  # type: ignore[no-any-return]


def push_posts(page: Page) -> list[str]:
    """Every POST the page makes to /inbox/api/push from now on."""
    posts: list[str] = []

    def on_request(request: Request) -> None:
        if request.method == "POST" and urlsplit(request.url).path == PUSH:
            posts.append(request.url)

    page.on("request", on_request)
    return posts


def test_the_inbox_is_installable(stage: Stage, profile: BrowserContext) -> None:
    relay = stage.relay.url
    with watched(profile) as page:
        page.goto(relay + "/inbox/")
        link = page.locator("link[rel=manifest]").get_attribute("href")
        assert link is not None
        answer = page.request.get(urljoin(page.url, link))
        assert answer.status == 200
        manifest = answer.json()
        assert (manifest["start_url"], manifest["scope"]) == ("/inbox/", "/inbox/")
        assert manifest["display"] == "standalone" and manifest["name"] == "Porch inbox"
        assert manifest["theme_color"] and manifest["background_color"]
        pngs = [icon for icon in manifest["icons"] if icon["type"] == "image/png"]
        assert {(icon["sizes"], icon["purpose"]) for icon in pngs} == PNG_ICONS
        for icon in pngs:
            width, height = map(int, icon["sizes"].split("x"))
            assert image(page, urljoin(page.url, icon["src"])).size == (width, height)
        # iOS (16.4+) takes its icon and standalone mode from the page itself.
        touch = page.locator("link[rel=apple-touch-icon]").get_attribute("href")
        assert touch is not None
        apple = image(page, urljoin(page.url, touch))
        assert apple.size == (180, 180) and apple.mode == "RGB"  # opaque: iOS shows black
        capable = page.locator("meta[name=apple-mobile-web-app-capable]")
        assert capable.get_attribute("content") == "yes"

        # Chromium's own verdict, once the worker runs.
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        devtools = profile.new_cdp_session(page)
        assert devtools.send("Page.getAppManifest")["errors"] == []
        assert devtools.send("Page.getInstallabilityErrors")["installabilityErrors"] == []


def test_without_a_push_service_subscribing_says_so(stage: Stage, profile: BrowserContext) -> None:
    """A real profile with notifications allowed: Chromium asks its push service, which
    headless Chromium cannot reach. The button gives up after a while and says so."""
    with watched(profile) as page:
        open_inbox(page, stage)
        profile.grant_permissions(["notifications"], origin=stage.relay.url)
        posts = push_posts(page)
        open_devices(page)
        button = page.get_by_role("button", name=TEXT["inbox.push.enable"])
        button.click()
        expect(button).to_be_disabled()
        failed = page.get_by_role("alert").filter(has_text=TEXT["inbox.push.refused.failed"])
        expect(failed).to_be_visible(timeout=20_000)
        expect(button).to_be_enabled()
        assert posts == [] and push_devices(page) == []


def test_the_worker_keeps_the_inbox_working_offline(stage: Stage, browser: Browser) -> None:
    relay = stage.relay.url
    context = browser.new_context()
    try:
        with watched(context, OFFLINE) as page:
            open_inbox(page, stage)
            scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
            assert scope == relay + "/inbox/"
            page.reload()
            expect(page.get_by_role("navigation")).to_be_visible()
            controller = "navigator.serviceWorker.controller?.scriptURL"
            assert page.evaluate(controller) == relay + "/inbox/sw.js"
            worker = page.request.get(relay + "/inbox/sw.js")
            assert worker.headers["content-type"].startswith("text/javascript")
            assert worker.headers["cache-control"] == "no-cache"
            assert "__PORCH_" not in worker.text()  # its version and shell written in
            kept: list[str] = page.evaluate(
                """async () => {
                    const urls = [];
                    for (const name of await caches.keys()) {
                      const cache = await caches.open(name);
                      for (const request of await cache.keys()) urls.push(request.url);
                    }
                    return urls;
                }"""
            )
            paths = {urlsplit(url).path for url in kept}
            assert {"/inbox/", "/inbox/static/inbox.js", "/inbox/static/messages.json"} <= paths
            assert not [path for path in paths if path.startswith("/inbox/api")]

            # The network goes while the inbox is open: it says so.
            context.set_offline(True)
            expect(page.locator(".connection")).to_have_text(TEXT["inbox.header.offline"])
            # Opened again without a network: the kept shell, saying it is offline.
            page.reload()
            heading = page.get_by_role("heading", name=TEXT["inbox.offline.title"])
            expect(heading).to_be_visible()
            expect(page.get_by_text(TEXT["inbox.offline.body"])).to_be_visible()
            expect(page).to_have_title(TEXT["inbox.offline.title"])
            assert_accessible(page)
            screenshot(page, "inbox-offline")

            # Back online: the inbox comes back by itself, live.
            context.set_offline(False)
            expect(page.get_by_role("navigation")).to_be_visible()
            expect(page.locator(".connection")).to_have_text("")
            visitor_writes(stage, "Are you open on Sunday?")
            expect(page.locator(".thread-item", has_text="Are you open on Sunday?")).to_be_visible()
    finally:
        context.close()


def test_subscribing_in_a_private_window_fails_clearly_and_posts_nothing(
    stage: Stage, browser: Browser
) -> None:
    context = browser.new_context()
    try:
        with watched(context, re.compile(INCOGNITO_PUSH)) as page:
            open_inbox(page, stage)
            posts = push_posts(page)
            open_devices(page)
            button = page.get_by_role("button", name=TEXT["inbox.push.enable"])
            expect(page.get_by_text(TEXT["inbox.push.intro"])).to_be_visible()
            # Notifications not allowed (headless Chromium answers the prompt "no").
            button.click()
            denied = page.get_by_role("alert").filter(has_text=TEXT["inbox.push.refused.denied"])
            expect(denied).to_be_visible()
            # Allowed: the browser has no push service here.
            context.grant_permissions(["notifications"], origin=stage.relay.url)
            button.click()
            failed = page.get_by_role("alert").filter(has_text=TEXT["inbox.push.refused.failed"])
            expect(failed).to_be_visible()
            expect(button).to_be_enabled()
            assert posts == [] and push_devices(page) == []
    finally:
        context.close()


def test_the_owners_devices_are_listed_and_removed(
    push_stage: tuple[Stage, FakePushService], browser: Browser
) -> None:
    stage, service = push_stage
    relay = stage.relay.url
    context = browser.new_context()
    try:
        with watched(context) as page:
            open_inbox(page, stage)
            # This browser's subscription, as the button would post it had it a push
            # service; and a phone's, from another session of the owner.
            csrf = page.request.get(relay + SESSION).json()["csrf"]
            here = page.request.post(
                relay + PUSH,
                data=service.new_subscription().to_json(),
                headers={"x-csrf-token": csrf, "origin": relay},
            )
            assert here.status == 201, here.text()
            with httpx.Client(base_url=relay, headers={"origin": relay}) as phone:
                token = stage.relay.tokens.login_token(OWNER_EMAIL)
                me = phone.post(SESSION, json={"token": token})
                added = phone.post(
                    PUSH,
                    json=service.new_subscription().to_json(),
                    headers={"x-csrf-token": me.json()["csrf"], "user-agent": ANDROID},
                )
                assert added.status_code == 201, added.text

            open_devices(page)
            rows = page.locator("section.push-devices li")
            expect(rows).to_have_count(2)
            this_device = rows.filter(has_text=TEXT["inbox.devices.this_device"])
            expect(this_device).to_contain_text("Chrome on Linux")
            expect(rows.filter(has_text="Chrome on Android")).to_have_count(1)
            enable = page.get_by_role("button", name=TEXT["inbox.push.enable"])
            expect(enable).to_be_hidden()  # this device is told already
            assert_accessible(page)
            screenshot(page, "inbox-push-devices")

            this_device.get_by_role("button", name=TEXT["inbox.push.remove"]).click()
            expect(rows).to_have_count(1)
            expect(rows).to_contain_text("Chrome on Android")
            removed = page.get_by_role("status").filter(has_text=TEXT["inbox.push.removed"])
            expect(removed).to_be_visible()
            expect(enable).to_be_visible()
            assert [device["id"] for device in push_devices(page)] == [added.json()["id"]]
    finally:
        context.close()


def test_a_push_shows_one_notification_per_thread_and_nothing_else(
    stage: Stage, browser: Browser
) -> None:
    """Pushes handed to the worker as its push service would (DevTools): the relay's
    JSON shows, a newer one for the same thread replaces the older, anything else shows
    nothing."""
    relay = stage.relay.url
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=relay)
    try:
        with watched(context) as page:
            page.goto(relay + "/inbox/")
            page.evaluate(ACTIVATED)
            devtools = context.new_cdp_session(page)
            registrations: list[dict[str, Any]] = []
            devtools.on(
                "ServiceWorker.workerRegistrationUpdated",
                lambda event: registrations.extend(event["registrations"]),
            )
            devtools.send("ServiceWorker.enable")
            page.evaluate("1")  # Playwright hands events over during a call
            [registration] = [r for r in registrations if r["scopeURL"] == relay + "/inbox/"]

            def push(data: str) -> None:
                devtools.send(
                    "ServiceWorker.deliverPushMessage",
                    {
                        "origin": relay,
                        "registrationId": registration["registrationId"],
                        "data": data,
                    },
                )

            def message(body: str, thread: str = "th_1", who: str = "Ann") -> dict[str, str]:
                url = f"{relay}/inbox/#t={thread}"
                return {"title": f"{who} · Alpha Bakery", "body": body, "url": url, "tag": thread}

            first = message("Do you deliver?")
            push(json.dumps(first))
            wait_shown(page, [first])
            newer = message("Saturday morning?")
            push(json.dumps(newer))  # the same thread: it replaces the first
            wait_shown(page, [newer])
            for junk in (
                "not json",
                json.dumps(["a", "list"]),
                json.dumps({**message("no tag"), "tag": ""}),
                json.dumps({**message("a script"), "url": "javascript:alert(1)"}),
                json.dumps({"title": "only a title"}),
            ):
                push(junk)
            other = message("Another visitor", thread="th_2", who="Bob")
            push(json.dumps(other))
            wait_shown(page, [newer, other])  # nothing of the junk in between
    finally:
        context.close()


def wait_shown(page: Page, wanted: list[dict[str, str]], within: int = 15000) -> None:
    """Wait until the worker's notifications are exactly `wanted` (the page asks the
    worker's registration until then: nothing announces a notification shown)."""
    left = page.evaluate(
        """async ({ wanted, within }) => {
            const key = (list) => JSON.stringify(
              list.map((n) => [n.tag, n.title, n.body, n.url]).sort());
            const registration = await navigator.serviceWorker.ready;
            const deadline = Date.now() + within;
            let shown;
            while (Date.now() < deadline) {
              shown = (await registration.getNotifications())
                .map((n) => ({ title: n.title, body: n.body, url: n.data?.url, tag: n.tag }));
              if (key(shown) === key(wanted)) return null;
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
            return shown;
        }""",
        {"wanted": wanted, "within": within},
    )
    assert left is None, f"shown: {left}, wanted: {wanted}"
