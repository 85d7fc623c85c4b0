"""The IMAP ingress against a real Dovecot and a real relay: replies left in the mailbox
(before the poller starts, or while it idles) reach the visitor's thread live, are
flagged or moved once processed, are posted once however often they are delivered, and
the poller survives servers that are down or drop it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, cast

import pytest

from relay.channels.backoff import equal_jitter
from relay.channels.email.imap import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    DONE_KEYWORD,
    IDLE_SECONDS,
    Mailbox,
    Poller,
    Session,
    backoff,
)
from relay.channels.email.inbound import Outcome, Pipeline, Verdict
from tests.mail.conftest import (
    REPLY_DOMAIN,
    eventually,
    issue_reply_tag,
    next_owner_message,
    owner_reply,
)
from tests.mail.dovecot import Dovecot
from tests.support import RunningRelay, bearer, free_port, start_thread

DONE = {"\\Seen", DONE_KEYWORD}
MakeRelay = Callable[..., RunningRelay]


def polling(make_relay: MakeRelay, url: str) -> RunningRelay:
    return make_relay(imap_url=url, reply_domain=REPLY_DOMAIN)


async def conversation(relay: RunningRelay) -> tuple[dict[str, Any], str]:
    """A visitor's thread started over HTTP, and the reply tag the owner's email got."""
    async with relay.client() as client:
        started = await start_thread(client, "Do you bake rye bread?")
    return started, issue_reply_tag(relay, started["thread"]["id"], "owner@alpha.example")


async def owner_bodies(relay: RunningRelay, visitor_token: str) -> list[str]:
    async with relay.client() as client:
        history = await client.get("/v1/thread", headers=bearer(visitor_token))
    assert history.status_code == 200, history.text
    return [m["body"] for m in history.json()["messages"] if m["author"] == "owner"]


def all_done(dovecot: Dovecot, user: str, count: int, folder: str = "INBOX") -> bool:
    flags = dovecot.flags(user, folder)
    return len(flags) == count and all(DONE.issubset(each) for each in flags)


async def test_reply_waiting_before_the_poller_starts_is_posted_and_flagged(
    make_relay: MakeRelay, dovecot: Dovecot, mailbox_user: str
) -> None:
    before = make_relay()  # no poller yet: the conversation and the owner's email happen
    started, tag = await conversation(before)
    before.stop()
    dovecot.append(mailbox_user, owner_reply(tag, "Yes, every Friday."))
    assert dovecot.flags(mailbox_user) == [set()]

    relay = polling(make_relay, dovecot.url(mailbox_user))
    message = await next_owner_message(relay, started["token"])

    assert message["body"] == "Yes, every Friday."
    assert message["author"] == "owner" and message["via"] == "email"
    await eventually(lambda: all_done(dovecot, mailbox_user, 1), "the reply to be flagged")


async def test_reply_appended_while_the_poller_idles_is_picked_up(
    make_relay: MakeRelay, dovecot: Dovecot, mailbox_user: str
) -> None:
    relay = polling(make_relay, dovecot.url(mailbox_user))
    started, tag = await conversation(relay)
    # Only IDLE can see this mail in time: the next re-IDLE is 25 minutes away.
    await eventually(lambda: dovecot.idling(mailbox_user), "the poller to IDLE")

    dovecot.append(mailbox_user, owner_reply(tag, "We close at six today."))
    message = await next_owner_message(relay, started["token"])

    assert message["body"] == "We close at six today."
    await eventually(lambda: all_done(dovecot, mailbox_user, 1), "the reply to be flagged")
    assert await owner_bodies(relay, started["token"]) == ["We close at six today."]


async def test_second_delivery_of_a_message_id_is_not_posted_again(
    make_relay: MakeRelay, dovecot: Dovecot, mailbox_user: str
) -> None:
    relay = polling(make_relay, dovecot.url(mailbox_user))
    started, tag = await conversation(relay)
    first = owner_reply(tag, "First answer.", message_id="<once@alpha.example>")
    dovecot.append(mailbox_user, first)
    assert (await next_owner_message(relay, started["token"]))["body"] == "First answer."

    dovecot.append(mailbox_user, first)  # the same email delivered again
    dovecot.append(mailbox_user, owner_reply(tag, "Second answer."))
    # Processed in order: by the time the second answer is there, the copy was seen.
    await eventually(lambda: all_done(dovecot, mailbox_user, 3), "all three to be flagged")

    assert await owner_bodies(relay, started["token"]) == ["First answer.", "Second answer."]
    with relay.db() as db:
        verdict = db.execute(
            "SELECT verdict FROM inbound WHERE channel = 'email' AND external_id = ?",
            ("once@alpha.example",),
        ).fetchone()
    assert verdict["verdict"] == "posted"


async def test_move_query_moves_processed_mail_to_that_folder(
    make_relay: MakeRelay, dovecot: Dovecot, mailbox_user: str
) -> None:
    relay = polling(make_relay, dovecot.url(mailbox_user, query="?move=Porch%20Done"))
    started, tag = await conversation(relay)
    dovecot.append(mailbox_user, owner_reply(tag, "Moved along."))

    assert (await next_owner_message(relay, started["token"]))["body"] == "Moved along."
    await eventually(
        lambda: (
            all_done(dovecot, mailbox_user, 1, "Porch Done") and dovecot.flags(mailbox_user) == []
        ),
        "the reply to move from INBOX to 'Porch Done'",
    )


async def test_mail_that_is_not_a_reply_is_flagged_and_posts_nothing(
    make_relay: MakeRelay, dovecot: Dovecot, mailbox_user: str
) -> None:
    relay = polling(make_relay, dovecot.url(mailbox_user))
    started, tag = await conversation(relay)
    dovecot.append(mailbox_user, b"From: someone@else.example\r\nSubject: hi\r\n\r\nspam\r\n")
    dovecot.append(mailbox_user, owner_reply(tag, "The real reply."))

    assert (await next_owner_message(relay, started["token"]))["body"] == "The real reply."
    await eventually(lambda: all_done(dovecot, mailbox_user, 2), "both to be flagged")
    assert await owner_bodies(relay, started["token"]) == ["The real reply."]


async def test_poller_waits_for_a_server_that_is_down_then_connects(
    make_relay: MakeRelay, mailbox_user: str
) -> None:
    server = Dovecot(free_port())  # not started yet: nothing listens on its port
    relay = polling(make_relay, server.url(mailbox_user))
    started, tag = await conversation(relay)
    async with relay.client() as client:
        assert (await client.get("/healthz")).status_code == 200  # the relay runs on
    server.start()
    try:
        server.append(mailbox_user, owner_reply(tag, "Back online."))
        message = await next_owner_message(relay, started["token"], timeout=15)
        assert message["body"] == "Back online."
    finally:
        server.stop()


async def test_poller_reconnects_when_the_server_drops_it(
    make_relay: MakeRelay, dovecot: Dovecot, mailbox_user: str
) -> None:
    relay = polling(make_relay, dovecot.url(mailbox_user))
    started, tag = await conversation(relay)
    await eventually(lambda: dovecot.idling(mailbox_user), "the poller to IDLE")

    dovecot.kick(mailbox_user)
    await eventually(lambda: not dovecot.idling(mailbox_user), "the connection to drop")
    dovecot.append(mailbox_user, owner_reply(tag, "Still here."))

    assert (await next_owner_message(relay, started["token"]))["body"] == "Still here."
    await eventually(lambda: dovecot.idling(mailbox_user), "the poller to IDLE again")


# -- the URL and the backoff, without a server ---------------------------------------


def test_mailbox_url_parts() -> None:
    mailbox = Mailbox.parse("imaps://me%40shop.example:p%3Ass@mail.example/Replies?move=Done")
    assert mailbox == Mailbox(
        tls=True,
        host="mail.example",
        port=993,
        user="me@shop.example",
        password="p:ss",
        folder="Replies",
        move_to="Done",
    )
    assert "p:ss" not in str(mailbox)
    plain = Mailbox.parse("imap://u:x@127.0.0.1:1143")
    assert (plain.tls, plain.port, plain.folder, plain.move_to) == (False, 1143, "INBOX", None)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("pop3://u:p@host/INBOX", "expected imap:// or imaps://"),
        ("imaps://host/INBOX", "got no user or no host"),
        ("imaps://u:p@host/Boîte", "expected an ASCII folder name"),
    ],
)
def test_bad_mailbox_urls_say_what_is_expected(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Mailbox.parse(url)


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    for attempt in range(1, 40):
        ceiling = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 1))
        delays = {backoff(attempt) for _ in range(20)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jittered, not in step
    assert backoff(1) <= BACKOFF_FIRST and backoff(100) <= BACKOFF_MAX


def test_jitter_leaves_the_process_wide_random_alone() -> None:
    # Hypothesis (and anyone who seeds `random`) sees a relay in the same process draw
    # from the shared generator as flakiness: the fuzz suite failed on it.
    random.seed(7)
    state = random.getstate()
    backoff(3)
    equal_jitter(10.0)
    assert random.getstate() == state


async def test_mail_announced_as_a_search_ends_is_not_left_for_later(
    dovecot: Dovecot, mailbox_user: str
) -> None:
    """Mail delivered between two commands is missing from the next SEARCH's result and
    announced only as that SEARCH ends; the poller must still take it before idling."""
    received: list[bytes] = []

    class Recorder:
        async def receive(self, raw: bytes, *, source: str) -> Outcome:
            received.append(raw)
            return Outcome(Verdict.NO_TAG)

    pipeline = cast(Pipeline, Recorder())
    session = Session(Poller(pipeline, Mailbox.parse(dovecot.url(mailbox_user)), IDLE_SECONDS))
    try:
        await session.open()
        await session.drain()  # nothing there yet
        await asyncio.to_thread(dovecot.append, mailbox_user, b"Subject: late\r\n\r\nx\r\n")
        await session.drain()
    finally:
        session.hang_up()
    assert [raw.split(b"\r\n")[0] for raw in received] == [b"Subject: late"]


async def test_imaps_verifies_the_server_certificate(
    make_relay: MakeRelay, mailbox_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = Dovecot(free_port(), tls=True).start()
    try:
        untrusting = polling(make_relay, server.url(mailbox_user))
        started, tag = await conversation(untrusting)
        # The poller hangs up mid-handshake: it does not trust a self-signed certificate.
        await eventually(lambda: "TLS handshaking" in server.log(), "the poller to refuse it")
        untrusting.stop()
        assert f"user=<{mailbox_user}>" not in server.log()  # no password was sent

        # The system's trust store, as an administrator would extend it.
        monkeypatch.setenv("SSL_CERT_FILE", str(server.certificate))
        relay = polling(make_relay, server.url(mailbox_user))
        server.append(mailbox_user, owner_reply(tag, "Over TLS."))
        assert (await next_owner_message(relay, started["token"]))["body"] == "Over TLS."
    finally:
        server.stop()
