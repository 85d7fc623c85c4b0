"""Attacks on automatic answers (issue 17): the public suggestions route and the inbox's
answers API. Another site's answers never leak, hostile text is only ever data, a huge
word costs nothing, and another owner can neither read nor change a site's answers."""

from __future__ import annotations

import json

from relay.answers.library import terms_of
from relay.models import Answer
from tests.pg import BOTH_ENGINES
from tests.support import BETA_ORIGIN, RunningRelay
from tests.test_inbox_api import inbox

pytestmark = BOTH_ENGINES

HOSTILE = '<img src=x onerror="alert(1)">Opening hours: 7am to 7pm'


async def seed(relay: RunningRelay) -> dict[str, str]:
    """alpha answers about opening hours (with hostile markup); beta about a secret."""
    store = relay.services.store
    made = {}
    for site, question, text in [
        ("alpha", "What are your opening hours?", HOSTILE),
        ("beta", "What is the staff discount code?", "BETA-SECRET-CODE"),
    ]:
        answer = Answer("", site, "en", question, ("When are you open?",), text)
        saved = await relay.call(store.add_answer(answer, terms_of(answer)))
        made[site] = saved.id
    return made


async def test_suggestions_never_cross_sites_and_stay_data(relay: RunningRelay) -> None:
    await seed(relay)
    async with relay.client() as client:
        mine = await client.post("/v1/sites/alpha/suggestions", json={"text": "opening hours"})
        theirs = await client.post(
            "/v1/sites/alpha/suggestions", json={"text": "staff discount code"}
        )
        huge = await client.post("/v1/sites/alpha/suggestions", json={"text": "x" * 500})
        too_long = await client.post("/v1/sites/alpha/suggestions", json={"text": "x" * 501})
        wrong_language = await client.post(
            "/v1/sites/alpha/suggestions", json={"text": "opening hours", "language": "../../en"}
        )
        not_json = await client.post(
            "/v1/sites/alpha/suggestions",
            content=b"{",
            headers={"content-type": "application/json"},
        )
    async with relay.client(origin=BETA_ORIGIN) as beta_page:  # beta's page asking alpha
        cross = await beta_page.post("/v1/sites/alpha/suggestions", json={"text": "opening"})
    assert mine.status_code == 200
    assert mine.headers["content-type"].startswith("application/json")
    assert json.loads(mine.text)["suggestions"][0]["answer"] == HOSTILE  # data, not markup
    assert "BETA-SECRET-CODE" not in theirs.text
    assert huge.status_code == 200 and huge.json() == {"suggestions": []}
    assert too_long.status_code == 422
    assert wrong_language.status_code == 200  # an unknown language is the site's
    assert not_json.status_code == 400
    assert cross.status_code == 403
    assert relay.counts()["threads"] == 0


async def test_another_owner_can_neither_read_nor_change_a_sites_answers(
    relay: RunningRelay,
) -> None:
    made = await seed(relay)
    async with inbox(relay, "owner@beta.example") as other:
        listed = await other.get("/inbox/api/sites/alpha/answers")
        asked = await other.post("/inbox/api/sites/alpha/answers/ask", {"text": "opening hours"})
        added = await other.post(
            "/inbox/api/sites/alpha/answers", {"question": "Q?", "answer": "A.", "language": "en"}
        )
        changed = await other.post(
            f"/inbox/api/sites/alpha/answers/{made['alpha']}", {"answer": "Hijacked."}
        )
        # Beta's own site, but alpha's answer id: not found either.
        through_own = await other.post(
            f"/inbox/api/sites/beta/answers/{made['alpha']}", {"answer": "Hijacked."}
        )
        removed = await other.post(f"/inbox/api/sites/alpha/answers/{made['alpha']}/remove")
        no_csrf = await other.client.post(
            "/inbox/api/sites/beta/answers", json={"question": "Q?", "answer": "A."}
        )
    assert [r.status_code for r in (listed, asked, added, changed, through_own, removed)] == [
        404
    ] * 6
    assert no_csrf.status_code == 403
    answers = await relay.call(relay.services.store.site_answers("alpha"))
    assert [a.answer for a in answers] == [HOSTILE]
    assert len(await relay.call(relay.services.store.site_answers("beta"))) == 1
