"""The owner's inbox page in real Chromium, against a real relay: signed in through a
link read from a real SMTP server, answering a visitor whose widget runs in another
browser context, on a host page of another origin."""

from __future__ import annotations

import json
import queue
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.e2e.conftest import Stage, running_stage, screenshot
from tests.e2e.test_widget import INPUT, LAUNCHER, OWNER, PANEL, open_and_send
from tests.e2e.test_widget_lifecycle import closed
from tests.mail.smtp_sink import SinkServer
from tests.support import BETA, seed_sites

OWNER_EMAIL = "owner@alpha.example"
LOGIN_LINK = re.compile(r"https?://\S+?/inbox/?#login=[A-Za-z0-9_.\-]+")
SESSION = "/inbox/api/session"
ITEMS = ".threads .thread-item"
TITLE = "Porch inbox"
FORBIDDEN = 403
UNAUTHORIZED = 401
UNPROCESSABLE = 422
SIGNED_OUT = frozenset({UNAUTHORIZED})  # statuses a test expects Chromium to log
REFUSED_VALUE = frozenset({UNPROCESSABLE})
PHONE = {"width": 390, "height": 844}
MIN_TARGET = 44  # px: the smallest touch target on a phone


@pytest.fixture
def mail_stage(tmp_path: Path, sink: SinkServer) -> Iterator[Stage]:
    with running_stage(tmp_path, smtp_url=sink.url, reply_domain="reply.example") as stage:
        yield stage


@contextmanager
def device(
    browser: Browser, *, allow: frozenset[int] = frozenset(), **options: Any
) -> Iterator[Page]:
    """A browser context of its own, whose page must log no error. Chromium logs every
    refused request by itself: the signed-out page's session check (401) is allowed,
    and the statuses in `allow` from any request of the test that expects them."""
    context = browser.new_context(**options)
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = re.search(r"status of (\d+)", message.text)
        if status and int(status.group(1)) in allow:
            return
        if (
            status
            and status.group(1) == "401"
            and message.location.get("url", "").endswith(SESSION)
        ):
            return
        errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", on_console)
    try:
        yield page
    finally:
        context.close()
    assert errors == [], errors


def login_link(sink: SinkServer, to: str) -> str:
    """The link of the next sign-in email to `to` (other mail in between is skipped)."""
    while True:
        try:
            mail = sink.sink.received.get(timeout=10)
        except queue.Empty:
            raise AssertionError(f"no sign-in email reached {to}") from None
        if to not in str(mail["To"]):
            continue
        part = mail.get_body(("plain",))
        assert part is not None
        found = LOGIN_LINK.search(part.get_content())
        if found:
            return found.group(0)


def sign_in(page: Page, stage: Stage, sink: SinkServer, email: str = OWNER_EMAIL) -> str:
    """Ask for a link on the page, open it from the email, press Sign in: the app."""
    page.goto(stage.relay.url + "/inbox")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Send me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    link = login_link(sink, email)
    page.goto("about:blank")
    page.goto(link)  # as from the email: a fresh load
    expect(page.get_by_text(f"Sign in as {email}?")).to_be_visible()
    assert "#login" not in page.url  # the token left the address bar at once
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()
    return link


def visitor_writes(stage: Stage, body: str, **extra: Any) -> dict[str, Any]:
    """A visitor starts a thread over HTTP (no browser needed): {token, thread, message}."""
    response = httpx.post(
        f"{stage.relay.url}/v1/sites/alpha/threads",
        json={"body": body, **extra},
        headers={"origin": stage.pages},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def thread_id(started: dict[str, Any]) -> str:
    return str(started["thread"]["id"])


def status_of(stage: Stage, thread: str) -> str:
    with stage.relay.db() as db:
        row = db.execute("SELECT status FROM threads WHERE id = ?", (thread,))
        return str(row.fetchone()["status"])


def owner_read_seq(stage: Stage, thread: str) -> int:
    with stage.relay.db() as db:
        row = db.execute("SELECT owner_read_seq FROM threads WHERE id = ?", (thread,))
        return int(row.fetchone()[0])


def record_posts(page: Page) -> list[str]:
    """The path of every POST the page makes from now on."""
    posts: list[str] = []
    page.on("request", lambda r: posts.append(urlsplit(r.url).path) if r.method == "POST" else None)
    return posts


def item(page: Page, text: str) -> Any:
    return page.locator(ITEMS, has_text=text)


def inbox_api(page: Page, path: str) -> Any:
    """GET from the inbox API with the page's own cookie."""
    response = page.request.get(page.url.split("/inbox")[0] + "/inbox/api" + path)
    assert response.ok, response.text()
    return response.json()


def assert_accessible(page: Page) -> None:
    axe = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()
    page.evaluate(axe)
    result: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)[:3000]


