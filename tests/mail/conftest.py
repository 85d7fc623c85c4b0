"""Mail test helpers: reply tags issued as the outbox would, owner replies as a mail
client writes them, and a real IMAP server (Dovecot) for the IMAP ingress."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import pytest

from relay.models import utc_now
from relay.store import Store
from tests.mail.dovecot import Dovecot, Unavailable, ensure_installed
from tests.mail.smtp_sink import SinkServer
from tests.pg import connect
from tests.support import RunningRelay, free_port, open_live

REPLY_DOMAIN = "reply.example"
OWNER = "owner@alpha.example"
POLL_INTERVAL = 0.05  # seconds between looks at a state no event announces
EVENT_TIMEOUT = 10.0  # seconds; what the relay does takes a fraction of one


def mail_relay(
    make_relay: Callable[..., RunningRelay], sink: SinkServer, **overrides: Any
) -> RunningRelay:
    """A relay whose mail goes to the sink at once and whose replies come back through
    its own SMTP ingress."""
    settings = {
        "smtp_url": sink.url,
        "reply_domain": REPLY_DOMAIN,
        "owner_notify_delay": 0,
        "visitor_notify_delay": 0,
        "smtp_port": free_port(),
    }
    return make_relay(**{**settings, **overrides})


def issue_reply_tag(relay: RunningRelay, thread_id: str, recipient: str) -> str:
    """The tag of r+TAG@, recorded in the relay's store as the outbox records it when it
    emails `recipient` about the thread."""
    tag = relay.tokens.reply_tag(thread_id, recipient)
    db = relay.db()
    with contextlib.closing(db), db:  # commit, then close
        db.execute(
            "INSERT INTO reply_tags (tag, thread_id, recipient, created_at) VALUES (?, ?, ?, ?)",
            (tag, thread_id, recipient.lower(), utc_now()),
        )
    return tag


def set_owner(
    database: Path | RunningRelay | Store,
    email: str,
    *,
    notify: str = "message",
    language: str = "en",
    aliases: tuple[str, ...] = (),
) -> None:
    """An owner's choices, written to the owners table as the inbox's settings save them:
    in a SQLite file, a running relay's database, or a store's (either engine)."""
    if isinstance(database, RunningRelay):
        db = database.db()
    elif isinstance(database, Store):
        db = connect(database)
    else:
        db = sqlite3.connect(database)
    with contextlib.closing(db), db:  # commit, then close
        db.execute(
            "INSERT INTO owners (email, language, notify, aliases, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET"
            " language = excluded.language, notify = excluded.notify, aliases = excluded.aliases",
            (email.lower(), language, notify, json.dumps(list(aliases)), utc_now()),
        )


def owner_reply(
    tag: str, text: str, *, message_id: str | None = None, sender: str = OWNER
) -> bytes:
    """An owner's plain-text reply to r+TAG@REPLY_DOMAIN, as bytes on the wire."""
    reply = EmailMessage()
    reply["From"] = f"Alpha Owner <{sender}>"
    reply["To"] = f"r+{tag}@{REPLY_DOMAIN}"
    reply["Subject"] = "Re: Your question on Alpha Bakery"
    reply["Date"] = formatdate(localtime=False)
    reply["Message-ID"] = message_id or make_msgid(domain="alpha.example")
    reply.set_content(text + "\n")
    return reply.as_bytes()


async def next_owner_message(
    relay: RunningRelay, visitor_token: str, timeout: float = EVENT_TIMEOUT
) -> dict[str, Any]:
    """The first owner message of the visitor's thread, as the widget gets it live
    (replayed if it was already there when the socket opened)."""
    live = await open_live(relay, visitor_token)
    try:
        for message in live.replayed:
            if message["author"] == "owner":
                return message
        async with asyncio.timeout(timeout):
            while True:
                message = (await live.next("message", timeout))["message"]
                if message["author"] == "owner":
                    return message
    finally:
        await live.ws.close()


async def eventually(check: Callable[[], bool], what: str, timeout: float = EVENT_TIMEOUT) -> None:
    """Poll a blocking `check` (run in a thread) until true; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """Dovecot on a free loopback port for the whole session; each test uses its own user
    (any name logs in with the password), so its own mailbox."""
    try:
        ensure_installed()
    except Unavailable as reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the IMAP tests: {reason}")
        pytest.skip(str(reason))
    server = Dovecot(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def mailbox_user(request: pytest.FixtureRequest) -> str:
    """A mailbox of the test's own, named after the test (readable in Dovecot's log)."""
    name = "".join(c for c in request.node.name.lower() if c.isalnum())
    return f"{name.removeprefix('test')[:24]}{uuid.uuid4().hex[:8]}"
