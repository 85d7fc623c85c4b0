"""The channel seam (relay/channels): a channel's delivery worker and the inbound accept
step every channel ends with, over a real store of either engine. The channel here is
one a test can script (what its provider answers); nothing of the relay is replaced."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

from relay.attachments.blobs import LocalBlobs
from relay.channels.accept import Accept, Inbound, Received, Verdict
from relay.channels.channel import Failed, Retry, SendResult, Sent, Skipped
from relay.channels.worker import MAX_ATTEMPTS, DeliveryWorker
from relay.conversations.files import Files
from relay.limits import RateLimiter
from relay.models import Author, Via
from relay.store import Store
from relay.store.engine import StoreEvent
from relay.store.outbox_rows import DeliveryKind, OutboxItem, cancel, claim, queue_delivery
from relay.store.rows import Db
from tests.pg import BOTH_ENGINES, connect
from tests.support import ALPHA, talk

OWNER = ALPHA.owner_emails[0]
SEND_TIMEOUT = 1.0


class ScriptedChannel:
    """A channel whose provider answers what the test says, in order. Like every
    channel, it claims the delivery first (or cancels it: nothing left to say)."""

    name = Via.API  # any registered name: the worker only files rows by it

    def __init__(self, store: Store, answers: list[SendResult]) -> None:
        self.store = store
        self.answers = answers
        self.sent: list[OutboxItem] = []

    def routes(self) -> list[BaseRoute]:
        return []

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        yield

    async def send(self, delivery: OutboxItem) -> SendResult:
        self.sent.append(delivery)
        answer = self.answers.pop(0)

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            if isinstance(answer, Skipped):
                cancel(db, delivery.id, "nothing left to say")
            else:
                claim(db, delivery.id)
            return None, []

        await self.store.write(op)
        return answer


async def queue(store: Store, channel: str, thread: str, recipient: str) -> None:
    def op(db: Db) -> tuple[None, list[StoreEvent]]:
        return None, [queue_delivery(db, channel, DeliveryKind.VISITOR, thread, recipient, 0)]

    await store.write(op)


def outbox(store: Store) -> list[Any]:
    with connect(store) as db:
        return db.execute("SELECT * FROM outbox ORDER BY id").fetchall()


async def deliver_due(worker: DeliveryWorker) -> None:
    """One round of the worker's loop: what is due on its channel, in order."""
    for item in await worker.store.due_deliveries(worker.channel.name):
        await worker.deliver(item)


@BOTH_ENGINES
async def test_the_worker_files_each_answer_and_touches_no_other_channel(store: Store) -> None:
    started = await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    thread = started.thread.id
    for recipient in ("sent@x.example", "refused@x.example", "later@x.example"):
        await queue(store, "api", thread, recipient)
    await queue(store, "email", thread, "other-channel@x.example")
    channel = ScriptedChannel(store, [Sent(upto_seq=7), Failed("550 no such user"), Retry("busy")])
    worker = DeliveryWorker(store, channel, send_timeout=SEND_TIMEOUT)
    await deliver_due(worker)

    assert [item.recipient for item in channel.sent] == [
        "sent@x.example",
        "refused@x.example",
        "later@x.example",
    ]
    rows = {row["recipient"]: row for row in outbox(store)}
    assert (rows["sent@x.example"]["status"], rows["sent@x.example"]["upto_seq"]) == ("sent", 7)
    assert rows["refused@x.example"]["status"] == "failed"
    assert rows["refused@x.example"]["last_error"] == "550 no such user"
    later = rows["later@x.example"]
    assert (later["status"], later["attempts"], later["last_error"]) == ("pending", 1, "busy")
    assert later["not_before"] > later["updated_at"]  # backed off, not due at once
    other = rows["other-channel@x.example"]
    assert (other["status"], other["attempts"], other["channel"]) == ("pending", 0, "email")


@BOTH_ENGINES
async def test_a_delivery_that_keeps_failing_gives_up_visibly(store: Store) -> None:
    started = await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    await queue(store, "api", started.thread.id, "flaky@x.example")
    with connect(store) as db:  # its last try left
        db.execute("UPDATE outbox SET attempts = ?", (MAX_ATTEMPTS - 1,))
    channel = ScriptedChannel(store, [Retry("timeout")])
    await deliver_due(DeliveryWorker(store, channel, send_timeout=SEND_TIMEOUT))
    [row] = outbox(store)
    assert row["status"] == "failed" and row["last_error"].startswith(
        f"gave up after {MAX_ATTEMPTS}"
    )


@BOTH_ENGINES
async def test_a_skipped_delivery_is_left_as_the_channel_filed_it(store: Store) -> None:
    started = await talk(store).start("alpha", body="hi", client_id=None, name=None, page=None)
    await queue(store, "api", started.thread.id, "gone@x.example")
    channel = ScriptedChannel(store, [Skipped()])
    await deliver_due(DeliveryWorker(store, channel, send_timeout=SEND_TIMEOUT))
    [row] = outbox(store)
    assert (row["attempts"], row["status"]) == (0, "cancelled")
    await deliver_due(DeliveryWorker(store, channel, send_timeout=SEND_TIMEOUT))
    assert len(channel.sent) == 1  # cancelled: not due again


# -- accept ----------------------------------------------------------------------------


def reply(thread: str, **changes: Any) -> Inbound:
    base = Inbound(Via.EMAIL, "<r1@mail.example>", thread, Author.OWNER, OWNER, OWNER, "Yes.")
    return replace(base, **changes)


