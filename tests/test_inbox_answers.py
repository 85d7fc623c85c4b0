"""A site's automatic answers through the inbox API, over real HTTP on a relay of either
engine: add, list, change, remove and "ask"; the CSRF and origin checks; another owner's
site is not found; bad input is refused with a clear message and changes nothing; and an
answer added here is the one the relay then sends a visitor who asks it."""

from __future__ import annotations

from typing import Any

from relay.answers.library import terms_of
from relay.models import Answer
from tests.answers.test_automatic import history
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, start_thread
from tests.test_inbox_api import Inbox, inbox

pytestmark = BOTH_ENGINES

ANSWERS = "/inbox/api/sites/alpha/answers"
CREATED, OK, NO_CONTENT = 201, 200, 204
UNAUTHORIZED, FORBIDDEN, NOT_FOUND, UNPROCESSABLE = 401, 403, 404, 422
DELIVERY = {
    "question": "Do you deliver?",
    "answer": "We deliver within 10 km for orders over 30 euros.",
    "alternatives": ["Can you bring it to my house?", "  ", "Can you bring it to my house?"],
}
HOURS = {
    "question": "What are your opening hours?",
    "answer": "We are open Tuesday to Saturday, 7am to 6pm.",
    "alternatives": ["When are you open?"],
}
PARKING = {"question": "Where can I park?", "answer": "There is free parking behind the shop."}
HORAIRES = {
    "question": "Quels sont vos horaires ?",
    "answer": "Nous sommes ouverts du mardi au samedi, de 7h à 18h.",
    "language": "fr",
    "alternatives": ["Vous êtes ouverts quand ?"],
}


async def add(page: Inbox, fields: dict[str, Any], site: str = "alpha") -> dict[str, Any]:
    response = await page.post(f"/inbox/api/sites/{site}/answers", fields)
    assert response.status_code == CREATED, response.text
    return response.json()  # type: ignore[no-any-return]


async def listed(page: Inbox) -> list[dict[str, Any]]:
    response = await page.get(ANSWERS)
    assert response.status_code == OK, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()["answers"]  # type: ignore[no-any-return]


def stored(relay: RunningRelay) -> list[tuple[str, str, str]]:
    """Every answer as the database holds it: (site, question, answer)."""
    with relay.db() as db:
        rows = db.execute("SELECT site_id, question, answer FROM answers ORDER BY num")
        return [(row[0], row[1], row[2]) for row in rows.fetchall()]


async def test_add_list_change_and_remove(relay: RunningRelay) -> None:
    async with inbox(relay) as page:
        assert await listed(page) == []
        delivery = await add(page, DELIVERY)
        assert delivery["id"].startswith("ans_") and delivery["site"] == "alpha"
        assert delivery["language"] == "en"  # the site's language, none being sent
        # Blank and repeated ways of asking are dropped.
        assert delivery["alternatives"] == ["Can you bring it to my house?"]
        french = await add(page, {**HORAIRES, "question": "  Quels   sont vos horaires ?  "})
        assert french["language"] == "fr" and french["question"] == "Quels sont vos horaires ?"
        assert [a["id"] for a in await listed(page)] == [delivery["id"], french["id"]]

        path = f"{ANSWERS}/{delivery['id']}"
        changed = await page.post(path, {"answer": "We deliver within 15 km."})
        assert changed.status_code == OK, changed.text
        assert changed.json()["answer"] == "We deliver within 15 km."
        # What was left out kept its value.
        assert changed.json()["question"] == DELIVERY["question"]
        assert changed.json()["alternatives"] == ["Can you bring it to my house?"]
        moved = await page.post(path, {**DELIVERY, "alternatives": [], "language": "fr"})
        assert moved.json()["alternatives"] == [] and moved.json()["language"] == "fr"

        removed = await page.post(f"{path}/remove")
        assert removed.status_code == NO_CONTENT
        assert [a["id"] for a in await listed(page)] == [french["id"]]
        again = await page.post(f"{path}/remove")
        assert again.status_code == NOT_FOUND and delivery["id"] in again.json()["message"]
        gone = await page.post(path, {"answer": "back?"})
        assert gone.status_code == NOT_FOUND
    assert stored(relay) == [("alpha", HORAIRES["question"], HORAIRES["answer"])]


async def test_ask_says_what_would_be_sent_and_touches_nothing(relay: RunningRelay) -> None:
    async with inbox(relay) as page:
        for fields in (DELIVERY, HOURS, PARKING, HORAIRES):
            await add(page, fields)
        before = (relay.counts(), stored(relay))
        ask = f"{ANSWERS}/ask"
        sure = await page.post(ask, {"text": "do u deliver to my town?"})
        assert sure.status_code == OK, sure.text
        found = sure.json()
        assert found["answered"] is True and found["question"] == DELIVERY["question"]
        assert found["answer"] == DELIVERY["answer"] and found["refused"] is None
        assert 0 < found["score"] <= 1 and found["candidates"][0]["question"] == found["question"]
        asked = {"text": "vous êtes ouverts quand", "language": "fr"}
        french = (await page.post(ask, asked)).json()
        assert french["answered"] is True and french["answer"] == HORAIRES["answer"]
        for text, refused in [
            ("Thanks a lot!", "small_talk"),
            ("My cake was dry and stale, I want a refund", "complaint"),
            ("I ordered a cake, can you deliver it on Saturday?", "personal"),
        ]:
            answer = (await page.post(ask, {"text": text})).json()
            assert (answer["answered"], answer["refused"]) == (False, refused), text
        unsure = (await page.post(ask, {"text": "do you sell coffee beans"})).json()
        assert unsure["answered"] is False and unsure["refused"] is None
        for bad in ({"text": "  "}, {}, {"text": 3}, {"text": "hours?", "language": "de"}):
            refused_ask = await page.post(ask, bad)
            assert refused_ask.status_code == UNPROCESSABLE, bad
        assert (relay.counts(), stored(relay)) == before


