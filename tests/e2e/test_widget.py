"""The widget in real Chromium, against a real relay, on a host page of another origin."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.e2e.conftest import Stage, screenshot

LAUNCHER = "porch-chat .launcher"
PANEL = "porch-chat .panel"
INPUT = "porch-chat textarea"
STORED_VISITOR = "porch-chat .message.visitor:not(.pending)"
# After the first message, the widget asks the relay whether the site serves the push
# worker (widget/push.js): tests that cut the network wait for the answer first, else
# the request fails as it goes and Chromium logs that on the console.
PUSH_CHECK = re.compile(r"/v1/sites/alpha/push-worker\?")
OWNER = "porch-chat .message.owner"


def open_and_send(page: Page, text: str) -> None:
    if not page.locator(PANEL).is_visible():
        page.locator(LAUNCHER).click()
    page.locator(INPUT).fill(text)
    page.locator(INPUT).press("Enter")


def only_thread(stage: Stage) -> str:
    threads = stage.threads()
    assert len(threads) == 1
    return str(threads[0]["id"])


def test_nothing_is_fetched_or_stored_before_interaction(stage: Stage, page: Page) -> None:
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(stage.url("/"))
    expect(page.locator(LAUNCHER)).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert [url.replace(stage.relay.url, "RELAY") for url in requests] == [
        stage.url("/"),
        "RELAY/widget.js",
    ]
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert sockets == []
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-label", "Open chat")
    screenshot(page, "closed")


def test_send_see_it_acked_reload_and_find_the_history(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/"))
    open_and_send(page, "Do you have rye bread today?")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)  # acked: it has a seq now
    expect(page.locator(INPUT)).to_have_value("")
    page.reload()
    page.locator(LAUNCHER).click()
    expect(page.locator(STORED_VISITOR)).to_contain_text("Do you have rye bread today?")
    assert len(stage.messages(only_thread(stage))) == 1


def test_owner_reply_appears_live_with_unread_badge(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/"))
    open_and_send(page, "Are you open on Monday?")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    page.locator("porch-chat .close").click()
    stage.owner_reply(only_thread(stage), "Closed on Mondays, open Tuesday from 7.")
    expect(page.locator("porch-chat .badge")).to_have_text("1")
    expect(page).to_have_title("(1) Alpha Bakery")
    page.locator(LAUNCHER).click()
    expect(page.locator(OWNER).last).to_contain_text("Closed on Mondays")
    expect(page.locator("porch-chat .badge")).to_be_hidden()
    expect(page).to_have_title("Alpha Bakery")


def test_messages_typed_offline_arrive_once(
    stage: Stage, context: BrowserContext, page: Page
) -> None:
    page.goto(stage.url("/"))
    with page.expect_response(PUSH_CHECK):  # not in flight as the network goes
        open_and_send(page, "first, online")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    context.set_offline(True)
    open_and_send(page, "second, offline")
    open_and_send(page, "third, offline")
    expect(page.locator("porch-chat .message.pending")).to_have_count(2)
    expect(page.locator("porch-chat .notice")).to_contain_text("offline")
    context.set_offline(False)
    expect(page.locator(STORED_VISITOR)).to_have_count(3)
    expect(page.locator("porch-chat .message.pending")).to_have_count(0)
    bodies = [m["body"] for m in stage.messages(only_thread(stage))]
    assert bodies == ["first, online", "second, offline", "third, offline"]


def test_two_tabs_stay_in_sync_and_ring_once(stage: Stage, context: BrowserContext) -> None:
    first, second = context.new_page(), context.new_page()
    first.goto(stage.url("/"))
    open_and_send(first, "from the first tab")
    expect(first.locator(STORED_VISITOR)).to_have_count(1)
    second.goto(stage.url("/"))  # a returning visitor: the UI loads at once
    second.locator(LAUNCHER).click()
    expect(second.locator(STORED_VISITOR + " .bubble")).to_have_text("You: from the first tab")
    open_and_send(second, "from the second tab")
    expect(first.locator(STORED_VISITOR)).to_have_count(2)
    for tab in (first, second):
        tab.evaluate(
            "window.rings = 0; document.addEventListener('porch-chat-notify', () => window.rings++)"
        )
        tab.locator("porch-chat .close").click()
    stage.owner_reply(only_thread(stage), "Got both!")
    for tab in (first, second):
        expect(tab.locator("porch-chat .badge")).to_have_text("1")
    assert first.evaluate("window.rings") + second.evaluate("window.rings") == 1


def test_hostile_text_renders_as_text(stage: Stage, page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(stage.url("/"))
    hostile = [
        '<img src=x onerror="alert(1)">',
        "<script>alert(2)</script>",
        "javascript:alert(3) and https://alpha.example/ok?a=1&b=2.",
    ]
    for text in hostile:
        open_and_send(page, text)
    expect(page.locator(STORED_VISITOR)).to_have_count(3)
    stage.owner_reply(only_thread(stage), '<b>bold?</b> <a href="javascript:alert(4)">x</a>')
    expect(page.locator(OWNER).last).to_contain_text("<b>bold?</b>")
    log = page.locator("porch-chat .log")
    assert log.locator("img, script, b").count() == 0
    links = log.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://alpha.example/ok?a=1&b=2")
    expect(links).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(links).to_have_attribute("target", "_blank")
    assert dialogs == []


def test_strict_csp_page_has_no_violations(stage: Stage, page: Page) -> None:
    page.add_init_script(
        "window.violations = []; document.addEventListener("
        "'securitypolicyviolation', (e) => window.violations.push("
        "e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.goto(stage.url("/strict"))
    # The policy lets the widget reach the relay only: the notifications offer asks it,
    # not the page's origin, whether the site serves the push worker.
    with page.expect_response(PUSH_CHECK) as checked:
        open_and_send(page, "Under a strict policy")
    assert checked.value.json() == {"served": False}
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    stage.owner_reply(only_thread(stage), "Still works")
    expect(page.locator(OWNER).last).to_contain_text("Still works")
    assert page.evaluate("window.violations") == []
    # The widget is styled (its constructable stylesheets applied), not raw HTML.
    radius = page.locator(PANEL).evaluate("el => getComputedStyle(el).borderRadius")
    assert radius == "14px"


def test_host_css_does_not_leak_in(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/hostile-css"))
    page.locator(LAUNCHER).click()
    send = page.locator("porch-chat .composer button")
    size = send.evaluate("el => getComputedStyle(el).fontSize")
    background = send.evaluate("el => getComputedStyle(el).backgroundColor")
    assert size != "40px" and background != "rgb(255, 0, 0)"
    host = page.locator("#host-button").evaluate("el => getComputedStyle(el).fontSize")
    assert host == "40px"  # and ours does not leak out


def test_keyboard_only_flow(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/"))
    expect(page.locator(LAUNCHER)).to_be_visible()
    for _ in range(10):  # Tab until the launcher has focus
        page.keyboard.press("Tab")
        if (
            page.evaluate("document.activeElement?.shadowRoot?.activeElement?.className")
            == "launcher"
        ):
            break
    else:
        raise AssertionError("Tab never reached the launcher")
    page.keyboard.press("Enter")
    expect(page.locator(PANEL)).to_be_visible()
    expect(page.locator(INPUT)).to_be_focused()
    page.keyboard.type("Typed with the keyboard")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    page.keyboard.press("Enter")
    expect(page.locator(STORED_VISITOR)).to_contain_text("Typed with the keyboard\nsecond line")
    page.keyboard.press("Escape")
    expect(page.locator(PANEL)).to_be_hidden()
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.className") == "launcher"
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-expanded", "false")


def test_french_page_speaks_french(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/fr"))
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-label", "Ouvrir la discussion")
    page.locator(LAUNCHER).click()
    expect(page.locator(INPUT)).to_have_attribute("placeholder", "Écrivez un message…")
    expect(page.locator("porch-chat .composer button")).to_have_text("Envoyer")
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-label", "Écrire à Alpha Bakery")
    open_and_send(page, "Bonjour")
    expect(page.locator("porch-chat .day")).to_have_text("Aujourd’hui")
    screenshot(page, "open-french")


def test_mobile_panel_is_full_screen_and_keeps_focus(browser: Browser, stage: Stage) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.goto(stage.url("/"))
    page.locator(LAUNCHER).click()
    page.locator(PANEL).evaluate("el => Promise.all(el.getAnimations().map(a => a.finished))")
    box = page.locator(PANEL).bounding_box()
    assert box == {"x": 0, "y": 0, "width": 390, "height": 844}
    for _ in range(8):  # Tab cycles inside the panel, never back to the page
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.tagName") == "PORCH-CHAT"
    screenshot(page, "mobile")
    context.close()


def test_dark_mode_screenshots(browser: Browser, stage: Stage) -> None:
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)  # type: ignore[arg-type]
        page = context.new_page()
        page.goto(stage.url("/"))
        open_and_send(page, f"Hello in {scheme} mode, see https://alpha.example")
        expect(page.locator(STORED_VISITOR)).to_have_count(1)
        background = page.locator(PANEL).evaluate("el => getComputedStyle(el).backgroundColor")
        assert background == ("rgb(255, 255, 255)" if scheme == "light" else "rgb(27, 31, 36)")
        screenshot(page, f"open-{scheme}")
        context.close()


def test_no_serious_accessibility_violations(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/"))
    open_and_send(page, "Checking accessibility, https://alpha.example")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    stage.owner_reply(only_thread(stage), "Thanks for checking")
    expect(page.locator(OWNER).last).to_contain_text("Thanks")
    axe = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()
    page.evaluate(axe)
    result: dict[str, Any] = page.evaluate(
        "axe.run({include: [['porch-chat']]}, {resultTypes: ['violations']})"
    )
    serious = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)[:3000]


def test_js_api_queue_before_load(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/api"))
    expect(page.locator(LAUNCHER)).to_be_visible()
    page.locator("#ask").click()  # Porch('open') from the page's own button
    expect(page.locator(PANEL)).to_be_visible()
    page.evaluate("Porch('send', 'Sent through the API')")
    expect(page.locator(STORED_VISITOR)).to_contain_text("Sent through the API")
    page.evaluate("Porch('close')")
    expect(page.locator(PANEL)).to_be_hidden()
    stage.owner_reply(only_thread(stage), "Reply for the API page")
    expect(page.locator("#unread")).to_have_text("1")
    page.evaluate("Porch('setLanguage', 'fr'); Porch('open')")
    expect(page.locator(INPUT)).to_have_attribute("placeholder", "Écrivez un message…")
    expect(page.locator("#unread")).to_have_text("0")
    events = page.evaluate("window.events")
    assert events[:2] == ["open", "message:visitor"]
    assert "close" in events and "message:owner" in events


def test_email_offer_after_the_first_message(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/"))
    page.locator(LAUNCHER).click()
    expect(page.locator(PANEL)).to_be_visible()
    expect(page.locator("porch-chat .contact")).to_be_hidden()  # nothing to follow yet
    open_and_send(page, "Can you call me back?")
    contact = page.locator("porch-chat .contact")
    expect(contact).to_be_visible()
    contact.locator("input[type=email]").fill("not an address")
    contact.locator("button[type=submit]").click()
    expect(contact.locator("[role=alert]")).to_have_text("Please check the email address.")
    contact.locator("input[type=text]").fill("Ann Martin")
    contact.locator("input[type=email]").fill("ann@example.com")
    contact.locator("button[type=submit]").click()
    expect(contact).to_be_hidden()
    expect(page.locator("porch-chat .notice")).to_contain_text("ann@example.com")
    visitor = stage.threads()[0]["visitor"]
    assert visitor["name"] == "Ann Martin" and visitor["email"] == "ann@example.com"
    page.reload()
    page.locator(LAUNCHER).click()
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    expect(contact).to_be_hidden()  # answered once, not asked again


def test_a_click_while_the_chat_is_still_loading_opens_it(stage: Stage, page: Page) -> None:
    """Hovering starts the load; a click before the chat is ready is kept, not lost."""
    held: list[Route] = []
    page.route("**/v1/sites/alpha/config", lambda route: held.append(route))  # it waits
    page.goto(stage.url("/"))
    with page.expect_request("**/v1/sites/alpha/config"):
        page.locator(LAUNCHER).hover()  # the chat's code loads and asks for the site
    page.locator(LAUNCHER).click()
    expect(page.locator(PANEL)).to_be_hidden()  # nothing to show yet
    for route in held:
        route.continue_()
    expect(page.locator(PANEL)).to_be_visible()
