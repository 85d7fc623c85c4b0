"""The owner's answers in the widget, in real Chromium against a real relay: suggested
while a first message is typed (English and French, keyboard only, nothing sent or
stored), and an automatic answer with its label and "Talk to a person", which sends the
visitor's request once and gets no automatic answer itself."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, Request, Route, expect

from tests.answers.test_automatic import with_faq
from tests.e2e.conftest import Stage, running_stage, screenshot
from tests.e2e.test_widget import INPUT, LAUNCHER, PANEL, STORED_VISITOR, only_thread
from tests.e2e.test_widget_attachments import serious_violations

SUGGESTIONS = "porch-chat .suggestions"
ANSWER = "porch-chat .answer"
STATUS = "porch-chat p.sr-only[role=status]"
AUTOMATIC = "porch-chat .message.system"
HANDOFF = "I would like to talk to a person."
TOO_MANY = "429 (Too Many Requests)"


def with_answers(stage: Stage) -> dict[str, str]:
    """The test FAQ imported into the relay's store; its answers' ids by question."""
    with ThreadPoolExecutor(1) as pool:  # sync Playwright holds this thread's event loop
        return pool.submit(asyncio.run, with_faq(stage.relay)).result()


def asked(page: Page) -> list[Request]:
    """The suggestion requests the page makes from now on."""
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if r.url.endswith("/suggestions") else None)
    return requests


def open_with_keyboard(page: Page) -> None:
    page.locator(LAUNCHER).focus()
    page.keyboard.press("Enter")
    expect(page.locator(INPUT)).to_be_focused()


def focused_text(page: Page) -> str:
    text = page.evaluate(
        "document.querySelector('porch-chat').shadowRoot.activeElement?.textContent"
    )
    return str(text)


def test_a_suggestion_picked_with_the_keyboard_answers_without_a_message(
    stage: Stage, page: Page
) -> None:
    with_answers(stage)
    requests = asked(page)
    page.goto(stage.url("/"))
    open_with_keyboard(page)
    typed = "how much is delivery"
    page.keyboard.type(typed)
    buttons = page.locator(SUGGESTIONS).get_by_role("button")
    expect(buttons.first).to_have_text("How much is delivery?")
    shown = buttons.count()
    assert 1 <= shown <= 3
    expect(page.locator(STATUS)).to_have_text(f"Suggested answers: {shown}")
    # One request per pause in typing, not one per key; the last for all of it.
    assert 1 <= len(requests) < len(typed)
    assert json.loads(requests[-1].post_data or "") == {"text": typed, "language": "en"}
    expect(page.locator(SUGGESTIONS)).to_have_accessible_name("Suggested answers")
    screenshot(page, "answers-suggestions")

    page.keyboard.press("ArrowUp")  # from the composer up into the suggestions above it
    page.keyboard.press("Home")
    assert focused_text(page) == "How much is delivery?"
    page.keyboard.press("Enter")
    answer = page.locator(ANSWER)
    expect(answer).to_be_focused()
    expect(answer).to_have_accessible_name("Answer from Alpha Bakery")
    expect(answer).to_contain_text("Delivery costs 5 euros within 10 km.")
    expect(page.locator(SUGGESTIONS)).to_be_hidden()
    screenshot(page, "answers-picked")
    assert serious_violations(page) == []

    page.keyboard.press("Tab")
    assert focused_text(page) == "This answers my question"
    page.keyboard.press("Enter")
    expect(answer).to_be_hidden()
    expect(page.locator(INPUT)).to_be_focused()
    expect(page.locator(INPUT)).to_have_value(typed)  # the draft stays

    # Typing on asks again; Escape puts the suggestions away and leaves the panel open.
    page.keyboard.type(" in town")
    expect(buttons.first).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(SUGGESTIONS)).to_be_hidden()
    expect(page.locator(PANEL)).to_be_visible()
    expect(page.locator(INPUT)).to_have_value(typed + " in town")
    assert stage.threads() == [] and stage.relay.counts()["threads"] == 0  # nothing stored
    assert page.evaluate("localStorage.length") == 0


def test_suggestions_in_french(stage: Stage, page: Page) -> None:
    with_answers(stage)
    requests = asked(page)
    page.goto(stage.url("/fr"))
    open_with_keyboard(page)
    page.keyboard.type("horaires")
    buttons = page.locator(SUGGESTIONS).get_by_role("button")
    expect(buttons.first).to_have_text("Quels sont vos horaires ?")
    expect(page.locator(SUGGESTIONS)).to_have_accessible_name("Réponses suggérées")
    expect(page.locator(STATUS)).to_have_text(f"Réponses suggérées : {buttons.count()}")
    assert json.loads(requests[-1].post_data or "")["language"] == "fr"

    page.keyboard.press("ArrowUp")
    page.keyboard.press("Home")
    page.keyboard.press("Enter")
    answer = page.locator(ANSWER)
    expect(answer).to_have_accessible_name("Réponse de Alpha Bakery")
    expect(answer).to_contain_text("Nous sommes ouverts du mardi au samedi")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert focused_text(page) == "Je veux quand même demander"
    page.keyboard.press("Enter")
    expect(answer).to_be_hidden()
    expect(page.locator(INPUT)).to_be_focused()
    expect(page.locator(INPUT)).to_have_value("horaires")

    page.keyboard.type(" ?")
    expect(buttons.first).to_have_text("Quels sont vos horaires ?")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Home")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert focused_text(page) == "Cela répond à ma question"
    page.keyboard.press("Enter")
    expect(answer).to_be_hidden()
    expect(page.locator(INPUT)).to_have_value("horaires ?")
    assert serious_violations(page) == []
    assert stage.relay.counts()["threads"] == 0


def test_an_automatic_answer_offers_a_person_once(stage: Stage, page: Page) -> None:
    ids = with_answers(stage)
    page.goto(stage.url("/"))
    page.locator(LAUNCHER).click()
    page.locator(INPUT).fill("How much is delivery?")
    expect(page.locator(SUGGESTIONS)).to_be_visible()
    page.locator(INPUT).press("Enter")
    expect(page.locator(SUGGESTIONS)).to_be_hidden()  # a conversation has begun

    automatic = page.locator(AUTOMATIC)
    expect(automatic).to_contain_text("Delivery costs 5 euros within 10 km.")
    expect(automatic.locator(".automatic")).to_contain_text("Automatic answer")
    person = automatic.get_by_role("button", name="Talk to a person")
    expect(person).to_be_visible()
    screenshot(page, "answers-automatic")
    assert serious_violations(page) == []

    person.focus()
    page.keyboard.press("Enter")
    expect(person).to_have_count(0)
    expect(page.locator(INPUT)).to_be_focused()  # where the button was is gone
    page.keyboard.press("Enter")  # a second press lands in the empty composer: nothing goes
    expect(automatic).to_contain_text("The team has been told and will answer here.")
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    messages = stage.messages(only_thread(stage))
    assert [(m["author"], m["body"], m["answer"]) for m in messages] == [
        ("visitor", "How much is delivery?", None),
        ("system", "Delivery costs 5 euros within 10 km.", ids["How much is delivery?"]),
        ("visitor", HANDOFF, None),  # and no automatic answer to it: a person answers
    ]

    page.reload()  # what the visitor asked for is remembered with the conversation
    page.locator(LAUNCHER).click()
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    expect(automatic).to_contain_text("The team has been told")
    expect(automatic.get_by_role("button")).to_have_count(0)


def test_a_stale_request_is_cancelled_and_a_refusal_shows_nothing(
    tmp_path: Path, context: BrowserContext
) -> None:
    with running_stage(tmp_path, suggestions_per_minute=1) as stage:
        with_answers(stage)
        page = context.new_page()  # the browser logs the relay's 429: expected here, and only it
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        failed: list[str] = []
        page.on(
            "requestfailed",
            lambda r: failed.append(r.failure or "") if "suggest" in r.url else None,
        )
        held: list[Route] = []
        page.route(
            "**/suggestions", lambda route: held.append(route) if not held else route.continue_()
        )
        requests = asked(page)
        page.goto(stage.url("/"))
        page.locator(LAUNCHER).click()
        with page.expect_request("**/suggestions"):
            page.locator(INPUT).fill("how much is delivery")  # its answer is held back
        with page.expect_request("**/suggestions"):
            page.locator(INPUT).fill("where can I park")
        buttons = page.locator(SUGGESTIONS).get_by_role("button")
        expect(buttons.first).to_have_text("Where can I park?")
        held[0].continue_()  # too late: cancelled when the text changed, never shown
        assert failed == ["net::ERR_ABORTED"]
        expect(buttons).to_have_text(["Where can I park?"])

        page.locator(INPUT).fill("where can I park my car")  # past the address's limit
        expect(page.locator(SUGGESTIONS)).to_be_hidden()
        expect(page.locator(STATUS)).to_have_text("")
        expect(page.locator(INPUT)).to_have_value("where can I park my car")
        assert len(requests) == 3
        assert errors == [
            f"Failed to load resource: the server responded with a status of {TOO_MANY}"
        ]
