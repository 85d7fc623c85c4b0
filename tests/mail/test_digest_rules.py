"""Digest rules without a relay: when a digest leaves (the site's wall clock, across DST
changes and odd offsets), and what the store queues, joins, gathers and cancels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from relay.channels.email.compose import digest_email
from relay.clock import Clock, parse_instant
from relay.conversations import Actor, Conversations
from relay.conversations.notify import NotificationPolicy
from relay.models import Author, Via
from relay.store import Store
from relay.store.digest import next_digest_at
from relay.store.outbox_rows import DeliveryKind, OutboxItem
from tests.mail.conftest import OWNER, set_owner
from tests.pg import BOTH_ENGINES, connect, make_store
from tests.support import ALPHA, BETA

pytestmark = BOTH_ENGINES

PARIS = "Europe/Paris"
BETA_OWNER = "owner@beta.example"
HALF_PAST_NINE = "2026-11-25T09:30:00Z"  # the store's clock: the next hour is 30 min away


def at(text: str) -> datetime:
    return parse_instant(text)


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        ("2026-11-25T09:59:58Z", "UTC", "2026-11-25T10:00:00Z"),
        ("2026-11-25T10:00:00Z", "UTC", "2026-11-25T11:00:00Z"),  # on the hour: the next
        ("2026-11-25T10:00:00Z", "Asia/Kolkata", "2026-11-25T10:30:00Z"),  # UTC+5:30
        ("2026-11-25T10:00:00Z", "Asia/Kathmandu", "2026-11-25T10:15:00Z"),  # UTC+5:45
        # Paris springs forward at 01:00 UTC on 29 March 2026: 01:30 CET, then 03:00 CEST.
        ("2026-03-29T00:30:00Z", PARIS, "2026-03-29T01:00:00Z"),
        # It falls back at 01:00 UTC on 25 October: 02:30 CEST, then 02:00 CET (not 03:00).
        ("2026-10-25T00:30:00Z", PARIS, "2026-10-25T01:00:00Z"),
        ("2026-10-25T01:30:00Z", PARIS, "2026-10-25T02:00:00Z"),
        ("2026-11-25T10:20:00Z", "No/Such_Zone", "2026-11-25T11:00:00Z"),  # unknown: UTC
        ("2026-11-25T10:20:00Z", None, "2026-11-25T11:00:00Z"),  # unset: UTC
    ],
)
def test_hourly_digest_leaves_at_the_next_top_of_the_hour(
    now: str, zone: str | None, expected: str
) -> None:
    assert next_digest_at("hourly", at(now), zone) == at(expected)


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        ("2026-11-25T06:59:00Z", PARIS, "2026-11-25T07:00:00Z"),  # 07:59 CET: 08:00 today
        ("2026-11-25T07:00:00Z", PARIS, "2026-11-26T07:00:00Z"),  # 08:00 sharp: tomorrow
        ("2026-07-01T05:00:00Z", PARIS, "2026-07-01T06:00:00Z"),  # summer: 08:00 CEST
        ("2026-03-28T20:00:00Z", PARIS, "2026-03-29T06:00:00Z"),  # DST starts overnight
        ("2026-10-24T20:00:00Z", PARIS, "2026-10-25T07:00:00Z"),  # DST ends overnight
        ("2026-11-25T07:30:00Z", "UTC", "2026-11-25T08:00:00Z"),
        ("2026-11-25T23:30:00Z", "America/New_York", "2026-11-26T13:00:00Z"),  # 18:30 EST
        ("2026-11-25T23:30:00Z", "Pacific/Auckland", "2026-11-26T19:00:00Z"),  # 12:30 NZDT
    ],
)
def test_daily_digest_leaves_at_eight_on_the_site_clock(now: str, zone: str, expected: str) -> None:
    assert next_digest_at("daily", at(now), zone) == at(expected)


def test_only_hourly_and_daily_have_a_schedule() -> None:
    with pytest.raises(ValueError, match="'hourly' or 'daily', not 'weekly'"):
        next_digest_at("weekly", at(HALF_PAST_NINE), "UTC")


# -- the store -------------------------------------------------------------------------


POLICY = NotificationPolicy(owner_delay=0, visitor_delay=0, clock=Clock(at(HALF_PAST_NINE)))


def talk(store: Store) -> Conversations:
    """The one write path, telling owners and visitors as the relay does."""
    return Conversations(store, notify=POLICY)


@pytest.fixture
async def store(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Store]:
    store = make_store(engine, tmp_path, request)
    await store.open()
    await store.add_site(ALPHA)
    await store.add_site(replace(BETA, owner_emails=(BETA_OWNER, OWNER)))
    yield store
    await store.close()


def rows(store: Store, kind: str | None = None) -> list[Any]:
    with connect(store) as db:
        if kind is None:
            return db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
        return db.execute("SELECT * FROM outbox WHERE kind = ? ORDER BY id", (kind,)).fetchall()


def pending(store: Store, kind: str) -> list[OutboxItem]:
    return [
        OutboxItem(r["id"], r["kind"], r["thread_id"], r["recipient"], r["attempts"])
        for r in rows(store, kind)
        if r["status"] == "pending"
    ]


def tag_for(thread: str) -> str:
    return f"tag-{thread}"


async def visitor_says(store: Store, thread: str, body: str) -> int:
    message, _ = await talk(store).post(thread, Actor(Author.VISITOR, Via.WIDGET), body, None)
    return message.seq


async def test_a_digest_gathers_every_site_once_and_skips_what_was_read(store: Store) -> None:
    set_owner(store, OWNER, notify="hourly")
    ann = await talk(store).start("alpha", body="one", client_id=None, name="Ann", page=None)
    await visitor_says(store, ann.thread.id, "two")
    bob = await talk(store).start("beta", body="trois", client_id=None, name=None, page=None)
    [digest] = pending(store, DeliveryKind.DIGEST)
    assert digest.recipient == OWNER and digest.thread is None
    assert [i.recipient for i in pending(store, DeliveryKind.OWNER)] == [BETA_OWNER]  # per message
    assert (
        rows(store, DeliveryKind.DIGEST)[0]["not_before"]
        > rows(store, DeliveryKind.OWNER)[0]["not_before"]
    )  # ten o'clock on the store's clock, half an hour away

    job = await store.prepare_digest(digest, tag_for)
    assert job is not None and job.mode == "hourly" and job.language == "en"
    assert [(t.thread.id, [m.body for m in t.new]) for t in job.threads] == [
        (ann.thread.id, ["one", "two"]),
        (bob.thread.id, ["trois"]),
    ]
    assert [t.tag for t in job.threads] == [tag_for(ann.thread.id), tag_for(bob.thread.id)]
    assert job.message_count == 3 and job.upto_seq == bob.message.seq
    await store.delivery_sent(job.item, job.upto_seq)

    # Later: new messages on both; the owner reads Bob's in the inbox.
    three = await visitor_says(store, ann.thread.id, "three")
    four = await visitor_says(store, bob.thread.id, "quatre")
    await talk(store).mark_read(bob.thread.id, Author.OWNER, four)
    [following] = pending(store, DeliveryKind.DIGEST)
    assert following.id != digest.id
    again = await store.prepare_digest(following, lambda thread: "a-newer-key-tag")
    assert again is not None
    assert [[m.body for m in t.new] for t in again.threads] == [["three"]]
    assert again.threads[0].tag == tag_for(ann.thread.id)  # the tag issued first stays
    assert again.upto_seq == three


async def test_a_digest_with_nothing_new_is_cancelled(store: Store) -> None:
    set_owner(store, OWNER, notify="daily")
    started = await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    await talk(store).mark_read(started.thread.id, Author.OWNER, started.message.seq)
    [digest] = pending(store, DeliveryKind.DIGEST)
    assert await store.prepare_digest(digest, tag_for) is None
    assert rows(store, DeliveryKind.DIGEST)[0]["status"] == "cancelled"
    assert rows(store, DeliveryKind.DIGEST)[0]["last_error"] == "already seen"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("not_an_owner", "no longer an owner address of any site"),
        ("suppressed", "address suppressed"),
        ("off", "the owner turned these emails off"),
    ],
)
async def test_a_digest_nobody_wants_any_more_is_cancelled(
    store: Store, change: str, reason: str
) -> None:
    set_owner(store, OWNER, notify="hourly")
    await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    [digest] = pending(store, DeliveryKind.DIGEST)
    if change == "not_an_owner":
        await store.add_site(replace(ALPHA, owner_emails=("new@alpha.example",)), replace=True)
        await store.add_site(replace(BETA, owner_emails=(BETA_OWNER,)), replace=True)
    elif change == "suppressed":
        with connect(store) as db:  # suppress() would also drop the pending row
            db.execute(
                "INSERT INTO suppressed (address, reason, created_at) VALUES (?, 'test', '')",
                (OWNER,),
            )
    else:
        set_owner(store, OWNER, notify=change)
    assert await store.prepare_digest(digest, tag_for) is None
    row = rows(store, DeliveryKind.DIGEST)[0]
    assert (row["status"], row["last_error"]) == ("cancelled", reason)


async def test_a_digest_pending_when_the_owner_goes_back_to_message_still_goes(
    store: Store,
) -> None:
    """Its messages have no email of their own: it is the last digest."""
    set_owner(store, OWNER, notify="hourly")
    await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    [digest] = pending(store, DeliveryKind.DIGEST)
    set_owner(store, OWNER, notify="message")
    job = await store.prepare_digest(digest, tag_for)
    assert job is not None and [m.body for t in job.threads for m in t.new] == ["hi"]


async def test_an_email_queued_before_a_switch_to_digests_joins_the_digest(store: Store) -> None:
    started = await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    [email] = pending(store, DeliveryKind.OWNER)
    set_owner(store, OWNER, notify="daily")
    assert await store.prepare_mail(email, "tag", POLICY.clock) is None
    assert rows(store, DeliveryKind.OWNER)[0]["last_error"] == (
        "the owner now gets digests: moved into the next one"
    )
    [digest] = pending(store, DeliveryKind.DIGEST)
    job = await store.prepare_digest(digest, tag_for)
    assert job is not None and [m.seq for m in job.threads[0].new] == [started.message.seq]


async def test_an_email_queued_before_switching_off_is_cancelled(store: Store) -> None:
    await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    [email] = pending(store, DeliveryKind.OWNER)
    set_owner(store, OWNER, notify="off")
    assert await store.prepare_mail(email, "tag", POLICY.clock) is None
    assert rows(store, DeliveryKind.OWNER)[0]["last_error"] == "the owner turned these emails off"
    assert rows(store, DeliveryKind.DIGEST) == []


async def test_joining_keeps_one_digest_at_the_earlier_time(store: Store) -> None:
    set_owner(store, OWNER, notify="daily")
    started = await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    tomorrow_morning = rows(store, DeliveryKind.DIGEST)[0]["not_before"]
    set_owner(store, OWNER, notify="hourly")
    await visitor_says(store, started.thread.id, "still there?")
    [row] = rows(store, DeliveryKind.DIGEST)
    assert row["not_before"] < tomorrow_morning  # ten o'clock today now
    set_owner(store, OWNER, notify="daily")
    await visitor_says(store, started.thread.id, "hello?")
    assert [r["not_before"] for r in rows(store, DeliveryKind.DIGEST)] == [row["not_before"]]


async def test_digest_email_names_visitors_and_shows_the_latest_messages(store: Store) -> None:
    set_owner(store, OWNER, notify="hourly")
    started = await talk(store).start("alpha", body="m1", client_id=None, name=None, page=None)
    await store.set_contact(started.visitor, 0, name=None, email="ann@example.com")
    for n in range(2, 13):
        await visitor_says(store, started.thread.id, f"m{n} <i>")
    [digest] = pending(store, DeliveryKind.DIGEST)
    job = await store.prepare_digest(digest, tag_for)
    assert job is not None
    mail = digest_email(
        job,
        sender="notify@reply.example",
        reply_domain="reply.example",
        base_url="https://r.x",
        links=lambda attached: f"https://r.x/v1/attachments/t/{attached.name}",
    )
    assert mail["Subject"] == "12 new messages in 1 conversation"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "== ann@example.com on Alpha Bakery ==" in text  # no name: the address
    assert "Earlier messages not shown here: 2" in text
    assert "m1\n" not in text and "m2 <i>" not in text and "m3 <i>" in text
    assert "m12 <i>" in text and "every hour" in text
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "m12 &lt;i&gt;" in html and "<i>" not in html


async def test_the_first_digest_repeats_no_email_and_no_old_history(store: Store) -> None:
    """An owner who answered by email switches to digests: what an email already said
    is not said again, and old unread messages (history, not news) stay out."""
    ann = await talk(store).start(
        "alpha", body="emailed already", client_id=None, name=None, page=None
    )
    [email] = pending(store, DeliveryKind.OWNER)
    job = await store.prepare_mail(email, "tag", POLICY.clock)
    assert job is not None
    await store.delivery_sent(job.item, job.upto_seq)
    bob = await talk(store).start(
        "alpha", body="old, never emailed", client_id=None, name=None, page=None
    )
    for item in pending(store, DeliveryKind.OWNER):  # as if mail was off back then
        with connect(store) as db:
            db.execute("UPDATE outbox SET status = 'cancelled' WHERE id = ?", (item.id,))
    set_owner(store, OWNER, notify="hourly")
    await visitor_says(store, ann.thread.id, "news")
    [digest] = pending(store, DeliveryKind.DIGEST)
    gathered = await store.prepare_digest(digest, tag_for)
    assert gathered is not None
    assert [[m.body for m in t.new] for t in gathered.threads] == [["news"]]
    assert bob.thread.id not in {t.thread.id for t in gathered.threads}


async def test_a_failed_digest_merged_into_a_newer_one_keeps_its_time_and_news(
    store: Store,
) -> None:
    set_owner(store, OWNER, notify="daily")
    ann = await talk(store).start("alpha", body="first", client_id=None, name=None, page=None)
    [digest] = pending(store, DeliveryKind.DIGEST)
    claimed = await store.prepare_digest(digest, tag_for)  # being sent…
    assert claimed is not None
    await visitor_says(store, ann.thread.id, "meanwhile")  # …queues tomorrow's digest
    [newer] = pending(store, DeliveryKind.DIGEST)
    tomorrow = rows(store, DeliveryKind.DIGEST)[1]["not_before"]
    await store.delivery_retry(digest, "421 try later", delay=60)  # the send failed
    merged = next(r for r in rows(store, DeliveryKind.DIGEST) if r["id"] == newer.id)
    assert merged["not_before"] < tomorrow  # in a minute, not tomorrow morning
    again = await store.prepare_digest(newer, tag_for)
    assert again is not None
    assert [m.body for t in again.threads for m in t.new] == ["first", "meanwhile"]