async def test_posts_need_the_csrf_token_and_the_own_origin(relay: RunningRelay) -> None:
    async with inbox(relay) as page:
        kept = await add(page, PARKING)
        attempts = [
            (ANSWERS, DELIVERY),
            (f"{ANSWERS}/{kept['id']}", {"answer": "changed"}),
            (f"{ANSWERS}/{kept['id']}/remove", {}),
            (f"{ANSWERS}/ask", {"text": "parking?"}),
        ]
        for path, body in attempts:
            missing = await page.client.post(path, json=body)
            wrong = await page.post(path, body, **{"x-csrf-token": "0" * 64})
            foreign = await page.post(path, body, origin="https://evil.example")
            for refused in (missing, wrong, foreign):
                assert refused.status_code == FORBIDDEN, (path, refused.text)
        assert stored(relay) == [("alpha", PARKING["question"], PARKING["answer"])]
    async with relay.client(origin=None) as stranger:
        assert (await stranger.get(ANSWERS)).status_code == UNAUTHORIZED


async def test_another_owners_site_is_not_found(relay: RunningRelay) -> None:
    beta = Answer("", "beta", "fr", "Vous venez le dimanche ?", (), "Oui, en urgence.")
    theirs = await relay.call(relay.services.store.add_answer(beta, terms_of(beta)))
    async with inbox(relay) as page:
        mine = await add(page, PARKING)
        other = "/inbox/api/sites/beta/answers"
        answers = [
            await page.get(other),
            await page.post(other, PARKING),
            await page.post(f"{other}/ask", {"text": "dimanche ?"}),
            await page.post(f"{other}/{theirs.id}", {"answer": "Non."}),
            await page.post(f"{other}/{theirs.id}/remove"),
            # Their answer through my site: no such answer here.
            await page.post(f"{ANSWERS}/{theirs.id}", {"answer": "Non."}),
            await page.post(f"{ANSWERS}/{theirs.id}/remove"),
            await page.post(f"{other}/{mine['id']}", {"answer": "moved?"}),
        ]
        for answer in answers:
            assert answer.status_code == NOT_FOUND, answer.text
    assert stored(relay) == [
        ("beta", beta.question, beta.answer),
        ("alpha", PARKING["question"], PARKING["answer"]),
    ]


async def test_bad_input_says_what_is_wrong_and_changes_nothing(relay: RunningRelay) -> None:
    async with inbox(relay) as page:
        kept = await add(page, DELIVERY)
        path = f"{ANSWERS}/{kept['id']}"
        before = stored(relay)
        for body, says in [
            ({**DELIVERY, "question": "  "}, "the question is empty"),
            ({"question": "Do you bake bread?"}, "the answer is empty"),
            ({**DELIVERY, "language": "de"}, "the language must be one of en, fr"),
            ({**DELIVERY, "alternatives": "Can you bring it?"}, "'alternatives' must be a list"),
            ({**DELIVERY, "alternatives": ["fine", 3]}, "'alternatives' must be a list"),
            ({**DELIVERY, "question": "?" * 301}, "over 300 characters"),
            ({**DELIVERY, "answer": "!" * 2001}, "over 2000 characters"),
            ({**DELIVERY, "alternatives": [f"way {n}" for n in range(21)]}, "more than 20"),
            ({**DELIVERY, "question": 42}, "'question' must be a string"),
            ({**DELIVERY, "site": "beta"}, "unknown field 'site'"),
        ]:
            added = await page.post(ANSWERS, body)
            assert added.status_code == UNPROCESSABLE, body
            assert says in added.json()["message"], added.json()
            if body.get("question") != "Do you bake bread?":  # a change needs no answer
                changed = await page.post(path, body)
                assert changed.status_code == UNPROCESSABLE, body
                assert says in changed.json()["message"], changed.json()
        cleared = await page.post(path, {"answer": "   "})
        assert cleared.status_code == UNPROCESSABLE
        assert "the answer is empty" in cleared.json()["message"]
        not_json = await page.client.post(
            ANSWERS, content=b"question=x", headers={"x-csrf-token": page.me["csrf"]}
        )
        assert not_json.status_code == 400
        assert stored(relay) == before


async def test_an_answer_added_in_the_inbox_is_sent_to_a_visitor_who_asks(
    relay: RunningRelay,
) -> None:
    async with inbox(relay) as page:  # signed in, but no inbox socket: nobody is looking
        for fields in (HOURS, PARKING):
            await add(page, fields)
        delivery = await add(page, DELIVERY)
        async with relay.client() as visitor:
            started = await start_thread(visitor, "Hello, do you deliver?")
        messages = await history(relay, started["token"])
        assert [(m["author"], m["answer"]) for m in messages] == [
            ("visitor", None),
            ("system", delivery["id"]),
        ]
        assert messages[1]["body"] == DELIVERY["answer"]

        # Changed: the next visitor gets the new words at once.
        path = f"{ANSWERS}/{delivery['id']}"
        await page.post(path, {"answer": "We deliver within 15 km now."})
        async with relay.client() as visitor:
            started = await start_thread(visitor, "do you deliver?")
        assert (await history(relay, started["token"]))[-1]["body"] == (
            "We deliver within 15 km now."
        )

        # Removed: nothing is sent any more (no other answer is about delivery).
        assert (await page.post(f"{path}/remove")).status_code == NO_CONTENT
        async with relay.client() as visitor:
            started = await start_thread(visitor, "do you deliver?")
        assert [m["author"] for m in await history(relay, started["token"])] == ["visitor"]
