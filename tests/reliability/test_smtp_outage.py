"""The mail server is down while visitors write: their notifications wait in the
outbox, retried with backoff, and once a server answers on that port every one is
delivered exactly once, each visitor message in exactly one email."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import httpx

from relay.channels.email.reading import REPLY_MARKERS
from tests.mail.conftest import REPLY_DOMAIN, eventually
from tests.mail.smtp_sink import SinkServer
from tests.pg import BOTH_ENGINES
from tests.reliability.backends import Backend
from tests.support import RunningRelay, bearer, free_port, start_thread

pytestmark = BOTH_ENGINES  # the store under the relay: SQLite, then PostgreSQL

VISITORS = 6
MESSAGES_EACH = 5  # the first starts the conversation
DURING = 3  # messages each visitor has written when the mail server comes up
# Seconds before the first retry, doubling with each failure (production: 30 s, in
# relay/mail/outbox.py; no setting exists, so the test sets the worker's attribute as
# tests/mail/test_outbound.py does). Small, so the outage lasts a fraction of a second.
RETRY_BASE = 0.05
FAILED_TRIES = 2  # tries every waiting email has failed before the server comes up
WORD = re.compile(r"\bv\d+m\d+\b")  # the message bodies: v<visitor>m<number>
OUTBOX_ID = re.compile(r"^<outbox\.(\d+)\.")  # relay/mail/compose.py: one per outbox row


def new_words(mail: EmailMessage) -> list[str]:
    """The messages an owner notification is about: below the marker, above the
    earlier history it quotes for context."""
    part = mail.get_body(("plain",))
    assert part is not None
    text = part.get_content()
    new = text.split(REPLY_MARKERS[0], 1)[1].split("Earlier in this conversation:", 1)[0]
    return WORD.findall(new)


def drain(sink: SinkServer) -> list[EmailMessage]:
    received = []
    while not sink.sink.empty():
        received.append(sink.sink.received.get_nowait())
    return received


async def start(client: httpx.AsyncClient, v: int) -> dict[str, Any]:
    return await start_thread(client, f"v{v}m0", client_id=f"v{v}-0")


async def write(client: httpx.AsyncClient, v: int, token: str, numbers: range) -> None:
    for i in numbers:
        response = await client.post(
            "/v1/thread/messages",
            headers=bearer(token),
            json={"body": f"v{v}m{i}", "client_id": f"v{v}-{i}"},
        )
        assert response.status_code == 201, response.text


def outage_seen(backend: Backend, threads: list[str]) -> Callable[[], bool]:
    """Every thread's email is waiting and has failed FAILED_TRIES times; none left."""

    def check() -> bool:
        rows = backend.outbox()
        waiting = {r["thread_id"] for r in rows if r["status"] == "pending" and r["attempts"]}
        tried = all(r["attempts"] >= FAILED_TRIES for r in rows if r["status"] == "pending")
        assert not [r for r in rows if r["status"] == "sent"], "sent with no server up"
        return waiting == set(threads) and tried

    return check


def outbox_settled(backend: Backend) -> bool:
    return all(row["status"] not in ("pending", "sending") for row in backend.outbox())


async def test_outbox_delivers_each_email_once_after_the_mail_server_comes_up(
    relay_on: Callable[..., RunningRelay], backend: Backend
) -> None:
    port = free_port()  # nothing listens here until the sink starts
    relay = relay_on(
        smtp_url=f"smtp://127.0.0.1:{port}",
        reply_domain=REPLY_DOMAIN,
        owner_notify_delay=0,
        visitor_notify_delay=0,
    )
    relay.services.workers["email"].retry_base = RETRY_BASE
    async with relay.client() as client:
        started = await asyncio.gather(*(start(client, v) for v in range(VISITORS)))
        tokens = [s["token"] for s in started]
        threads = [s["thread"]["id"] for s in started]
        await eventually(outage_seen(backend, threads), f"{FAILED_TRIES} failed tries per email")
        # More messages while the emails wait: they join them, or queue new ones that
        # take the place of those being tried.
        await asyncio.gather(
            *(write(client, v, tokens[v], range(1, DURING)) for v in range(VISITORS))
        )
        sink = SinkServer(port).start()
        try:
            await eventually(lambda: outbox_settled(backend), "every email sent")
            # And after: new emails, saying only what the earlier ones did not.
            await asyncio.gather(
                *(
                    write(client, v, tokens[v], range(DURING, MESSAGES_EACH))
                    for v in range(VISITORS)
                )
            )
            await eventually(lambda: outbox_settled(backend), "every later email sent")
            received = drain(sink)
        finally:
            sink.stop()

    rows = backend.outbox()
    sent = {row["id"]: row for row in rows if row["status"] == "sent"}
    for row in rows:  # sent, or folded into a newer email of the same thread
        assert row["kind"] == "owner_notify" and row["recipient"] == "owner@alpha.example"
        assert row["status"] == "sent" or (
            row["status"] == "cancelled" and row["last_error"].startswith("merged into a newer")
        ), dict(row)
    assert {row["thread_id"] for row in sent.values()} == set(threads)
    # Each sent row went out once: one email per Message-ID, none for another row.
    ids = Counter(int(OUTBOX_ID.match(mail["Message-ID"])[1]) for mail in received)  # type: ignore[index]
    assert ids == dict.fromkeys(sent, 1), f"emails per outbox row: {ids}, rows sent: {sorted(sent)}"
    # Each message is in exactly one email, the one of its own thread.
    words = Counter(word for mail in received for word in new_words(mail))
    expected = {f"v{v}m{i}" for v in range(VISITORS) for i in range(MESSAGES_EACH)}
    assert set(words) == expected and set(words.values()) == {1}, words
    for mail in received:
        row = sent[int(OUTBOX_ID.match(mail["Message-ID"])[1])]  # type: ignore[index]
        assert mail["Message-ID"].endswith(f".{row['thread_id']}@{REPLY_DOMAIN}>")
        visitor = {word.partition("m")[0] for word in new_words(mail)}
        assert len(visitor) == 1, f"one email spoke for several threads: {visitor}"
    # The stored messages are all there too (the outage touched mail only).
    assert Counter(m.thread for m in backend.messages()) == dict.fromkeys(threads, MESSAGES_EACH)
