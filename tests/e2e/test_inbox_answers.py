"""Automatic answers in the owner's inbox, in real Chromium against a real relay: added,
tried, changed and removed in the settings; a reply saved as an answer from a thread,
prefilled with the visitor's question in their language, then found by the "Try a
question" box; and the label of an answer the relay sent while nobody was looking."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import Stage, screenshot
from tests.e2e.test_inbox import OWNER_EMAIL, SESSION, assert_accessible, device, visitor_writes
from tests.e2e.test_inbox_apps import open_inbox, open_thread, reply
from tests.support import bearer

UNPROCESSABLE = 422
ANSWERS = "/inbox/api/sites/alpha/answers"
DELIVERY = "We deliver within 10 km for orders over 30 euros."
GLUTEN_FREE = "Oui, tous les vendredis : commandez deux jours avant."


def answers_section(page: Page) -> Locator:
    """The settings' Website tab, opened at its automatic answers."""
    page.get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog", name="Settings")
    dialog.get_by_role("tab", name="Website").click()
    section = dialog.locator("section.answers")
    expect(section.get_by_role("heading", name="Automatic answers")).to_be_visible()
    return section


def listed(section: Locator) -> Locator:
    return section.get_by_role("list", name="Automatic answers").get_by_role("listitem")


def stored_answers(stage: Stage) -> list[tuple[str, str, str]]:
    with stage.relay.db() as db:
        rows = db.execute("SELECT question, answer, language FROM answers ORDER BY num")
        return [(row[0], row[1], row[2]) for row in rows.fetchall()]


