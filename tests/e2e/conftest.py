"""Browser fixtures: Debian's Chromium driven by Playwright, a relay, and host pages
on a second origin."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.e2e.pages import page_app
from tests.support import (
    ALPHA,
    CHROMIUM,
    CHROMIUM_ARGS,
    STARTUP_TIMEOUT,
    RunningRelay,
    free_socket,
    relay_config,
    seed_sites,
    start_relay,
)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots; git-ignored
UNLIMITED = 1_000_000


# Function-scoped: sync Playwright keeps an event loop running in the main thread for
# as long as it is open, which would break the asyncio tests that run after these.
@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        missing = (
            "Debian's Chromium is not installed at /usr/bin/chromium "
            "(apt-get install chromium; .ci/run installs it)"
        )
        if os.environ.get("CI"):  # CI must run the browser tests, never skip them
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class _PageServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@dataclass
class Stage:
    """A relay, host pages on another origin, and an owner who can reply."""

    relay: RunningRelay
    pages: str

    def url(self, path: str = "/") -> str:
        return self.pages + path

    def owner_reply(self, thread: str, body: str) -> dict[str, Any]:
        response = httpx.post(
            f"{self.relay.url}/v1/owner/threads/{thread}/messages",
            json={"body": body},
            headers={"authorization": f"Bearer {self.relay.owner_token()}"},
        )
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def threads(self) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.relay.url}/v1/owner/threads",
            headers={"authorization": f"Bearer {self.relay.owner_token()}"},
        )
        return response.json()["threads"]  # type: ignore[no-any-return]

    def messages(self, thread: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.relay.url}/v1/owner/threads/{thread}",
            headers={"authorization": f"Bearer {self.relay.owner_token()}"},
        )
        return response.json()["messages"]  # type: ignore[no-any-return]


@contextmanager
def running_stage(tmp_path: Path, **relay_overrides: Any) -> Iterator[Stage]:
    """A stage whose relay has no rate limits, plus any relay_config overrides."""
    page_socket = free_socket()
    pages = f"http://127.0.0.1:{page_socket.getsockname()[1]}"
    config = relay_config(
        tmp_path,
        **{
            "visitor_messages_per_minute": UNLIMITED,
            "ip_messages_per_minute": UNLIMITED,
            "threads_per_ip_per_hour": UNLIMITED,
            **relay_overrides,
        },
    )
    seed_sites(config, [replace(ALPHA, origins=(pages,))])
    relay = start_relay(config)
    server = _PageServer(uvicorn.Config(page_app(relay.url), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [page_socket]}, daemon=True)
    thread.start()
    if not server.ready.wait(STARTUP_TIMEOUT):
        raise RuntimeError(f"the page server failed to start within {STARTUP_TIMEOUT} s")
    try:
        yield Stage(relay, pages)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        relay.stop()


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    with running_stage(tmp_path) as stage:
        yield stage


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context()
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    assert not errors, f"the page logged errors: {errors}"


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
