"""The <porch-chat> element taken off the page and put back (a single-page app changing
views): while off, nothing of the chat runs (no socket, no title, no chime); back on,
it catches up and works as before."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, WebSocket, expect

from tests.e2e.conftest import Stage
from tests.e2e.test_widget import (
    INPUT,
    LAUNCHER,
    OWNER,
    PANEL,
    STORED_VISITOR,
    only_thread,
    open_and_send,
)

BADGE = "porch-chat .badge"
OUTBOX = "JSON.parse(localStorage.getItem('porch:alpha')).outbox.map((m) => m.body)"
COUNT_RINGS = "window.rings = 0; document.addEventListener('porch-chat-notify', () => rings++)"
TAKE_OFF = "window.chat = document.querySelector('porch-chat'); window.chat.remove()"
PUT_BACK = "document.body.append(window.chat)"
# The page's view of its origin's Web Locks (the chime's lock is held by one tab at a
# time), kept fresh: no event tells a page that another page got or let go of a lock.
WATCH_LOCKS = (
    "(function watch() { navigator.locks.query().then((locks) => {"
    " window.locks = locks; setTimeout(watch, 20); }); })()"
)
ONE_LOCK_WAITING = "window.locks?.held.length === 1 && window.locks.pending.length === 1"
ONE_LOCK_HELD = "window.locks?.held.length === 1 && window.locks.pending.length === 0"


def closed(socket: WebSocket) -> None:
    if not socket.is_closed():
        socket.wait_for_event("close")


def test_taken_off_the_page_and_put_back_the_chat_works(stage: Stage, page: Page) -> None:
    sockets: list[WebSocket] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.goto(stage.url("/"))
    open_and_send(page, "Before the page changed views")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    thread = only_thread(stage)
    stage.owner_reply(thread, "First answer")
    expect(page.locator(OWNER).last).to_contain_text("First answer")  # live
    page.locator("porch-chat .close").click()
    stage.owner_reply(thread, "Second answer")
    expect(page.locator(BADGE)).to_have_text("1")
    expect(page).to_have_title("(1) Alpha Bakery")
    assert len(sockets) == 1

    page.evaluate(TAKE_OFF)
    closed(sockets[0])  # the chat's socket goes with the element
    expect(page).to_have_title("Alpha Bakery")  # the page's own title again
    stage.owner_reply(thread, "Third answer, while the chat was off the page")

    page.evaluate(PUT_BACK)
    # It catches up on what came meanwhile, and is live again.
    expect(page.locator(BADGE)).to_have_text("2")
    expect(page).to_have_title("(2) Alpha Bakery")
    page.locator(LAUNCHER).click()
    expect(page.locator(PANEL)).to_be_visible()
    expect(page.locator(OWNER).last).to_contain_text("Third answer")
    expect(page.locator(BADGE)).to_be_hidden()
    open_and_send(page, "Back on the page")
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    stage.owner_reply(thread, "Fourth answer, live")
    expect(page.locator(OWNER).last).to_contain_text("Fourth answer, live")
    page.keyboard.press("Escape")  # the panel's keys work again
    expect(page.locator(PANEL)).to_be_hidden()
    # One socket before, one after: none was opened while the element was off the page.
    assert len(sockets) == 2 and sockets[0].is_closed() and not sockets[1].is_closed()
    bodies = [m["body"] for m in stage.messages(thread)]
    assert bodies[0] == "Before the page changed views" and bodies[-2] == "Back on the page"


def test_taken_off_twice_and_typed_while_off(stage: Stage, page: Page) -> None:
    """A message sent through the API while the element is off waits in the outbox and
    goes once it is back; a second round trip works like the first."""
    sockets: list[WebSocket] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.goto(stage.url("/"))
    open_and_send(page, "First")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    for round_trip in (1, 2):
        page.evaluate(TAKE_OFF)
        closed(sockets[-1])
        page.evaluate(f"Porch('send', 'Typed while off, {round_trip}')")
        assert page.evaluate(OUTBOX) == [f"Typed while off, {round_trip}"]  # kept, not sent
        page.evaluate(PUT_BACK)
        expect(page.locator(STORED_VISITOR)).to_have_count(1 + round_trip)
        expect(page.locator("porch-chat .message.pending")).to_have_count(0)
    stage.owner_reply(only_thread(stage), "Got all three")
    expect(page.locator(OWNER).last).to_contain_text("Got all three")
    assert [s.is_closed() for s in sockets] == [True, True, False]
    bodies = [m["body"] for m in stage.messages(only_thread(stage))]
    assert bodies == ["First", "Typed while off, 1", "Typed while off, 2", "Got all three"]
    expect(page.locator(INPUT)).to_be_visible()


def test_the_chime_passes_to_another_tab(stage: Stage, context: BrowserContext) -> None:
    """The tab that rings for all holds a lock; off the page, it lets go of it."""
    first, second = context.new_page(), context.new_page()
    first.goto(stage.url("/"))
    open_and_send(first, "From the first tab")
    expect(first.locator(STORED_VISITOR)).to_have_count(1)
    first.locator("porch-chat .close").click()
    second.goto(stage.url("/"))  # a returning visitor: the UI loads at once, the lock waits
    second.evaluate(COUNT_RINGS)
    second.evaluate(WATCH_LOCKS)
    second.wait_for_function(ONE_LOCK_WAITING)  # the first tab holds it, the second waits
    first.evaluate(TAKE_OFF)
    second.wait_for_function(ONE_LOCK_HELD)  # the second tab holds it now
    stage.owner_reply(only_thread(stage), "Heard in the second tab")
    expect(second.locator(BADGE)).to_have_text("1")
    assert second.evaluate("window.rings") == 1
