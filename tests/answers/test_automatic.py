"""The automatic answer, on a real relay of either engine: sent at once in the
visitor's language when nobody is at the inbox and one answer matches surely, marked
with the answer it sent, once per answer and thread; never to a greeting, never while
an owner is looking; the owner still hears of the message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.answers.library import read_csv, terms_of
from tests.answers.test_library import FAQ
from tests.mail.smtp_sink import SinkServer
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, start_thread
from tests.test_inbox_api import inbox, inbox_socket

pytestmark = BOTH_ENGINES


async def with_faq(relay: RunningRelay) -> dict[str, str]:
    """The FAQ imported; its answers' ids by question."""
    answers = read_csv(FAQ, "alpha", "en")
    store = relay.services.store
    await relay.call(
        store.replace_answers("alpha", [(a, terms_of(a)) for a in answers], languages={"en", "fr"})
    )
    return {a.question: a.id for a in await relay.call(store.site_answers("alpha"))}


async def history(relay: RunningRelay, token: str) -> list[dict[str, Any]]:
    async with relay.client() as client:
        answer = await client.get("/v1/thread", headers=bearer(token))
    return answer.json()["messages"]  # type: ignore[no-any-return]


async def test_a_sure_question_is_answered_at_once_and_once(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    # Mail on, owners told an hour later: the delivery waits in the outbox to be seen.
    relay = make_relay(smtp_url=sink.url, reply_domain="reply.example", owner_notify_delay=3600)
    ids = await with_faq(relay)
    async with relay.client() as client:
        started = await start_thread(client, "Hi! Do you deliver?")
        token = started["token"]
        again = await client.post(
            "/v1/thread/messages", json={"body": "do you deliver?"}, headers=bearer(token)
        )
        assert again.status_code == 201
        greeting = await client.post(
            "/v1/thread/messages", json={"body": "thanks!"}, headers=bearer(token)
        )
        assert greeting.status_code == 201
    messages = await history(relay, token)
    assert [(m["author"], m["answer"]) for m in messages] == [
        ("visitor", None),
        ("system", ids["Do you deliver?"]),
        ("visitor", None),  # the same answer is not sent twice in a thread
        ("visitor", None),  # thanks get no answer
    ]
    assert messages[1]["body"] == "We deliver within 10 km for orders over 30 euros."
    assert messages[1]["via"] == "widget"
    with relay.db() as db:  # the owner is still told of the visitor's message
        queued = db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'owner_notify'").fetchone()[0]
    assert queued >= 1


async def test_the_visitor_gets_the_answer_in_their_language(relay: RunningRelay) -> None:
    ids = await with_faq(relay)
    async with relay.client() as client:
        started = await client.post(
            "/v1/sites/alpha/threads",
            json={"body": "Vous êtes ouverts quand ?", "language": "fr"},
        )
    messages = await history(relay, started.json()["token"])
    assert messages[-1]["answer"] == ids["Quels sont vos horaires ?"]
    assert messages[-1]["body"].startswith("Nous sommes ouverts")


async def test_nothing_is_sent_while_an_owner_is_at_the_inbox(relay: RunningRelay) -> None:
    await with_faq(relay)
    async with inbox(relay) as page, inbox_socket(page), relay.client() as client:
        started = await start_thread(client, "Do you deliver?")  # an owner is looking
    messages = await history(relay, started["token"])
    assert [m["author"] for m in messages] == ["visitor"]


async def test_suggestions_while_typing_store_nothing(relay: RunningRelay) -> None:
    ids = await with_faq(relay)
    async with relay.client() as client:
        typed = await client.post("/v1/sites/alpha/suggestions", json={"text": "deliv"})
        fuller = await client.post(
            "/v1/sites/alpha/suggestions", json={"text": "how much does delivery cost"}
        )
        french = await client.post(
            "/v1/sites/alpha/suggestions", json={"text": "horaires", "language": "fr"}
        )
        short = await client.post("/v1/sites/alpha/suggestions", json={"text": "hi"})
        bad = await client.post("/v1/sites/alpha/suggestions", json={"text": 5})
        async with relay.client(origin="https://evil.example") as other:
            elsewhere = await other.post("/v1/sites/alpha/suggestions", json={"text": "delivery"})
    assert fuller.status_code == 200
    found = [s["id"] for s in fuller.json()["suggestions"]]
    assert found[0] == ids["How much is delivery?"] and len(found) <= 3
    assert set(fuller.json()["suggestions"][0]) == {"id", "question", "answer"}
    assert typed.status_code == 200
    assert [s["id"] for s in french.json()["suggestions"]] == [ids["Quels sont vos horaires ?"]]
    assert short.json() == {"suggestions": []}
    assert bad.status_code == 422 and elsewhere.status_code == 403
    assert relay.counts()["threads"] == 0  # nothing stored


async def test_suggestions_are_rate_limited_per_address(
    make_relay: Callable[..., RunningRelay],
) -> None:
    relay = make_relay(suggestions_per_minute=2)
    async with relay.client() as client:
        answers = [
            (await client.post("/v1/sites/alpha/suggestions", json={"text": "parking"})).status_code
            for _ in range(3)
        ]
    assert answers == [200, 200, 429]


async def test_no_automatic_answer_while_an_owner_is_in_the_conversation(
    relay: RunningRelay,
) -> None:
    # An owner answering by email is never "at the inbox"; their recent reply says a
    # person is there.
    await with_faq(relay)
    async with relay.client() as client:
        started = await start_thread(client, "Hello, a question about a cake")
        thread, token = started["thread"]["id"], started["token"]
        replied = await client.post(
            f"/v1/owner/threads/{thread}/messages",
            json={"body": "Sure, ask away!"},
            headers=bearer(relay.owner_token()),
        )
        assert replied.status_code == 201
        asked = await client.post(
            "/v1/thread/messages", json={"body": "Do you deliver?"}, headers=bearer(token)
        )
        assert asked.status_code == 201
    assert [m["author"] for m in await history(relay, token)] == ["visitor", "owner", "visitor"]
