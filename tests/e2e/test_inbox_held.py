"""Emailed replies held in the owner's inbox (issue 19), in real Chromium against a real
relay: unsigned replies from alpha.example, whose DMARC record (on the relay's own fake
DNS server) says p=reject, come in through the relay's SMTP ingress and are held. The
inbox shows each as a card in its conversation and a badge in the list, live; Release
posts it, Discard forgets it, and a reply that can no longer be posted says why."""

from __future__ import annotations

import json
import re
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Stage, running_stage, screenshot
from tests.e2e.test_inbox import (
    assert_accessible,
    assert_targets,
    device,
    item,
    thread_id,
    visitor_writes,
)
from tests.e2e.test_inbox_apps import open_inbox, open_thread, set_french
from tests.fakes.dns_server import FakeDns
from tests.mail.conftest import OWNER, REPLY_DOMAIN, issue_reply_tag, owner_reply
from tests.support import free_port

PARTNER = "partner@alpha.example"  # a second owner of alpha, for a while
CONFLICT = 409  # a release refused: the reply cannot be posted, and stays held
NARROW = {"width": 360, "height": 740}  # the narrowest phone the inbox is made for
TITLE = "Held: could not verify the sender"
TITLE_FR = "Retenu : l’expéditeur n’a pas pu être vérifié"
DETAIL = "alpha.example publishes DMARC p=reject"  # how the relay's sentence starts
CARDS = ".held-list .held"
BADGE = ".held-badge"
SHOWN = '[aria-hidden="true"]'  # the badge's visible word (a screen reader hears ", held")


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    """The relay's DNS: alpha.example asks receivers to reject mail that fails DMARC."""
    with FakeDns() as server:
        server.txt("_dmarc.alpha.example", "v=DMARC1; p=reject")
        yield server


@pytest.fixture
def held_stage(tmp_path: Path, dns: FakeDns) -> Iterator[Stage]:
    """A stage whose relay takes replies on its SMTP ingress and checks their senders
    against `dns` (sender_checks: dmarc, the default)."""
    settings = {
        "reply_domain": REPLY_DOMAIN,
        "smtp_port": free_port(),
        "dns_servers": (dns.address,),
    }
    with running_stage(tmp_path, **settings) as stage:
        yield stage


def mailed_reply(stage: Stage, tag: str, text: str, sender: str = OWNER) -> None:
    """An unsigned reply delivered to the relay's SMTP ingress, as a mail server would."""
    with smtplib.SMTP("127.0.0.1", stage.relay.config.smtp_port, timeout=10) as smtp:
        refused = smtp.sendmail(
            sender, [f"r+{tag}@{REPLY_DOMAIN}"], owner_reply(tag, text, sender=sender)
        )
    assert refused == {}, refused


def held_rows(stage: Stage, thread: str) -> list[tuple[str, str, bool]]:
    """(body, status, raw kept) of the thread's held mail, oldest first."""
    with stage.relay.db() as db:
        rows = db.execute(
            "SELECT body, status, raw IS NOT NULL FROM held_mail WHERE thread_id = ? ORDER BY id",
            (thread,),
        ).fetchall()
    return [(row[0], row[1], bool(row[2])) for row in rows]


def posted(stage: Stage, thread: str) -> list[str]:
    """The bodies of the thread's messages, in order."""
    with stage.relay.db() as db:
        rows = db.execute(
            "SELECT body FROM messages WHERE thread_id = ? ORDER BY seq", (thread,)
        ).fetchall()
    return [row[0] for row in rows]


def set_owners(stage: Stage, *owners: str) -> None:
    with stage.relay.db() as db:
        db.execute(
            "UPDATE sites SET owner_emails = ? WHERE id = 'alpha'", (json.dumps(list(owners)),)
        )


def card(page: Page, text: str) -> Any:
    return page.locator(CARDS, has_text=text)


