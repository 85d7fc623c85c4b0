"""Inbox sign-in links by email, through the inbox's own form and a real SMTP server:
only owner addresses get one, in their language, and the link opens a session once."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest

from relay.channels.email.reading import LOOP_HEADER
from tests.mail.conftest import OWNER, REPLY_DOMAIN, set_owner
from tests.mail.smtp_sink import SinkServer
from tests.mail.test_reply_loop import bounce
from tests.pg import BOTH_ENGINES, make_store
from tests.support import ALPHA, RunningRelay, free_port

BETA_OWNER = "owner@beta.example"
STRANGER = "stranger@example.com"
LINK = re.compile(r"(http://[^\s]+/inbox/#login=([\w.\-]+))")


@pytest.fixture
def login_relay(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> RunningRelay:
    return make_relay(smtp_url=sink.url, reply_domain=REPLY_DOMAIN)


def plain(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


async def ask_for_link(relay: RunningRelay, email: str, **extra: str) -> None:
    async with relay.client(origin=relay.url) as client:  # the inbox page's own origin
        response = await client.post("/inbox/api/login", json={"email": email, **extra})
    assert (response.status_code, response.json()) == (202, {"sent": True})


def outbox(relay: RunningRelay) -> list[dict[str, object]]:
    with relay.db() as db:
        return [dict(r) for r in db.execute("SELECT * FROM outbox ORDER BY id")]


async def test_an_owner_gets_a_link_that_signs_in_once(
    login_relay: RunningRelay, sink: SinkServer
) -> None:
    await ask_for_link(login_relay, "Owner@Alpha.Example")
    mail = await sink.sink.next()
    assert mail["To"] == OWNER
    assert mail["Subject"] == "Sign in to your Porch inbox"
    assert mail["Reply-To"] is None and "r+" not in mail.as_string()  # nothing to answer
    assert mail["Auto-Submitted"] == "auto-generated" and mail[LOOP_HEADER] == "1"
    text = plain(mail)
    assert "works once, for 15 minutes" in text and "did not ask for it, ignore" in text
    found = LINK.search(text)
    assert found is not None and found[1].startswith(f"{login_relay.url}/inbox/#login=")
    token = found[2]
    html = mail.get_body(("html",))
    assert html is not None and f'href="{found[1]}"' in html.get_content()
    [row] = outbox(login_relay)
    assert row["kind"] == "owner_login" and row["thread_id"] is None
    assert json.loads(str(row["payload"])) == {"language": "en"}
    assert token not in json.dumps(outbox(login_relay))  # minted on sending, never stored

    async with login_relay.client(origin=login_relay.url) as client:
        opened = await client.post("/inbox/api/session", json={"token": token})
        assert opened.status_code == 200 and opened.json()["email"] == OWNER
        again = await client.post("/inbox/api/session", json={"token": token})
        assert again.status_code == 401 and again.json()["reason"] == "used"


async def test_the_link_comes_in_the_owner_language(
    login_relay: RunningRelay, sink: SinkServer
) -> None:
    set_owner(login_relay, BETA_OWNER, language="fr")
    await ask_for_link(login_relay, BETA_OWNER, language="fr")
    mail = await sink.sink.next()
    assert mail["Subject"] == "Connexion à votre boîte de réception Porch"
    text = plain(mail)
    assert "pendant 15 minutes" in text and "ignorez cet e-mail" in text
    assert LINK.search(text) is not None


async def test_a_stranger_gets_nothing(login_relay: RunningRelay, sink: SinkServer) -> None:
    await ask_for_link(login_relay, STRANGER)  # the same answer as an owner gets
    assert outbox(login_relay) == []  # queued in the request's transaction, or never
    await ask_for_link(login_relay, OWNER)
    mail = await sink.sink.next()  # the stranger's would have been first
    assert mail["To"] == OWNER
    assert sink.sink.empty()


async def test_a_bounced_link_does_not_switch_an_owner_address_off(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    relay = make_relay(smtp_url=sink.url, reply_domain=REPLY_DOMAIN, smtp_port=free_port())
    await ask_for_link(relay, OWNER)
    mail = await sink.sink.next()
    await asyncio.to_thread(bounce, relay, OWNER, mail["Message-ID"])
    with relay.db() as db:
        assert [r[0] for r in db.execute("SELECT verdict FROM inbound")] == ["bounce"]
        assert db.execute("SELECT * FROM suppressed").fetchall() == []  # the owner's to fix


@BOTH_ENGINES
async def test_the_store_queues_one_link_for_owners_only(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = make_store(engine, tmp_path, request)
    await store.open()
    try:
        await store.add_site(ALPHA)
        assert await store.queue_login_email(STRANGER, "en") is False
        assert await store.queue_login_email(" OWNER@alpha.example", None) is True
        assert await store.queue_login_email(OWNER, "fr") is True  # the pending one will do
        [item] = await store.due_deliveries("email")
        assert (item.kind, item.recipient, item.thread) == ("owner_login", OWNER, None)
        set_owner(store, OWNER, language="fr")
        job = await store.prepare_login(item)
        assert job is not None and job.language == "fr"  # none asked for: the owner's

        await store.queue_login_email(OWNER, "en")
        [later] = await store.due_deliveries("email")
        await store.add_site(replace(ALPHA, owner_emails=("new@alpha.example",)), replace=True)
        assert await store.prepare_login(later) is None  # no longer an owner: not sent
        assert await store.due_deliveries("email") == []
    finally:
        await store.close()