def owner_api(stage: Stage, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """A POST to the inbox API as the owner would make it from another device."""
    relay = stage.relay.url
    with httpx.Client(base_url=relay, headers={"origin": relay}) as api:
        me = api.post(SESSION, json={"token": stage.relay.tokens.login_token(OWNER_EMAIL)}).json()
        answer = api.post(path, json=body, headers={"x-csrf-token": me["csrf"]})
    assert answer.is_success, answer.text
    return answer.json() if answer.content else None


def test_answers_are_added_tried_changed_and_removed_in_the_settings(
    browser: Browser, stage: Stage
) -> None:
    with device(browser, allow=frozenset({UNPROCESSABLE})) as inbox:
        open_inbox(inbox, stage)
        section = answers_section(inbox)
        expect(section).to_contain_text("No answers yet.")
        form = section.get_by_role("form", name="Add an answer")
        question = form.get_by_label("Question", exact=True)
        others = form.get_by_label("Other ways to ask it")
        answer = form.get_by_label("Answer", exact=True)
        add = form.get_by_role("button", name="Add the answer")

        # Checked on the page before anything is sent, then by the relay (its message,
        # on the field it is about).
        answer.fill(DELIVERY)
        add.click()
        expect(form.get_by_role("alert")).to_have_text("Write the question.")
        expect(question).to_be_focused()
        expect(question).to_have_attribute("aria-invalid", "true")
        question.fill("Do you deliver?")
        others.fill("\n".join(f"way {n}" for n in range(21)))
        add.click()
        expect(form.get_by_role("alert")).to_contain_text("more than 20 other ways to ask it")
        expect(others).to_be_focused()
        assert stored_answers(stage) == []
        others.fill("Can you bring it to my house?\nDo you do deliveries?")
        expect(form.get_by_label("Language of the answer")).to_have_value("en")  # the site's
        add.click()
        expect(section.get_by_role("status").first).to_have_text("Answer added.")
        expect(listed(section)).to_have_count(1)
        for shown in ("Do you deliver?", "English", DELIVERY):
            expect(listed(section)).to_contain_text(shown)
        expect(question).to_have_value("")  # ready for the next one

        # Keyboard only: the next answer, submitted with Enter from its question.
        question.focus()
        inbox.keyboard.type("Where can I park?")
        inbox.keyboard.press("Tab")  # other ways to ask it: none
        inbox.keyboard.press("Tab")
        inbox.keyboard.type("There is free parking behind the shop.")
        question.press("Enter")
        expect(listed(section)).to_have_count(2)
        assert [q for q, _, _ in stored_answers(stage)] == ["Do you deliver?", "Where can I park?"]

        # The try box: what would be sent, and why nothing would.
        tried = section.get_by_role("form", name="Try a question")
        tried.get_by_label("A visitor writes").fill("do u deliver to my town??")
        tried.get_by_role("button", name="Try it").click()
        result = tried.get_by_role("status")
        expect(result).to_contain_text("Would send the answer to “Do you deliver?” (score")
        expect(result.locator(".bubble")).to_have_text(DELIVERY)
        tried.get_by_label("A visitor writes").fill("Thanks a lot!")
        tried.get_by_role("button", name="Try it").click()
        expect(result).to_have_text("No answer: a greeting or thanks.")
        tried.get_by_label("A visitor writes").fill("My cake was dry and stale")
        tried.get_by_role("button", name="Try it").click()
        expect(result).to_have_text("No answer: a complaint needs a person.")
        tried.get_by_label("A visitor writes").fill("Do you sell coffee beans?")
        tried.get_by_role("button", name="Try it").click()
        expect(result).to_have_text("No answer: none of your answers is about this.")
        sunday = "do you deliver cakes to the train station on sunday morning"
        tried.get_by_label("A visitor writes").fill(sunday)
        tried.get_by_role("button", name="Try it").click()
        expect(result).to_contain_text("No answer: not sure enough (best score 0.")
        expect(result).to_contain_text("Closest question: “Do you deliver?” (0.")
        screenshot(inbox, "inbox-answers")
        assert_accessible(inbox)  # the list, the form, the try box and its result

        # Changed: the form holds it, and the list shows the new words.
        delivery = listed(section).filter(has_text="Do you deliver?")
        delivery.get_by_role("button", name="Edit").click()
        editing = section.get_by_role("form", name="Edit the answer")
        expect(editing.get_by_label("Question", exact=True)).to_be_focused()
        screenshot(inbox, "inbox-answer-edit")
        expect(editing.get_by_label("Other ways to ask it")).to_have_value(
            "Can you bring it to my house?\nDo you do deliveries?"
        )
        editing.get_by_label("Answer", exact=True).fill("We deliver within 15 km, every day.")
        editing.get_by_role("button", name="Update the answer").click()
        expect(section.get_by_role("status").first).to_have_text("Answer updated.")
        expect(delivery).to_contain_text("We deliver within 15 km, every day.")
        expect(section.get_by_role("form", name="Add an answer")).to_be_visible()

        # Removed after asking; Cancel keeps it.
        parking = listed(section).filter(has_text="Where can I park?")
        parking.get_by_role("button", name="Remove").click()
        confirm = parking.locator(".confirm")
        expect(confirm).to_contain_text("Remove the answer to “Where can I park?”?")
        expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
        confirm.get_by_role("button", name="Cancel").click()
        expect(parking.get_by_role("button", name="Remove")).to_be_focused()
        parking.get_by_role("button", name="Remove").click()
        confirm.get_by_role("button", name="Remove").click()
        expect(listed(section)).to_have_count(1)
        expect(section.get_by_role("status").first).to_have_text("Answer removed.")
    assert stored_answers(stage) == [
        ("Do you deliver?", "We deliver within 15 km, every day.", "en")
    ]


def test_a_reply_saved_as_an_answer_and_the_label_of_an_automatic_one(
    browser: Browser, stage: Stage
) -> None:
    # Nobody is at the inbox: a visitor who asks gets the owner's answer at once.
    sent = owner_api(stage, ANSWERS, {"question": "Do you deliver?", "answer": DELIVERY})
    assert sent is not None
    asked = visitor_writes(stage, "Hello! Do you deliver?")
    history = httpx.get(f"{stage.relay.url}/v1/thread", headers=bearer(asked["token"]))
    assert [m["answer"] for m in history.json()["messages"]] == [None, sent["id"]]
    visitor_writes(stage, "Faites-vous des gâteaux sans gluten ?", language="fr")

    with device(browser) as inbox:
        open_inbox(inbox, stage)
        open_thread(inbox, DELIVERY)  # the list shows the last message: the answer
        automatic = inbox.locator(".message.system")
        expect(automatic.locator(".answer-label")).to_have_text(
            "Automatic answer to “Do you deliver?”"
        )
        expect(automatic.locator(".bubble")).to_have_text(DELIVERY)
        screenshot(inbox, "inbox-automatic-answer")
        assert_accessible(inbox)

        # A reply saved as an answer: the visitor's question, the reply, their language.
        open_thread(inbox, "sans gluten")
        reply(inbox, GLUTEN_FREE)
        mine = inbox.locator(".message.owner", has_text=GLUTEN_FREE)
        save = mine.get_by_role("button", name="Save as an answer")
        mine.hover()
        screenshot(inbox, "inbox-save-as-answer")
        save.focus()  # reached by keyboard like every button
        inbox.keyboard.press("Enter")
        section = inbox.get_by_role("dialog", name="Settings").locator("section.answers")
        form = section.get_by_role("form", name="Add an answer")
        question = form.get_by_label("Question", exact=True)
        expect(question).to_be_focused()
        expect(question).to_have_value("Faites-vous des gâteaux sans gluten ?")
        expect(form.get_by_label("Answer", exact=True)).to_have_value(GLUTEN_FREE)
        expect(form.get_by_label("Language of the answer")).to_have_value("fr")
        form.get_by_label("Other ways to ask it").fill("Avez-vous des gâteaux sans gluten ?")
        form.get_by_role("button", name="Add the answer").click()
        expect(listed(section)).to_have_count(2)
        expect(listed(section).nth(1)).to_contain_text("Faites-vous des gâteaux sans gluten ?")

        # The relay now finds it for a French visitor.
        tried = section.get_by_role("form", name="Try a question")
        tried.get_by_label("A visitor writes").fill("vous faites des gateaux sans gluten")
        tried.get_by_label("Language of the question").select_option("fr")
        tried.get_by_role("button", name="Try it").click()
        expect(tried.get_by_role("status").locator(".bubble")).to_have_text(GLUTEN_FREE)
        assert stored_answers(stage)[1] == (
            "Faites-vous des gâteaux sans gluten ?",
            GLUTEN_FREE,
            "fr",
        )
        assert_accessible(inbox)
        screenshot(inbox, "inbox-answer-saved")

        # An answer removed since: the message it was sent in says only what it was.
        owner_api(stage, f"{ANSWERS}/{sent['id']}/remove", {})
        inbox.keyboard.press("Escape")
        inbox.reload()
        with inbox.expect_response(lambda response: response.url.endswith(ANSWERS)):
            open_thread(inbox, DELIVERY)
        expect(inbox.locator(".message.system .answer-label")).to_have_text("Automatic answer")
