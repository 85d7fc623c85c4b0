"""The visitor's own data: download it, delete it, sign out (here or everywhere), and a
consent mode in which the widget loads, reads and stores nothing until the page says so."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, WebSocket, expect

from tests.e2e.conftest import Stage
from tests.e2e.test_resume import device
from tests.e2e.test_widget import (
    INPUT,
    LAUNCHER,
    OWNER,
    PANEL,
    STORED_VISITOR,
    only_thread,
    open_and_send,
)
from tests.e2e.test_widget_lifecycle import closed

KEY = "porch:alpha"
STORED = f"localStorage.getItem('{KEY}')"
MORE = "porch-chat .more"
MENU = "porch-chat .menu"
CONFIRM = "porch-chat .confirm"
NOTICE = "porch-chat .notice"


def start_conversation(stage: Stage, page: Page) -> str:
    """A thread with a visitor message and an owner reply, both shown: its id."""
    page.goto(stage.url("/"))
    open_and_send(page, "Do you deliver on Sundays?")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    thread = only_thread(stage)
    stage.owner_reply(thread, "Yes, before noon.")
    expect(page.locator(OWNER).last).to_contain_text("before noon")
    return thread


def choose(page: Page, item: str) -> None:
    page.locator(MORE).click()
    page.locator(MENU).get_by_role("menuitem", name=item).click()


def expect_fresh(page: Page) -> None:
    expect(page.locator("porch-chat .message.visitor")).to_have_count(0)
    expect(page.locator(OWNER)).to_have_count(1)  # the greeting only
    expect(page.locator(MORE)).to_be_hidden()
    expect(page.get_by_role("button", name="Continue on another device")).to_be_hidden()
    assert page.evaluate(STORED) is None


def test_menu_is_a_keyboard_menu_shown_once_a_conversation_exists(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/"))
    page.locator(LAUNCHER).click()
    expect(page.locator(PANEL)).to_be_visible()
    expect(page.locator(MORE)).to_be_hidden()  # nothing to download or delete yet
    open_and_send(page, "Hello")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    more = page.locator(MORE)
    expect(more).to_have_attribute("aria-haspopup", "menu")
    expect(more).to_have_attribute("aria-label", "More options")
    more.focus()
    page.keyboard.press("Enter")
    expect(page.locator(MENU)).to_be_visible()
    expect(more).to_have_attribute("aria-expanded", "true")
    items = page.locator(MENU).get_by_role("menuitem")
    expect(items).to_have_text(
        [
            "Download my conversation (text)",
            "Download my data (JSON)",
            "Delete my conversation",
            "Sign out on this device",
            "Sign out everywhere",
        ]
    )
    expect(items.first).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(items.nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(items.last).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(MENU)).to_be_hidden()
    expect(page.locator(PANEL)).to_be_visible()  # Escape closed the menu, not the panel
    expect(more).to_be_focused()
    expect(more).to_have_attribute("aria-expanded", "false")
    more.click()
    page.locator(INPUT).click()  # a press elsewhere puts it away
    expect(page.locator(MENU)).to_be_hidden()

    # Sign out on this device: forgotten here, the conversation stays at the relay.
    choose(page, "Sign out on this device")
    expect(page.locator(NOTICE)).to_have_text("You are signed out on this device.")
    expect_fresh(page)
    expect(page.locator(INPUT)).to_be_focused()
    assert len(stage.threads()) == 1
    page.reload()
    page.locator(LAUNCHER).click()
    expect(page.locator(PANEL)).to_be_visible()
    expect_fresh(page)


def test_download_matches_the_thread(stage: Stage, page: Page, tmp_path: Path) -> None:
    thread = start_conversation(stage, page)
    expected = [(m["seq"], m["author"], m["body"]) for m in stage.messages(thread)]
    with page.expect_download() as info:
        choose(page, "Download my data (JSON)")
    download = info.value
    assert download.suggested_filename == "conversation.json"
    data = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert {"site", "visitor"} <= data.keys()
    # The relay answers {"threads": [{..., "messages"}]}; the brief said {"thread", "messages"}.
    threads = (
        data["threads"] if "threads" in data else [{**data["thread"], "messages": data["messages"]}]
    )
    assert [t["id"] for t in threads] == [thread]
    assert [(m["seq"], m["author"], m["body"]) for m in threads[0]["messages"]] == expected
    with page.expect_download() as info:
        choose(page, "Download my conversation (text)")
    download = info.value
    assert download.suggested_filename == "conversation.txt"
    text = Path(download.path()).read_text(encoding="utf-8")
    for _, _, body in expected:
        assert body in text
    assert text.index("Do you deliver on Sundays?") < text.index("Yes, before noon.")
    expect(page.locator(MORE)).to_be_focused()
    expect(page.locator("porch-chat .alert")).to_be_empty()


def test_delete_asks_then_removes_everything_here_and_at_the_relay(
    stage: Stage, context: BrowserContext, page: Page
) -> None:
    start_conversation(stage, page)
    other = context.new_page()  # a second tab of the same browser follows
    other.goto(stage.url("/"))
    other.locator(LAUNCHER).click()
    expect(other.locator(STORED_VISITOR)).to_have_count(1)

    choose(page, "Delete my conversation")
    confirm = page.locator(CONFIRM)
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("This cannot be undone.")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(page.locator(MORE)).to_be_focused()
    assert stage.relay.counts()["messages"] == 2  # nothing happened

    choose(page, "Delete my conversation")
    page.keyboard.press("Escape")  # Escape is Cancel too, and keeps the panel open
    expect(confirm).to_be_hidden()
    expect(page.locator(PANEL)).to_be_visible()

    choose(page, "Delete my conversation")
    confirm.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(NOTICE)).to_have_text("Your conversation was deleted.")
    expect(confirm).to_be_hidden()
    expect_fresh(page)
    expect(page.locator(INPUT)).to_be_focused()
    counts = stage.relay.counts()
    assert (counts["visitors"], counts["threads"], counts["messages"]) == (0, 0, 0)
    expect(other.locator("porch-chat .message.visitor")).to_have_count(0)
    expect(other.locator(MORE)).to_be_hidden()

    # A fresh start: a new conversation, with the menu again.
    open_and_send(page, "Starting over")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    expect(page.locator(MORE)).to_be_visible()
    expect(other.locator(STORED_VISITOR + " .bubble")).to_have_text(["You: Starting over"])


def test_sign_out_everywhere_closes_the_other_device(
    browser: Browser, stage: Stage, page: Page
) -> None:
    thread = start_conversation(stage, page)
    stored = page.evaluate(STORED)
    token = json.loads(stored)["token"]
    # Device B holds the same visitor token (as if it had opened a resume link).
    with device(browser) as b:
        sockets: list[WebSocket] = []
        b.on("websocket", lambda ws: sockets.append(ws))
        b.goto(stage.url("/"))
        b.evaluate(f"localStorage.setItem('{KEY}', {json.dumps(stored)})")
        b.reload()
        b.locator(LAUNCHER).click()
        expect(b.locator(STORED_VISITOR)).to_have_count(1)
        stage.owner_reply(thread, "Live on B")
        expect(b.locator(OWNER).last).to_contain_text("Live on B")  # B's socket is up
        assert len(sockets) == 1 and not sockets[0].is_closed()

        choose(page, "Sign out everywhere")
        confirm = page.locator(CONFIRM)
        expect(confirm).to_contain_text("all your devices")
        confirm.get_by_role("button", name="Sign out everywhere").click()
        expect(page.locator(NOTICE)).to_have_text("You are signed out on all your devices.")
        expect_fresh(page)

        # B: its socket closed (4401), it forgot the conversation, its token is dead.
        expect(b.locator("porch-chat .message.visitor")).to_have_count(0)
        b.wait_for_function(f"{STORED} === null")
        closed(sockets[0])  # its close may reach us after the page has acted on it
        response = httpx.get(
            f"{stage.relay.url}/v1/thread",
            headers={"authorization": f"Bearer {token}", "origin": stage.pages},
        )
        assert response.status_code == 401
        b.reload()
        b.locator(LAUNCHER).click()
        expect(b.locator(PANEL)).to_be_visible()
        expect_fresh(b)
    assert len(stage.threads()) == 1  # signing out deletes nothing


def test_consent_mode_loads_nothing_until_the_page_consents(stage: Stage, page: Page) -> None:
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(stage.url("/consent"))
    page.evaluate(
        "window.asked = 0;"
        "document.addEventListener('porch-chat-consent-needed', () => window.asked++)"
    )
    launcher = page.locator(LAUNCHER)
    expect(launcher).to_be_visible()
    launcher.hover()
    launcher.focus()
    launcher.click()
    page.evaluate("Porch('open')")  # an API call waits for consent, and asks for it too
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    assert page.evaluate("window.asked") == 2
    assert [url.replace(stage.relay.url, "RELAY") for url in requests] == [
        stage.url("/consent"),
        "RELAY/widget.js",
    ]
    assert sockets == []
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    expect(page.locator(PANEL)).to_have_count(0)

    page.evaluate("Porch('consent', true)")  # the queued 'open' runs now
    expect(page.locator(PANEL)).to_be_visible()
    open_and_send(page, "Consented, then asked")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    assert page.evaluate(STORED) is not None
    page.locator("porch-chat .close").click()
    launcher.click()
    expect(page.locator(PANEL)).to_be_visible()
    assert page.evaluate("window.asked") == 2


def test_consent_mode_returning_visitor_waits_too(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/"))
    open_and_send(page, "Before the site asked for consent")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    # Once there is a conversation the widget asks whether the site serves its push
    # worker: that request is this page's, and must be over before the next page's count.
    page.wait_for_load_state("networkidle")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(stage.url("/consent"))
    page.wait_for_load_state("networkidle")
    assert [url.replace(stage.relay.url, "RELAY") for url in requests] == [
        stage.url("/consent"),
        "RELAY/widget.js",
    ]
    page.evaluate("Porch('consent', true)")
    page.locator(LAUNCHER).click()
    expect(page.locator(STORED_VISITOR)).to_contain_text("Before the site asked for consent")
