"""'Get the reply by email?': offered after the first message, until the visitor answers
it or confirms an address by opening a link we emailed to it (on any device)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Stage, running_stage
from tests.e2e.test_resume import EMAIL, HANDOFF, NOTICE, device, resume_link
from tests.e2e.test_widget import LAUNCHER, PANEL, STORED_VISITOR, open_and_send
from tests.mail.smtp_sink import SinkServer

CONTACT = "porch-chat .contact"


@pytest.fixture
def mail_stage(tmp_path: Path, sink: SinkServer) -> Iterator[Stage]:
    with running_stage(tmp_path, smtp_url=sink.url, reply_domain="reply.example") as stage:
        yield stage


def reopen(page: Page, messages: int) -> None:
    """Reload, open the panel and wait for the history (the relay's answer is in)."""
    page.reload()
    page.locator(LAUNCHER).click()
    expect(page.locator(STORED_VISITOR)).to_have_count(messages)


def test_a_confirmed_address_is_not_asked_for_on_either_device(
    browser: Browser, mail_stage: Stage, sink: SinkServer
) -> None:
    stage = mail_stage
    with device(browser) as a:
        a.goto(stage.url("/"))
        open_and_send(a, "Could you write to me?")
        expect(a.locator(STORED_VISITOR)).to_have_count(1)
        expect(a.locator(CONTACT)).to_be_visible()  # offered; the visitor leaves it be
        a.get_by_role("button", name="Continue on another device").click()
        a.locator(HANDOFF).locator("input[type=email]").fill(EMAIL)
        a.locator(HANDOFF).get_by_role("button", name="Send link").click()
        expect(a.locator(NOTICE)).to_contain_text(f"We sent a link to {EMAIL}")
        link = resume_link(sink, EMAIL)
        reopen(a, 1)
        expect(a.locator(CONTACT)).to_be_visible()  # given, not confirmed: still offered

        with device(browser) as b:
            b.goto(link)  # opening the link confirms the address
            expect(b.locator(PANEL)).to_be_visible()
            expect(b.locator(STORED_VISITOR)).to_have_count(1)
            expect(b.locator(CONTACT)).to_be_hidden()
            reopen(b, 1)
            expect(b.locator(CONTACT)).to_be_hidden()

        reopen(a, 1)  # the first device hears it from the relay on its next load
        expect(a.locator(CONTACT)).to_be_hidden()
        reopen(a, 1)  # and keeps it
        expect(a.locator(CONTACT)).to_be_hidden()
    visitor = stage.threads()[0]["visitor"]
    assert visitor["email"] == EMAIL
