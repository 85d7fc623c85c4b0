"""Continue on another device: a one-time link, emailed for real (SMTP sink), opened in
another browser context, adopts the conversation there."""

from __future__ import annotations

import queue
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Stage, running_stage, screenshot
from tests.e2e.test_widget import (
    LAUNCHER,
    OWNER,
    PANEL,
    STORED_VISITOR,
    only_thread,
    open_and_send,
)
from tests.mail.smtp_sink import SinkServer

EMAIL = "ann@example.com"
STORAGE = "JSON.parse(localStorage.getItem('porch:alpha'))"
NOTICE = "porch-chat .notice"
HANDOFF = "porch-chat .handoff"
LINK = re.compile(r"https?://\S+?#porch=[A-Za-z0-9_.\-]+")
# A refused resume is a 401 answer, which Chromium logs on the console by itself.
REFUSED_FETCH = "Failed to load resource: the server responded with a status of 401"


@pytest.fixture
def mail_stage(tmp_path: Path, sink: SinkServer) -> Iterator[Stage]:
    with running_stage(
        tmp_path,
        smtp_url=sink.url,
        reply_domain="reply.example",
        owner_notify_delay=0,
        visitor_notify_delay=0,
    ) as stage:
        yield stage


@contextmanager
def device(browser: Browser, *, allow: str | None = None) -> Iterator[Page]:
    """A browser of its own (own storage), whose page must log no error but `allow`."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        yield page
    finally:
        context.close()
    assert [e for e in errors if not (allow and allow in e)] == [], errors


def resume_link(sink: SinkServer, to: str) -> str:
    """The link of the next email to `to` that carries one (owner notifications and
    other mail in between are skipped)."""
    while True:
        try:
            mail = sink.sink.received.get(timeout=10)
        except queue.Empty:
            raise AssertionError(f"no email with a resume link reached {to}") from None
        if to not in str(mail["To"]):
            continue
        part = mail.get_body(("plain",))
        assert part is not None
        found = LINK.search(part.get_content())
        if found:
            return found.group(0)


def tamper(link: str) -> str:
    """The same link with one character of the signed payload changed."""
    page, _, token = link.partition("#porch=")
    i = len(token) // 3
    return f"{page}#porch={token[:i]}{'B' if token[i] != 'B' else 'C'}{token[i + 1 :]}"


def test_continue_on_another_device(browser: Browser, mail_stage: Stage, sink: SinkServer) -> None:
    stage = mail_stage
    start_page = stage.url("/?from=a")
    with device(browser) as a:
        # Device A: a conversation, the email offer answered, then a link asked for.
        a.goto(start_page)
        a.locator(LAUNCHER).click()
        toggle = a.get_by_role("button", name="Continue on another device")
        expect(a.locator(PANEL)).to_be_visible()
        expect(toggle).to_be_hidden()  # nothing to continue yet
        open_and_send(a, "Can I order a cake for Saturday?")
        expect(a.locator(STORED_VISITOR)).to_have_count(1)
        thread = only_thread(stage)
        contact = a.locator("porch-chat .contact")
        contact.locator("input[type=email]").fill(EMAIL)
        contact.locator("button[type=submit]").click()
        expect(contact).to_be_hidden()

        form = a.locator(HANDOFF)
        toggle.click()
        expect(form).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        email = form.locator("input[type=email]")
        expect(email).to_be_focused()
        expect(email).to_have_value(EMAIL)  # the address already left, kept in storage
        form.get_by_role("button", name="Cancel").click()
        expect(form).to_be_hidden()
        expect(toggle).to_be_focused()
        expect(toggle).to_have_attribute("aria-expanded", "false")

        toggle.click()
        email.fill("not an address")
        form.get_by_role("button", name="Send link").click()
        expect(form.locator("[role=alert]")).to_have_text("Please check the email address.")
        screenshot(a, "continue-on-another-device")
        email.fill(EMAIL)
        form.get_by_role("button", name="Send link").click()
        expect(a.locator(NOTICE)).to_have_text(
            f"We sent a link to {EMAIL}. It works once, for 30 minutes."
        )
        expect(form).to_be_hidden()
        expect(toggle).to_be_focused()
        link = resume_link(sink, EMAIL)
        assert link.startswith(start_page + "#porch=")
        # (The owner answers after the link was asked for: the relay writes to an
        # address nobody confirmed once at most, and an unseen reply would use that.)
        stage.owner_reply(thread, "Yes! Which flavour?")
        expect(a.locator(OWNER).last).to_contain_text("Which flavour?")

        # Device B opens the link: the whole thread, and the token gone from the address bar.
        with device(browser) as b:
            b.goto(link)
            expect(b.locator(PANEL)).to_be_visible()
            expect(b.locator(STORED_VISITOR)).to_contain_text("Can I order a cake for Saturday?")
            expect(b.locator(OWNER).last).to_contain_text("Yes! Which flavour?")
            assert b.evaluate("location.hash") == ""
            # Opening the link confirmed the address: B does not ask for it again.
            expect(b.locator("porch-chat .contact")).to_be_hidden()
            assert b.url == start_page  # path and query kept
            assert b.evaluate(STORAGE)["token"]  # adopted: kept for B's next visits
            # B replies in the same thread; A, still open, gets it live.
            open_and_send(b, "Chocolate, please.")
            expect(b.locator(STORED_VISITOR)).to_have_count(2)
            expect(a.locator(STORED_VISITOR)).to_have_count(2)
            expect(a.locator(STORED_VISITOR).last).to_contain_text("Chocolate, please.")
            # And the other way round.
            open_and_send(a, "With a candle.")
            expect(b.locator(STORED_VISITOR).last).to_contain_text("With a candle.")
            b.reload()  # B is a returning visitor of this conversation from now on
            b.locator(LAUNCHER).click()
            expect(b.locator(STORED_VISITOR)).to_have_count(3)

    assert [t["id"] for t in stage.threads()] == [thread]
    bodies = [m["body"] for m in stage.messages(thread)]
    assert bodies[-2:] == ["Chocolate, please.", "With a candle."]

    # The same link again, on a third device: refused, nothing adopted, nothing stored.
    with device(browser, allow=REFUSED_FETCH) as c:
        c.goto(link)
        expect(c.locator(PANEL)).to_be_visible()
        expect(c.locator(NOTICE)).to_have_text(
            "This link has already been used: each link works once. "
            "Ask for a new one from the chat on your other device."
        )
        assert c.evaluate("location.hash") == ""
        expect(c.locator("porch-chat .message.visitor")).to_have_count(0)
        expect(c.get_by_role("button", name="Continue on another device")).to_be_hidden()
        assert c.evaluate("localStorage.getItem('porch:alpha')") is None
        c.locator(PANEL).evaluate("el => Promise.all(el.getAnimations().map(a => a.finished))")
        screenshot(c, "resume-refused")

    # A link altered on the way: refused as invalid, in English and in French.
    altered = tamper(link)
    with device(browser, allow=REFUSED_FETCH) as d:
        d.goto(altered)
        expect(d.locator(NOTICE)).to_have_text(
            "This link is not valid: it may have been cut or changed. "
            "Copy the whole link from the email."
        )
        assert d.evaluate("location.hash") == ""
        expect(d.locator("porch-chat .message.visitor")).to_have_count(0)
    with device(browser, allow=REFUSED_FETCH) as e:
        e.goto(stage.url("/fr#porch=") + altered.partition("#porch=")[2])
        expect(e.locator(NOTICE)).to_have_text(
            "Ce lien n’est pas valide : il a peut-être été coupé ou modifié. "
            "Copiez le lien entier depuis l’e-mail."
        )
        assert e.url == stage.url("/fr")
    assert [t["id"] for t in stage.threads()] == [thread]


def test_other_tabs_of_the_browser_follow_the_adopted_conversation(
    browser: Browser, mail_stage: Stage, sink: SinkServer
) -> None:
    stage = mail_stage
    with device(browser) as a:
        a.goto(stage.url("/"))
        open_and_send(a, "Thread of device A")
        expect(a.locator(STORED_VISITOR)).to_have_count(1)
        a.get_by_role("button", name="Continue on another device").click()
        a.locator(HANDOFF + " input").fill(EMAIL)
        a.locator(HANDOFF + " input").press("Enter")
        link = resume_link(sink, EMAIL)
        with device(browser) as tab:
            # Device B had a conversation of its own, open in one tab...
            tab.goto(stage.url("/"))
            open_and_send(tab, "Thread of device B")
            expect(tab.locator(STORED_VISITOR)).to_have_count(1)
            # ...and the link opens in a second tab: both tabs now show A's thread only.
            other = tab.context.new_page()
            other.goto(link)
            for page in (tab, other):
                expect(page.locator(STORED_VISITOR + " .bubble")).to_have_text(
                    ["You: Thread of device A"]
                )
            open_and_send(tab, "From the first tab of B")
            expect(a.locator(STORED_VISITOR)).to_have_count(2)
            expect(other.locator(STORED_VISITOR)).to_have_count(2)
