"""Verified identity: the site vouches for its logged-in user with Porch('identify',
{id, hash}) (hash: HMAC-SHA256 of the id with the site's identity secret, made by the
site's server). That user finds their one thread on every device; a forged hash
changes nothing and opens nobody's thread."""

from __future__ import annotations

import hashlib
import hmac
import json

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Stage
from tests.e2e.test_resume import device
from tests.e2e.test_widget import LAUNCHER, PANEL, STORED_VISITOR, open_and_send

SECRET = "S3cret-identity-for-alpha"
USER = "user-42"
TOKEN = "JSON.parse(localStorage.getItem('porch:alpha') || 'null')?.token ?? null"
VISITOR_TEXT = STORED_VISITOR + " .bubble"


def seed_secret(stage: Stage) -> None:
    conn = stage.relay.db()
    try:
        with conn:
            conn.execute(
                "UPDATE sites SET settings = json_set(settings, '$.identity_secret', ?)"
                " WHERE id = 'alpha'",
                (SECRET,),
            )
    finally:
        conn.close()


def sign(user: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()


def identify(page: Page, user: str, hash: str, **extra: str) -> None:
    """Porch('identify', ...) on a page whose widget already runs; waits for it to finish."""
    page.wait_for_function("typeof window.Porch === 'function' && !window.Porch.q")
    page.evaluate("(user) => Porch('identify', user)", {"id": user, "hash": hash, **extra})


def identify_on_load(page: Page, user: str, hash: str, **extra: str) -> None:
    """The host page calls identify before the widget script has loaded (the queue stub)."""
    args = json.dumps({"id": user, "hash": hash, **extra})
    page.add_init_script(
        "window.Porch = function () { (window.Porch.q = window.Porch.q || []).push(arguments); };"
        f"Porch('identify', {args});"
    )


def test_a_verified_user_has_one_thread_on_every_device(browser: Browser, stage: Stage) -> None:
    seed_secret(stage)
    with device(browser) as a:
        # Device A: anonymous first, then the visitor logs in on the site.
        a.goto(stage.url("/"))
        open_and_send(a, "before login")
        expect(a.locator(STORED_VISITOR)).to_have_count(1)
        assert a.evaluate(TOKEN)
        identify(a, USER, sign(USER), name="Ann", email="ann@example.com")
        expect(a.locator(VISITOR_TEXT)).to_have_text(["You: before login"])
        assert a.evaluate(TOKEN)
        assert len(stage.threads()) == 1

        # Device B, fresh: the site identifies the same user before any message.
        with device(browser) as b:
            identify_on_load(b, USER, sign(USER), name="Ann", email="ann@example.com")
            b.goto(stage.url("/"))
            assert b.evaluate("localStorage.getItem('porch:alpha')") is None  # passive: no UI yet
            b.locator(LAUNCHER).click()
            expect(b.locator(PANEL)).to_be_visible()
            expect(b.locator(VISITOR_TEXT)).to_have_text(["You: before login"])
            assert b.evaluate(TOKEN)  # adopted, kept for B's next visits
            # The email offer is prefilled with what the site said.
            expect(b.locator("porch-chat .contact input[type=text]")).to_have_value("Ann")
            expect(b.locator("porch-chat .contact input[type=email]")).to_have_value(
                "ann@example.com"
            )

            open_and_send(b, "from B")
            expect(b.locator(STORED_VISITOR)).to_have_count(2)
            # A is on the same thread, live.
            expect(a.locator(VISITOR_TEXT)).to_have_text(["You: before login", "You: from B"])
            open_and_send(a, "from A again")
            expect(b.locator(VISITOR_TEXT).last).to_have_text("You: from A again")

            b.reload()  # a returning visitor: the widget loads, identify runs again
            b.locator(LAUNCHER).click()
            expect(b.locator(STORED_VISITOR)).to_have_count(3)

    threads = stage.threads()
    assert len(threads) == 1
    bodies = [m["body"] for m in stage.messages(threads[0]["id"]) if m["author"] == "visitor"]
    assert bodies == ["before login", "from B", "from A again"]


def test_a_verified_user_without_a_thread_starts_it_on_the_first_message(
    browser: Browser, stage: Stage
) -> None:
    seed_secret(stage)
    with device(browser) as a:
        identify_on_load(a, USER, sign(USER))
        a.goto(stage.url("/"))
        open_and_send(a, "first, logged in")
        expect(a.locator(STORED_VISITOR)).to_have_count(1)
        stored = a.evaluate("localStorage.getItem('porch:alpha')")
        assert USER not in stored and sign(USER) not in stored  # identity is never stored
    with device(browser) as b:  # another device of the same user finds it
        identify_on_load(b, USER, sign(USER))
        b.goto(stage.url("/"))
        b.locator(LAUNCHER).click()
        expect(b.locator(VISITOR_TEXT)).to_have_text(["You: first, logged in"])
    assert len(stage.threads()) == 1


def test_a_forged_hash_changes_nothing_and_shows_no_thread(browser: Browser, stage: Stage) -> None:
    seed_secret(stage)
    # The real user-42 has a thread.
    with device(browser) as owner_device:
        identify_on_load(owner_device, USER, sign(USER))
        owner_device.goto(stage.url("/"))
        open_and_send(owner_device, "private to user-42")
        expect(owner_device.locator(STORED_VISITOR)).to_have_count(1)

    forged = sign(USER, "not-the-secret")
    # An anonymous visitor with a thread of their own tries to pass as user-42.
    with device(browser) as mallory:
        mallory.goto(stage.url("/"))
        open_and_send(mallory, "mine")
        expect(mallory.locator(STORED_VISITOR)).to_have_count(1)
        before = mallory.evaluate(TOKEN)
        identify(mallory, USER, forged)
        identify(mallory, USER, "")  # missing hash: refused by the widget itself
        assert mallory.evaluate(TOKEN) == before
        mallory.reload()
        mallory.locator(LAUNCHER).click()
        expect(mallory.locator(VISITOR_TEXT)).to_have_text(["You: mine"])
        assert mallory.evaluate(TOKEN) == before

    # A fresh browser with the forged hash: nothing shown, nothing stored.
    with device(browser) as fresh:
        identify_on_load(fresh, USER, forged)
        fresh.goto(stage.url("/"))
        fresh.locator(LAUNCHER).click()
        expect(fresh.locator(PANEL)).to_be_visible()
        fresh.wait_for_function("!window.Porch.q")
        fresh.evaluate("Porch('open')")  # queued after identify: identify has finished
        expect(fresh.locator("porch-chat .message.visitor")).to_have_count(0)
        assert fresh.evaluate("localStorage.getItem('porch:alpha')") is None

    assert len(stage.threads()) == 2  # user-42's and Mallory's, nothing merged
