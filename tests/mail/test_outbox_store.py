"""The outbox's rules in the store itself: who gets which email, claiming, batching."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from relay.conversations import Actor, Conversations
from relay.conversations.notify import NotificationPolicy
from relay.models import Author, Via, utc_now
from relay.store import Store
from relay.store.outbox_rows import DeliveryKind
from tests.pg import BOTH_ENGINES, connect, make_store
from tests.support import ALPHA

pytestmark = BOTH_ENGINES

TWO_OWNERS = replace(ALPHA, owner_emails=("owner@alpha.example", "partner@alpha.example"))


POLICY = NotificationPolicy(owner_delay=0, visitor_delay=0)


def talk(store: Store) -> Conversations:
    """The one write path, telling owners and visitors as the relay does."""
    return Conversations(store, notify=POLICY)


@pytest.fixture
async def store(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Store]:
    store = make_store(engine, tmp_path, request)
    await store.open()
    await store.add_site(TWO_OWNERS)
    yield store
    await store.close()


def rows(store: Store) -> list[Any]:
    with connect(store) as db:
        return db.execute("SELECT * FROM outbox ORDER BY id").fetchall()


async def test_every_owner_address_is_notified(store: Store) -> None:
    await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    due = await store.due_deliveries("email")
    assert sorted(item.recipient for item in due) == [
        "owner@alpha.example",
        "partner@alpha.example",
    ]
    jobs = [await store.prepare_mail(item, f"tag{item.id}", POLICY.clock) for item in due]
    assert all(job is not None and [m.body for m in job.new] == ["hi"] for job in jobs)


async def test_message_during_a_send_gets_its_own_email(store: Store) -> None:
    started = await talk(store).start("alpha", body="one", client_id=None, name=None, page=None)
    item = (await store.due_deliveries("email"))[0]
    job = await store.prepare_mail(item, "tag1", POLICY.clock)  # claimed: on its way
    assert job is not None
    await talk(store).post(started.thread.id, Actor(Author.VISITOR, Via.WIDGET), "two", None)
    await store.delivery_sent(job.item, job.upto_seq)
    pending = [
        r for r in rows(store) if r["status"] == "pending" and r["recipient"] == item.recipient
    ]
    assert len(pending) == 1  # "two" was not swallowed by the email already written
    later = await store.prepare_mail(
        next(i for i in await store.due_deliveries("email") if i.recipient == item.recipient),
        "tag1",
        POLICY.clock,
    )
    assert later is not None and [m.body for m in later.new] == ["two"]


async def test_a_rotated_key_keeps_the_issued_tag(store: Store) -> None:
    started = await talk(store).start("alpha", body="one", client_id=None, name=None, page=None)
    first = await store.prepare_mail(
        (await store.due_deliveries("email"))[0], "old-key-tag", POLICY.clock
    )
    assert first is not None
    await store.delivery_sent(first.item, first.upto_seq)
    await talk(store).post(started.thread.id, Actor(Author.VISITOR, Via.WIDGET), "two", None)
    same = [i for i in await store.due_deliveries("email") if i.recipient == first.item.recipient][
        0
    ]
    second = await store.prepare_mail(same, "new-key-tag", POLICY.clock)
    assert second is not None and second.tag == "old-key-tag"  # replies still route


async def test_a_changed_visitor_address_is_not_written_to(store: Store) -> None:
    started = await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    await store.set_contact(started.visitor, 0, name=None, email="first@example.com")
    await talk(store).post(started.thread.id, Actor(Author.OWNER, Via.INBOX), "reply", None)
    await store.set_contact(started.visitor, 0, name=None, email="second@example.com")
    to_old = [i for i in await store.due_deliveries("email") if i.kind == DeliveryKind.VISITOR]
    assert [i.recipient for i in to_old] == ["first@example.com"]
    assert await store.prepare_mail(to_old[0], None, POLICY.clock) is None
    assert rows(store)[-1]["last_error"] == "the visitor changed or removed this address"


async def test_an_interrupted_send_goes_back_to_pending(store: Store) -> None:
    await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    item = (await store.due_deliveries("email"))[0]
    assert await store.prepare_mail(item, "t", POLICY.clock) is not None  # then the process died
    assert await store.requeue_interrupted("api", claimed_before=utc_now()) == 0  # not its rows
    assert await store.requeue_interrupted("email", claimed_before=utc_now()) == 1
    assert item.id in {i.id for i in await store.due_deliveries("email")}