# -- the conversation -----------------------------------------------------------------


def test_a_visitor_writes_the_owner_answers_live(
    browser: Browser, mail_stage: Stage, sink: SinkServer
) -> None:
    stage = mail_stage
    with device(browser) as inbox, device(browser) as visitor:
        with inbox.expect_websocket() as opened:
            sign_in(inbox, stage, sink)
        sent_frames: list[dict[str, Any]] = []
        received: list[dict[str, Any]] = []
        opened.value.on("framesent", lambda payload: sent_frames.append(json.loads(payload)))
        opened.value.on("framereceived", lambda payload: received.append(json.loads(payload)))
        posts = record_posts(inbox)
        cookie = next(c for c in inbox.context.cookies() if c["name"] == "porch_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        expect(inbox.get_by_text("No open conversations.")).to_be_visible()
        assert_accessible(inbox)  # the empty list and the empty thread pane

        # A visitor writes from the widget: it lands in the list live, unread.
        visitor.goto(stage.url("/?from=pricing"))
        open_and_send(visitor, "Do you still have crème brûlée today?")
        row = item(inbox, "crème brûlée")
        expect(row).to_have_count(1)
        expect(row.locator(".badge")).to_contain_text("1")
        expect(row.locator(".name")).to_have_text("Visitor")
        expect(row.locator(".where")).to_have_text("/?from=pricing")
        expect(inbox).to_have_title(f"(1) {TITLE}")
        screenshot(inbox, "inbox-list")

        # Opened while the page is visible: read, here and on the relay.
        row.locator("a").click()
        expect(inbox.get_by_role("heading", name="Visitor", exact=True)).to_be_visible()
        expect(row.locator(".badge")).to_be_hidden()
        expect(inbox).to_have_title(TITLE)
        log = inbox.get_by_role("log")
        expect(log.locator(".message.visitor")).to_contain_text("Do you still have crème brûlée")
        thread = inbox.url.partition("#t=")[2]
        # The relay recorded it: the visitor's widget says "Seen", the API says 0 unread.
        expect(visitor.locator("porch-chat .message.visitor .seen")).to_be_visible()
        listed = inbox_api(inbox, "/threads")["threads"]
        assert [(t["id"], t["unread"]) for t in listed] == [(thread, 0)]

        # The visitor types: the owner sees it.
        visitor.locator(INPUT).fill("Also")
        expect(inbox.locator(".typing")).to_have_text("Visitor is typing…")

        # The reply box grows with its text.
        reply = inbox.get_by_label("Reply to Visitor")
        one_line = height(reply)
        reply.fill("Yes, until 6 pm.\nShall I keep one for you?")
        assert height(reply) > one_line

        # Enter sends, over the socket; the visitor's widget gets it live and sees it.
        reply.press("Enter")
        expect(reply).to_have_value("")
        assert height(reply) == one_line
        expect(visitor.locator(OWNER).last).to_contain_text("Shall I keep one for you?")
        owner_message = log.locator(".message.owner").last
        expect(owner_message).not_to_have_class(re.compile("pending"))
        expect(owner_message.locator(".meta")).to_have_text("Seen")
        expect(owner_message.locator("time")).to_have_count(1)  # stored: it has its time
        sends = [f for f in sent_frames if f["type"] == "send"]
        assert [(f["thread"], f["body"]) for f in sends] == [
            (thread, "Yes, until 6 pm.\nShall I keep one for you?")
        ]
        assert re.fullmatch(r"[0-9a-f-]{36}", sends[0]["client_id"])
        acks = [f for f in received if f["type"] == "ack"]
        assert [(f["client_id"], f["thread"]) for f in acks] == [(sends[0]["client_id"], thread)]
        assert not [path for path in posts if path.endswith("/messages")]  # no HTTP needed
        # Shift+Enter breaks the line instead of sending.
        reply.press("Shift+Enter")
        expect(log.locator(".message.owner")).to_have_count(1)
        reply.fill("")

        # The visitor answers: it arrives in the open thread, read at once.
        visitor.locator(INPUT).fill("Yes please, under the name Ann.")
        visitor.locator(INPUT).press("Enter")
        expect(log.locator(".message.visitor").last).to_contain_text("under the name Ann")
        expect(inbox.locator("#announcer")).to_contain_text("New message from Visitor")
        expect(row.locator(".badge")).to_be_hidden()
        expect(inbox).to_have_title(TITLE)
        screenshot(inbox, "inbox-thread")
        assert_accessible(inbox)

    stored = [(m["author"], m["body"], m["via"]) for m in stage.messages(thread)]
    assert stored == [
        ("visitor", "Do you still have crème brûlée today?", "widget"),
        ("owner", "Yes, until 6 pm.\nShall I keep one for you?", "inbox"),
        ("visitor", "Yes please, under the name Ann.", "widget"),
    ]
    assert stage.messages(thread)[1]["client_id"] == sends[0]["client_id"]


def height(locator: Any) -> float:
    box = locator.bounding_box()
    assert box is not None
    return float(box["height"])


def test_replies_and_reads_go_over_http_while_the_socket_is_down(
    browser: Browser, mail_stage: Stage, sink: SinkServer
) -> None:
    stage = mail_stage
    thread = thread_id(visitor_writes(stage, "Is anyone there?"))
    with device(browser) as inbox:
        # The socket opens but the relay never answers: no "ready", so not connected.
        inbox.route_web_socket(re.compile(r"/inbox/live$"), lambda ws: None)
        sign_in(inbox, stage, sink)
        posts = record_posts(inbox)
        item(inbox, "anyone there").locator("a").click()
        expect(inbox).to_have_title(TITLE)
        reply = inbox.get_by_label("Reply to Visitor")
        reply.fill("Yes, we are here.")
        reply.press("Enter")
        stored = inbox.get_by_role("log").locator(".message.owner")
        expect(stored).to_contain_text("Yes, we are here.")
        expect(stored).not_to_have_class(re.compile("pending"))
        assert posts == [
            f"/inbox/api/threads/{thread}/read",
            f"/inbox/api/threads/{thread}/messages",
        ]
    messages = stage.messages(thread)
    assert [(m["author"], m["body"]) for m in messages] == [
        ("visitor", "Is anyone there?"),
        ("owner", "Yes, we are here."),
    ]
    assert owner_read_seq(stage, thread) >= messages[0]["seq"]


def test_several_sites_in_one_inbox(browser: Browser, mail_stage: Stage, sink: SinkServer) -> None:
    stage = mail_stage
    seed_sites(
        stage.relay.config, [replace(BETA, owner_emails=(OWNER_EMAIL,), origins=(stage.pages,))]
    )
    visitor_writes(stage, "Croissants for tomorrow?")
    response = httpx.post(
        f"{stage.relay.url}/v1/sites/beta/threads",
        json={"body": "Mon évier fuit"},
        headers={"origin": stage.pages},
    )
    assert response.status_code == 201, response.text
    with device(browser) as inbox:
        sign_in(inbox, stage, sink)
        picker = inbox.get_by_role("combobox", name="Website")
        expect(picker.locator("option")).to_have_text(
            ["All websites", "Alpha Bakery", "Beta Plumbing"]
        )
        expect(inbox.locator(ITEMS + " .where")).to_have_text(["Beta Plumbing", "Alpha Bakery"])
        picker.select_option("beta")
        expect(inbox.locator(ITEMS)).to_have_count(1)
        item(inbox, "évier").locator("a").click()
        expect(inbox.locator(".thread .subtitle")).to_have_text("Beta Plumbing · Open")
        picker.select_option("")
        expect(inbox.locator(ITEMS)).to_have_count(2)
        # Settings: one site at a time, the open thread's first.
        inbox.get_by_role("button", name="Settings").click()
        dialog = inbox.get_by_role("dialog", name="Settings")
        dialog.get_by_role("tab", name="Website").click()
        expect(dialog.get_by_role("combobox", name="Website")).to_have_value("beta")
        expect(dialog.get_by_label("Name", exact=True)).to_have_value("Beta Plumbing")
        dialog.get_by_role("combobox", name="Website").select_option("alpha")
        expect(dialog.get_by_label("Name", exact=True)).to_have_value("Alpha Bakery")


def test_search_close_reopen_and_keyboard(
    browser: Browser, mail_stage: Stage, sink: SinkServer
) -> None:
    stage = mail_stage
    first = thread_id(visitor_writes(stage, "Une crème brûlée pour samedi ?"))
    second = thread_id(visitor_writes(stage, "Do you deliver to the old town?"))
    third = thread_id(visitor_writes(stage, "Is the rye bread gluten-free?"))
    with device(browser) as inbox:
        sign_in(inbox, stage, sink)
        expect(inbox.locator(ITEMS + " .preview")).to_have_text(
            [
                "Is the rye bread gluten-free?",
                "Do you deliver to the old town?",
                "Une crème brûlée pour samedi ?",
            ]
        )
        expect(inbox).to_have_title(f"(3) {TITLE}")

        # j / k move through the list, newest first; each thread shown is read.
        log = inbox.get_by_role("log")
        inbox.keyboard.press("j")
        expect(inbox).to_have_url(re.compile(f"#t={third}$"))
        expect(log).to_contain_text("gluten-free")
        inbox.keyboard.press("j")
        expect(inbox).to_have_url(re.compile(f"#t={second}$"))
        expect(log).to_contain_text("old town")
        inbox.keyboard.press("k")
        expect(inbox).to_have_url(re.compile(f"#t={third}$"))
        expect(inbox).to_have_title(f"(1) {TITLE}")  # two opened, one still unread

        # r goes to the reply box; keys typed there are text; Escape leaves it.
        inbox.keyboard.press("r")
        reply = inbox.get_by_label("Reply to Visitor")
        expect(reply).to_be_focused()
        inbox.keyboard.type("jk")
        expect(reply).to_have_value("jk")
        expect(inbox).to_have_url(re.compile(f"#t={third}$"))
        inbox.keyboard.press("Escape")
        expect(reply).not_to_be_focused()

        # e closes the open thread: gone from "Open", listed under "Closed".
        inbox.keyboard.press("e")
        expect(inbox.locator(".thread .subtitle")).to_have_text("Alpha Bakery · Closed")
        expect(item(inbox, "gluten-free")).to_have_count(0)
        inbox.get_by_role("radio", name="Closed").check()
        expect(inbox.locator(ITEMS)).to_have_count(1)
        expect(item(inbox, "gluten-free")).to_have_count(1)
        inbox.get_by_role("radio", name="All").check()
        expect(inbox.locator(ITEMS)).to_have_count(3)
        assert status_of(stage, third) == "closed"
        # Reopened with the button, back under "Open"; e toggles again.
        inbox.get_by_role("button", name="Reopen").click()
        expect(inbox.locator(".thread .subtitle")).to_have_text("Alpha Bakery · Open")
        inbox.get_by_role("radio", name="Open").check()
        expect(inbox.locator(ITEMS)).to_have_count(3)
        inbox.keyboard.press("e")
        expect(inbox.get_by_role("button", name="Reopen")).to_be_visible()
        inbox.keyboard.press("e")
        expect(inbox.get_by_role("button", name="Close", exact=True)).to_be_visible()

        # ? lists the shortcuts; / searches, accents folded: "creme" finds "crème".
        inbox.keyboard.press("?")
        dialog = inbox.get_by_role("dialog", name="Keyboard shortcuts")
        expect(dialog).to_be_visible()
        expect(dialog.locator("kbd")).to_have_text(["j", "k", "r", "e", "/", "?", "Esc"])
        inbox.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        inbox.keyboard.press("/")
        search = inbox.get_by_role("searchbox", name="Search conversations")
        expect(search).to_be_focused()
        inbox.keyboard.type("creme")
        expect(inbox.locator(ITEMS)).to_have_count(1)
        expect(inbox.locator(ITEMS + " mark")).to_have_text("crème")
        expect(inbox.locator(ITEMS + " a")).to_have_attribute("href", f"#t={first}")
        screenshot(inbox, "inbox-search")
        search.fill("brulee")
        expect(inbox.locator(ITEMS + " mark")).to_have_text("brûlée")
        search.fill("zzzz")
        expect(inbox.get_by_text("No conversation matches “zzzz”.")).to_be_visible()
        search.fill("")
        expect(inbox.locator(ITEMS)).to_have_count(3)


def test_older_threads_come_with_a_button(
    browser: Browser, mail_stage: Stage, sink: SinkServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = mail_stage
    monkeypatch.setattr("relay.store.inbox.INBOX_PAGE", 2)  # the relay runs in this process
    oldest = visitor_writes(stage, "The oldest one")
    visitor_writes(stage, "The middle one")
    visitor_writes(stage, "The newest one")
    with device(browser) as inbox:
        sign_in(inbox, stage, sink)
        expect(inbox.locator(ITEMS)).to_have_count(2)
        older = inbox.get_by_role("button", name="Show older conversations")
        older.focus()
        inbox.keyboard.press("Enter")
        expect(inbox.locator(ITEMS + " .preview")).to_have_text(
            ["The newest one", "The middle one", "The oldest one"]
        )
        expect(older).to_have_count(0)  # nothing older left
        expect(item(inbox, "The oldest one").locator("a")).to_be_focused()
        for _ in range(3):  # j walks on into the added threads, however quick
            inbox.keyboard.press("j")
        expect(inbox).to_have_url(re.compile(f"#t={thread_id(oldest)}$"))
        # Live news still moves a thread to the top, listed once.
        response = httpx.post(
            f"{stage.relay.url}/v1/thread/messages",
            json={"body": "Still there?"},
            headers={"origin": stage.pages, "authorization": f"Bearer {oldest['token']}"},
        )
        assert response.status_code == 201, response.text
        expect(inbox.locator(ITEMS + " .preview")).to_have_text(
            ["Still there?", "The newest one", "The middle one"]
        )


# -- settings -----------------------------------------------------------------------------


def test_settings_reach_the_widget_and_errors_name_the_field(
    browser: Browser, mail_stage: Stage, sink: SinkServer
) -> None:
    stage = mail_stage
    with device(browser, allow=REFUSED_VALUE) as inbox:
        sign_in(inbox, stage, sink)
        inbox.get_by_role("button", name="Settings").click()
        dialog = inbox.get_by_role("dialog", name="Settings")
        dialog.get_by_role("tab", name="Website").click()
        expect(dialog.get_by_label("Code for your website")).to_have_value(
            re.compile(r'<script src="http://127\.0\.0\.1:\d+/widget\.js" data-site="alpha"')
        )
        greeting = "Welcome to Alpha Bakery! Ask us anything."
        dialog.get_by_label("Greeting (English)").fill(greeting)
        dialog.get_by_label("Greeting (French)").fill("Bienvenue chez Alpha !")
        dialog.get_by_role("button", name="Save").click()
        expect(dialog.get_by_text("Saved.")).to_be_visible()

        # A fresh page of the site: the widget greets with the new text.
        with device(browser) as visitor:
            visitor.goto(stage.url("/"))
            visitor.locator(LAUNCHER).click()
            expect(visitor.locator(PANEL)).to_contain_text(greeting)

        # A value the relay refuses: its message, next to the form, on the named field.
        timezone = dialog.get_by_label("Time zone")
        timezone.fill("Mars/Olympus")
        dialog.get_by_role("button", name="Save").click()
        error = dialog.locator("#site-error")
        expect(error).to_contain_text("timezone")
        expect(timezone).to_have_attribute("aria-invalid", "true")
        expect(timezone).to_be_focused()
        site = inbox_api(inbox, "/session")["sites"][0]
        assert site["settings"]["timezone"] == "UTC"  # nothing changed
        assert site["settings"]["greeting"] == greeting
        timezone.fill("Europe/Paris")

        # Hours the page cannot read are refused before sending, naming the day.
        monday = dialog.get_by_label("Monday")
        monday.fill("9am to 5pm")
        dialog.get_by_role("button", name="Save").click()
        expect(error).to_have_text("Monday: “9am to 5pm” is not a time range like 09:00-12:00.")
        expect(monday).to_be_focused()
        monday.fill("9-12, 14:00-18:30")
        dialog.get_by_label("Saturday").fill("09:00-13:00")
        dialog.get_by_label("Closed days").fill("2026-12-25\n2027-01-01")
        dialog.get_by_label("Expected reply time (minutes)").fill("30")
        dialog.get_by_label("Synonyms").fill("coeliac, celiac ,gluten-free\n\ncar park, parking")
        dialog.get_by_role("button", name="Save").click()
        expect(dialog.get_by_text("Saved.")).to_be_visible()
        expect(monday).to_have_value("09:00-12:00, 14:00-18:30")
        settings = inbox_api(inbox, "/session")["sites"][0]["settings"]
        assert settings["timezone"] == "Europe/Paris"
        assert settings["hours"]["mon"] == [["09:00", "12:00"], ["14:00", "18:30"]]
        assert settings["hours"]["sat"] == [["09:00", "13:00"]]
        assert settings["hours"]["sun"] == []
        assert settings["closed_days"] == ["2026-12-25", "2027-01-01"]
        assert settings["reply_time_minutes"] == 30
        assert settings["synonyms"] == ["coeliac, celiac, gluten-free", "car park, parking"]
        assert settings["greetings"]["fr"] == "Bienvenue chez Alpha !"
        screenshot(inbox, "inbox-settings")
        assert_accessible(inbox)  # the settings dialog, its form and tabs

        # The owner's language: saved, and the whole page switches to it.
        dialog.get_by_role("tab", name="Account").click()
        dialog.get_by_label("Language", exact=True).select_option("fr")
        dialog.get_by_role("button", name="Save").click()
        french = inbox.get_by_role("dialog", name="Réglages")
        expect(french.get_by_role("tab", name="Compte")).to_be_visible()
        expect(french.get_by_text("Enregistré.")).to_be_visible()
        assert inbox.evaluate("document.documentElement.lang") == "fr"
        french.get_by_role("button", name="Fermer").click()
        expect(inbox).to_have_title("Messagerie Porch")
        expect(inbox.locator(".list-status")).to_have_text(
            "Aucune conversation ouverte. Les nouveaux messages de votre site s’affichent ici."
        )
        expect(
            inbox.get_by_role("heading", name="Aucune conversation sélectionnée")
        ).to_be_visible()
        expect(inbox.get_by_role("radio", name="Ouvertes")).to_be_checked()
        assert inbox_api(inbox, "/session")["language"] == "fr"
        inbox.reload()
        expect(
            inbox.get_by_role("searchbox", name="Rechercher dans les conversations")
        ).to_be_visible()
        screenshot(inbox, "inbox-french")
        assert_accessible(inbox)


# -- security -----------------------------------------------------------------------------


def test_csrf_tampered_cookies_and_used_links_are_refused(
    browser: Browser, mail_stage: Stage, sink: SinkServer
) -> None:
    stage = mail_stage
    relay = stage.relay.url
    thread = thread_id(visitor_writes(stage, "Hello?"))
    with device(browser, allow=SIGNED_OUT) as inbox:
        link = sign_in(inbox, stage, sink)
        cookie = next(c for c in inbox.context.cookies() if c["name"] == "porch_session")
        jar = {"porch_session": cookie["value"]}
        own = {"origin": relay}
        me = httpx.get(relay + SESSION, cookies=jar).json()
        url = f"{relay}/inbox/api/threads/{thread}/status"
        closing = {"status": "closed"}

        # No CSRF header, a wrong one, or the right one from another origin: refused.
        for headers in (
            own,
            {**own, "x-csrf-token": "0" * 64},
            {"origin": "https://evil.example", "x-csrf-token": me["csrf"]},
            {"x-csrf-token": me["csrf"]},  # no Origin at all
        ):
            response = httpx.post(url, json=closing, cookies=jar, headers=headers)
            assert response.status_code == FORBIDDEN, (headers, response.text)
            assert response.json()["error"] == "forbidden"
        refused = httpx.post(
            f"{relay}/inbox/api/threads/{thread}/messages",
            json={"body": "forged", "client_id": "c1"},
            cookies=jar,
            headers=own,
        )
        assert refused.status_code == FORBIDDEN
        assert status_of(stage, thread) == "open"
        assert stage.relay.counts()["messages"] == 1
        # The same request with the header and from the inbox's own origin goes through.
        allowed = httpx.post(
            url, json=closing, cookies=jar, headers={**own, "x-csrf-token": me["csrf"]}
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["status"] == "closed"

        # A session cookie altered by one character: not signed in, in HTTP and on the page.
        value = cookie["value"]
        i = len(value) - 5
        tampered = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]
        response = httpx.get(relay + SESSION, cookies={"porch_session": tampered})
        assert response.status_code == UNAUTHORIZED
        assert response.json()["error"] == "unauthorized"
        inbox.context.clear_cookies()
        inbox.context.add_cookies([{**cookie, "value": tampered}])  # type: ignore[typeddict-item]
        inbox.reload()
        expect(inbox.get_by_role("button", name="Send me a sign-in link")).to_be_visible()

        # The sign-in link again: used once already, so refused with the reason.
        inbox.goto("about:blank")
        inbox.goto(link)
        inbox.get_by_role("button", name="Sign in").click()
        expect(inbox.get_by_role("status")).to_have_text(
            "This sign-in link has already been used: each link works once. "
            "Ask for a new one below."
        )
        expect(inbox.get_by_label("Email address")).to_have_value(OWNER_EMAIL)


def test_revoking_a_session_signs_the_other_device_out(
    browser: Browser, mail_stage: Stage, sink: SinkServer
) -> None:
    stage = mail_stage
    with device(browser, allow=SIGNED_OUT) as laptop, device(browser, allow=SIGNED_OUT) as phone:
        sign_in(laptop, stage, sink)
        with phone.expect_websocket() as opened:
            sign_in(phone, stage, sink)
        socket = opened.value

        laptop.get_by_role("button", name="Settings").click()
        dialog = laptop.get_by_role("dialog", name="Settings")
        dialog.get_by_role("tab", name="Devices").click()
        sessions = dialog.locator(".sessions li")
        expect(sessions).to_have_count(2)
        expect(sessions.first).to_contain_text("This device")
        expect(sessions.first.get_by_role("button")).to_have_text("Sign out")
        screenshot(laptop, "inbox-devices")
        sessions.nth(1).get_by_role("button", name="Revoke").click()
        expect(sessions).to_have_count(1)

        # The phone's socket is closed by the relay; the page says why and asks again.
        expect(phone.get_by_text("You were signed out. Sign in again to continue.")).to_be_visible()
        closed(socket)  # its close may reach us after the page has shown it
        response = phone.request.get(stage.relay.url + SESSION)
        assert response.status == UNAUTHORIZED

        # Sign out everywhere: asked to confirm, then this device too.
        dialog.get_by_role("button", name="Sign out everywhere").click()
        dialog.get_by_role("button", name="Cancel").click()
        dialog.get_by_role("button", name="Sign out everywhere").click()
        dialog.locator(".confirm").get_by_role("button", name="Sign out everywhere").click()
        expect(laptop.get_by_text("You are signed out on every device.")).to_be_visible()
        assert laptop.request.get(stage.relay.url + SESSION).status == UNAUTHORIZED


# -- notifications -------------------------------------------------------------------------

# Records every permission request and notification; the permission reads "default"
# until the page asks (the context grants it, so the real API works underneath).
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  let asked = false;
  window.permissionRequests = [];
  window.notifications = [];
  class Recording extends Real {
    constructor(title, options) {
      super(title, options);
      window.notifications.push({ title, body: options.body, tag: options.tag, instance: this });
    }
    static get permission() { return asked ? Real.permission : 'default'; }
    static requestPermission() {
      window.permissionRequests.push(document.hidden ? 'hidden' : 'visible');
      asked = true;
      return Real.requestPermission();
    }
  }
  window.Notification = Recording;
})();
"""


def test_notifications_are_asked_for_on_click_only(
    browser: Browser, mail_stage: Stage, sink: SinkServer
) -> None:
    stage = mail_stage
    with device(browser) as inbox:
        inbox.context.grant_permissions(["notifications"])
        inbox.context.add_init_script(RECORD_NOTIFICATIONS)
        sign_in(inbox, stage, sink)
        enable = inbox.get_by_role("button", name="Enable notifications")
        expect(enable).to_be_visible()
        assert inbox.evaluate("window.permissionRequests") == []  # never on load
        enable.click()
        expect(enable).to_be_hidden()
        assert inbox.evaluate("window.permissionRequests") == ["visible"]

        # A thread is open; a visitor writes in another one: a notification for it.
        mine = visitor_writes(stage, "First question")
        item(inbox, "First question").locator("a").click()
        expect(inbox.get_by_role("log")).to_contain_text("First question")
        other = thread_id(visitor_writes(stage, "Are you open on Sunday?"))
        expect(item(inbox, "Are you open on Sunday?")).to_have_count(1)
        # (Announced to screen readers in the next frame after the notification.)
        expect(inbox.locator("#announcer")).to_have_text(
            "New message from Visitor: Are you open on Sunday?"
        )
        notes = inbox.evaluate(
            "window.notifications.map(({title, body, tag}) => ({title, body, tag}))"
        )
        # (The first message came while no thread was open: the list in view showed it.)
        assert notes == [
            {"title": "Visitor · Alpha Bakery", "body": "Are you open on Sunday?", "tag": other}
        ]
        # A message in the open, visible thread is no news: no notification.
        httpx.post(
            f"{stage.relay.url}/v1/thread/messages",
            json={"body": "Also, do you sell gift cards?"},
            headers={"origin": stage.pages, "authorization": f"Bearer {mine['token']}"},
        ).raise_for_status()
        expect(inbox.get_by_role("log")).to_contain_text("gift cards")
        assert inbox.evaluate("window.notifications.length") == 1
        # Clicking the notification opens its thread.
        inbox.evaluate("window.notifications[0].instance.onclick()")
        expect(inbox).to_have_url(re.compile(f"#t={other}$"))
        expect(inbox.get_by_role("log")).to_contain_text("Are you open on Sunday?")


# -- phone, French ----------------------------------------------------------------------------


def test_phone_single_column_in_french(
    browser: Browser, mail_stage: Stage, sink: SinkServer
) -> None:
    stage = mail_stage
    relay = stage.relay.url
    # The owner chose French (saved through the API, from another session).
    token = stage.relay.tokens.login_token(OWNER_EMAIL)
    with httpx.Client(base_url=relay, headers={"origin": relay}) as api:
        me = api.post(SESSION, json={"token": token}).json()
        saved = api.post(
            "/inbox/api/me", json={"language": "fr"}, headers={"x-csrf-token": me["csrf"]}
        )
        assert saved.json()["language"] == "fr", saved.text
    visitor_writes(
        stage, "Bonjour, faites-vous des gâteaux sans gluten ?", page=stage.url("/gateaux")
    )

    with device(browser, viewport=PHONE, locale="fr-FR", has_touch=True) as phone:
        phone.goto(relay + "/inbox")
        expect(
            phone.get_by_role("heading", name="Connectez-vous à votre messagerie")
        ).to_be_visible()
        phone.get_by_label("Adresse e-mail").fill(OWNER_EMAIL)
        phone.get_by_role("button", name="Envoyez-moi un lien de connexion").click()
        expect(phone.get_by_role("heading", name="Consultez vos e-mails")).to_be_visible()
        screenshot(phone, "inbox-phone-check-email")
        assert_accessible(phone)
        phone.goto(login_link(sink, OWNER_EMAIL))
        expect(phone.get_by_text(f"Se connecter en tant que {OWNER_EMAIL} ?")).to_be_visible()
        phone.get_by_role("button", name="Se connecter").click()

        # One column: the list, full width; no thread pane beside it.
        conversations = phone.get_by_role("navigation", name="Conversations")
        expect(conversations).to_be_visible()
        expect(phone).to_have_title("(1) Messagerie Porch")
        box = conversations.bounding_box()
        assert box is not None and box["width"] == PHONE["width"]
        expect(phone.get_by_role("heading", name="Aucune conversation sélectionnée")).to_be_hidden()
        assert_targets(phone)
        screenshot(phone, "inbox-phone-list")

        # A thread takes the whole screen, with a way back.
        item(phone, "sans gluten").locator("a").click()
        expect(conversations).to_be_hidden()
        log = phone.get_by_role("log")
        expect(log).to_contain_text("gâteaux sans gluten")
        expect(phone.locator(".visitor-card")).to_contain_text("/gateaux")
        back = phone.get_by_role("button", name="Retour aux conversations")
        expect(back).to_be_visible()
        phone.get_by_label("Répondre à Visiteur").fill("Oui, sur commande.")
        phone.get_by_role("button", name="Envoyer").click()
        expect(log.locator(".message.owner")).to_contain_text("Oui, sur commande.")
        expect(log.locator(".day")).to_have_text("Aujourd’hui")
        assert_targets(phone)
        screenshot(phone, "inbox-phone-thread")
        back.click()
        expect(conversations).to_be_visible()
        expect(phone.locator(".thread-pane")).to_be_hidden()
        expect(phone.locator(ITEMS + " .preview")).to_have_text(["Vous : Oui, sur commande."])


def assert_targets(page: Page) -> None:
    """Every visible button and link of the app is at least MIN_TARGET px high and wide."""
    small = page.evaluate(
        """(min) => [...document.querySelectorAll(
            '.app :is(button, a, select, summary, .filters label)')]
          .filter((node) => node.checkVisibility() && !node.closest('.bubble, .visitor-card'))
          .map((node) => [node.textContent.trim() || node.ariaLabel, node.getBoundingClientRect()])
          .filter(([, box]) => box.width < min || box.height < min)
          .map(([name, box]) => `${name}: ${Math.round(box.width)}x${Math.round(box.height)}`)""",
        MIN_TARGET,
    )
    assert small == [], small