@BOTH_ENGINES
async def test_accept_posts_once_with_the_channel_as_via(store: Store, tmp_path: Path) -> None:
    conversations = talk(store)
    accept = Accept(store, conversations, Files(store, LocalBlobs(tmp_path)))
    started = await conversations.start("alpha", body="hi", client_id=None, name=None, page=None)
    thread = started.thread.id
    outcome = await accept.post(reply(thread))
    assert outcome.verdict is Verdict.POSTED and outcome.message is not None
    assert (outcome.message.author, outcome.message.via) == (Author.OWNER, Via.EMAIL)
    await accept.record(Via.EMAIL, "<r1@mail.example>", outcome)
    assert await accept.seen(Via.EMAIL, "<r1@mail.example>")
    # The same id from another provider is another message.
    assert not await accept.seen(Via.API, "<r1@mail.example>")
    again = await accept.post(reply(thread))  # a second ingress, before the record
    assert again.message is not None and again.message.seq == outcome.message.seq
    assert len(await store.thread_messages(thread, 0, 10)) == 2


@BOTH_ENGINES
async def test_accept_keeps_the_files_it_takes_and_says_which_it_did_not(
    store: Store, tmp_path: Path
) -> None:
    files = Files(store, LocalBlobs(tmp_path / "blobs"))
    conversations = talk(store)
    accept = Accept(store, conversations, files)
    started = await conversations.start("alpha", body="hi", client_id=None, name=None, page=None)
    pdf, page = await files.scratch(), await files.scratch()
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n")
    page.write_bytes(b"<html><script>alert(1)</script></html>")  # never served from here
    sent = (Received("prices.pdf", pdf), Received("evil.html", page))
    outcome = await accept.post(reply(started.thread.id, body="Here you are", files=sent))
    assert outcome.posted and outcome.message is not None
    assert [(a.name, a.type) for a in outcome.message.attachments] == [
        ("prices.pdf", "application/pdf")
    ]
    assert outcome.message.body.startswith("Here you are\n\n(evil.html was sent but not kept")
    assert not pdf.exists() and not page.exists()  # kept as a blob, or gone
    # Only files, no text: still a message.
    photo = await files.scratch()
    photo.write_bytes(b"%PDF-1.4\n%%EOF\n")
    only = await accept.post(
        reply(
            started.thread.id,
            external_id="<r2@mail.example>",
            body="",
            files=(Received("x.pdf", photo),),
        )
    )
    assert only.posted and only.message is not None and only.message.body == ""


@BOTH_ENGINES
async def test_files_past_the_sites_total_for_a_message_are_noted_not_kept(
    store: Store, tmp_path: Path
) -> None:
    await store.add_site(replace(ALPHA, settings={"max_message_mb": 1}), replace=True)
    files = Files(store, LocalBlobs(tmp_path / "blobs"))
    conversations = talk(store)
    accept = Accept(store, conversations, files)
    started = await conversations.start("alpha", body="hi", client_id=None, name=None, page=None)
    sent = []
    for n in range(3):  # 0.4 MB each: two fit in 1 MB, the third does not
        scratch = await files.scratch()
        scratch.write_bytes(b"%PDF-1.4\n%" + bytes([65 + n]) * 400_000 + b"\n%%EOF\n")
        sent.append(Received(f"part{n}.pdf", scratch))
    outcome = await accept.post(reply(started.thread.id, body="Plans", files=tuple(sent)))
    assert outcome.posted and outcome.message is not None
    assert [a.name for a in outcome.message.attachments] == ["part0.pdf", "part1.pdf"]
    assert "part2.pdf was sent but not kept" in outcome.message.body


@BOTH_ENGINES
async def test_accept_refuses_who_may_not_write_and_stores_nothing(
    store: Store, tmp_path: Path
) -> None:
    conversations = talk(store)
    accept = Accept(store, conversations, Files(store, LocalBlobs(tmp_path)))
    started = await conversations.start("alpha", body="hi", client_id=None, name=None, page=None)
    thread = started.thread.id
    refused = [
        reply(thread, sender="mallory@evil.example"),  # not the owner the channel wrote to
        reply(thread, on_behalf_of="former@alpha.example", sender="former@alpha.example"),
        reply(thread, author=Author.VISITOR),  # visitors write in through their own channels
    ]
    for inbound in refused:
        assert (await accept.post(inbound)).verdict is Verdict.FORGED, inbound
    assert (await accept.post(reply(thread, body=""))).verdict is Verdict.EMPTY
    assert [m.body for m in await store.thread_messages(thread, 0, 10)] == ["hi"]


@BOTH_ENGINES
async def test_accept_takes_an_alias_the_owner_registered(store: Store, tmp_path: Path) -> None:
    conversations = talk(store)
    accept = Accept(store, conversations, Files(store, LocalBlobs(tmp_path)))
    await store.save_owner(replace(await store.get_owner(OWNER), aliases=("me@phone.example",)))
    started = await conversations.start("alpha", body="hi", client_id=None, name=None, page=None)
    outcome = await accept.post(reply(started.thread.id, sender="ME@phone.example"))
    assert outcome.verdict is Verdict.POSTED


@BOTH_ENGINES
async def test_a_loop_is_capped_for_now_and_not_recorded(store: Store, tmp_path: Path) -> None:
    conversations = talk(store)
    accept = Accept(store, conversations, Files(store, LocalBlobs(tmp_path)))
    accept.per_thread = RateLimiter(1, 3600)  # a tight cap to hit
    started = await conversations.start("alpha", body="hi", client_id=None, name=None, page=None)
    thread = started.thread.id
    assert (await accept.post(reply(thread))).posted
    capped = await accept.post(reply(thread, external_id="<r2@mail.example>"))
    assert capped.verdict is Verdict.RATE_LIMITED and capped.temporary
    await accept.record(Via.EMAIL, "<r2@mail.example>", capped)
    assert not await accept.seen(Via.EMAIL, "<r2@mail.example>")  # delivered again later