def assert_no_sideways_scroll(page: Page) -> None:
    widths = page.evaluate(
        """() => [document.scrollingElement.scrollWidth, innerWidth,
          ...[...document.querySelectorAll('.held')]
            .map((node) => node.scrollWidth - node.clientWidth)]"""
    )
    page_width, viewport, *overflows = widths
    assert page_width <= viewport, f"the page scrolls sideways: {page_width} px in {viewport}"
    assert all(overflow <= 0 for overflow in overflows), f"a held card overflows: {overflows}"


def test_held_replies_show_live_and_are_released_or_discarded(
    browser: Browser, held_stage: Stage
) -> None:
    stage = held_stage
    sundays = thread_id(visitor_writes(stage, "Do you deliver on Sundays?"))
    vegan = thread_id(visitor_writes(stage, "Any vegan bread?"))
    set_owners(stage, OWNER, PARTNER)  # both are emailed about alpha's conversations
    sundays_tag = issue_reply_tag(stage.relay, sundays, OWNER)
    vegan_tag = issue_reply_tag(stage.relay, vegan, PARTNER)
    mailed_reply(stage, sundays_tag, "Yes, from 8 to noon.")
    assert held_rows(stage, sundays) == [("Yes, from 8 to noon.", "held", True)]

    with device(browser, allow=frozenset({CONFLICT})) as page:
        open_inbox(page, stage)
        # Held before the page opened: the list's badge says so, on that thread only.
        expect(item(page, "Sundays").locator(BADGE).locator(SHOWN)).to_have_text("held")
        expect(item(page, "Sundays").locator("a")).to_have_accessible_name(re.compile(", held"))
        expect(item(page, "vegan").locator(BADGE)).to_be_hidden()

        # The open thread: a card, with who sent it, when, why, and its words (not in the log).
        open_thread(page, "Sundays")
        first = card(page, "Yes, from 8 to noon.")
        expect(first.get_by_role("heading", name=TITLE)).to_be_visible()
        expect(first).to_contain_text(f"An email from {OWNER}, sent as your reply")
        # Why, in the page's language; the checks' own words one click away, in English.
        expect(first.locator(".held-reason")).to_have_text(
            "alpha.example asks that mail it has not authenticated be held or refused,"
            " and nothing authenticates this one."
        )
        expect(first.locator(".held-detail")).to_be_hidden()
        summary = first.locator(".held-technical summary")
        assert summary.evaluate("(node) => getComputedStyle(node).display") == "list-item"
        summary.click()  # a list item: its disclosure triangle shows it opens
        expect(first.locator(".held-detail")).to_contain_text(DETAIL)
        expect(first.locator(".held-detail")).to_have_attribute("lang", "en")
        expect(first.locator("time")).to_contain_text("Today")
        log = page.get_by_role("log")
        expect(log).not_to_contain_text("from 8 to noon")
        assert_accessible(page)
        screenshot(page, "inbox-held-card")

        # Held while the page is open: the open thread's cards and another's badge, live.
        mailed_reply(stage, sundays_tag, "Actually, not this Sunday.")
        expect(page.locator(CARDS)).to_have_count(2)
        second = card(page, "not this Sunday")
        mailed_reply(stage, vegan_tag, "Rye and spelt, both vegan.", sender=PARTNER)
        expect(item(page, "vegan").locator(BADGE)).to_be_visible()

        # Release: posted once (its live frame is the same message), the card goes.
        first.get_by_role("button", name="Release").click()
        expect(log.locator(".message.owner", has_text="Yes, from 8 to noon.")).to_have_count(1)
        expect(log.locator(".message.owner", has_text="Yes, from 8 to noon.")).to_contain_text(
            "by email"
        )
        expect(page.locator(CARDS)).to_have_count(1)
        expect(page.locator("#announcer")).to_have_text(
            "The held email was posted in the conversation."
        )
        expect(second.get_by_role("button", name="Release")).to_be_focused()  # the next card's
        assert held_rows(stage, sundays)[0] == ("Yes, from 8 to noon.", "released", False)

        # Discard asks first; dismissed, nothing changes.
        page.once("dialog", lambda dialog: dialog.dismiss())
        second.get_by_role("button", name="Discard").click()
        expect(page.locator(CARDS)).to_have_count(1)
        assert held_rows(stage, sundays)[1] == ("Actually, not this Sunday.", "held", True)
        # Confirmed: forgotten, its mail and words too, and never posted.
        dialogs: list[str] = []

        def accept(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.accept()

        page.once("dialog", accept)
        second.get_by_role("button", name="Discard").click()
        expect(page.locator(CARDS)).to_have_count(0)
        expect(page.locator(".held-list")).to_be_hidden()
        expect(page.locator("#announcer")).to_have_text("The held email was discarded.")
        expect(page.locator("#reply")).to_be_focused()  # the last card gone: back to replying
        assert dialogs == ["Discard this email? It will not be posted."]
        assert held_rows(stage, sundays)[1] == ("", "discarded", False)
        assert "Actually, not this Sunday." not in posted(stage, sundays)
        expect(log).not_to_contain_text("not this Sunday")
        expect(item(page, "Sundays").locator(BADGE)).to_be_hidden()

        # The partner is no longer an owner: their reply cannot be posted, and says why.
        set_owners(stage, OWNER)
        open_thread(page, "vegan")
        refused = card(page, "Rye and spelt")
        expect(refused).to_contain_text(f"An email from {PARTNER}, sent as your reply")
        refused.get_by_role("button", name="Release").click()
        expect(refused.get_by_role("alert")).to_have_text(
            "this reply cannot be posted: forged; discard it"
        )
        expect(refused.get_by_role("button", name="Release")).to_be_focused()
        assert held_rows(stage, vegan) == [("Rye and spelt, both vegan.", "held", True)]
        assert "Rye and spelt, both vegan." not in posted(stage, vegan)
        expect(item(page, "vegan").locator(BADGE)).to_be_visible()
        screenshot(page, "inbox-held-refused")


def test_held_reply_in_french_on_a_narrow_phone(browser: Browser, held_stage: Stage) -> None:
    stage = held_stage
    set_french(stage)
    thread = thread_id(visitor_writes(stage, "Livrez-vous le dimanche ?"))
    # One long unbroken word: it must wrap, not push the page sideways.
    words = "Oui, de 8 h à midi. Référence : " + "LIVRAISON-DIMANCHE-" * 12
    mailed_reply(stage, issue_reply_tag(stage.relay, thread, OWNER), words)

    with device(browser, viewport=NARROW, locale="fr-FR", has_touch=True) as phone:
        open_inbox(phone, stage)
        expect(item(phone, "dimanche").locator(BADGE).locator(SHOWN)).to_have_text("retenu")
        assert_no_sideways_scroll(phone)
        item(phone, "dimanche").locator("a").click()
        held = card(phone, "Référence")
        expect(held.get_by_role("heading", name=TITLE_FR)).to_be_visible()
        expect(held).to_contain_text(f"Un e-mail de {OWNER}, envoyé comme votre réponse")
        expect(held.locator(".held-reason")).to_contain_text(
            "alpha.example demande de retenir ou refuser le courrier"
        )
        expect(held.get_by_text("Détails techniques")).to_be_visible()
        expect(held.locator("time")).to_contain_text("Aujourd’hui")
        expect(held.get_by_role("button", name="Supprimer")).to_be_visible()
        assert_no_sideways_scroll(phone)
        assert_targets(phone)
        assert_accessible(phone)
        screenshot(phone, "inbox-held-phone-fr")

        held.get_by_role("button", name="Publier").click()
        log = phone.get_by_role("log")
        expect(log.locator(".message.owner")).to_contain_text("Oui, de 8 h à midi.")
        expect(phone.locator(CARDS)).to_have_count(0)
        expect(phone.locator("#announcer")).to_have_text(
            "L’e-mail retenu a été publié dans la conversation."
        )
        assert_no_sideways_scroll(phone)
    assert posted(stage, thread)[-1] == words
    assert held_rows(stage, thread) == [(words, "released", False)]
