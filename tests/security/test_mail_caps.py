"""Using the relay to mail strangers. Anyone can open a chat and give any address, so an
address its visitor has not confirmed gets one email a day at most, whichever visitor,
site or kind of email asks (resume links, replies left unread), and one visitor gets
mail sent to three unconfirmed addresses a day at most. An address is its mailbox: a
+tag, or dots at Gmail, make no new one; erasing a chat lifts neither the cap nor an
unsubscribe."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Callable

import pytest

from tests.mail.conftest import eventually, mail_relay
from tests.mail.smtp_sink import SinkServer
from tests.mail.test_reply_loop import bounce
from tests.pg import BOTH_ENGINES
from tests.support import (
    BETA_ORIGIN,
    RunningRelay,
    bearer,
    porch_command,
    relay_env,
    start_thread,
)
from tests.test_continuity import LINK

VICTIM = "victim@example.com"


@pytest.fixture
def relay(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> RunningRelay:
    # Owners hear of visitor messages an hour later: the sink gets visitor mail only.
    return make_relay(
        smtp_url=sink.url,
        reply_domain="reply.example",
        owner_notify_delay=3600,
        visitor_notify_delay=0,
    )


async def new_visitor(relay: RunningRelay, origin: str | None = None) -> str:
    site = "beta" if origin == BETA_ORIGIN else "alpha"
    async with relay.client(**({"origin": origin} if origin else {})) as client:
        started = await start_thread(client, "hi", site=site)
    return str(started["token"])


async def ask_link(relay: RunningRelay, token: str, email: str, origin: str | None = None) -> int:
    async with relay.client(**({"origin": origin} if origin else {})) as client:
        response = await client.post(
            "/v1/thread/resume-link", headers=bearer(token), json={"email": email}
        )
    return response.status_code


def sent_to(relay: RunningRelay, address: str) -> int:
    """Emails to `address` that left, are leaving or wait to leave."""
    with relay.db() as db:
        return int(
            db.execute(
                "SELECT COUNT(*) FROM outbox WHERE recipient = ?"
                " AND status IN ('pending', 'sending', 'sent')",
                (address,),
            ).fetchone()[0]
        )


@BOTH_ENGINES
async def test_victim_decoy_victim_sends_the_victim_one_email(
    relay: RunningRelay, sink: SinkServer
) -> None:
    token = await new_visitor(relay)
    assert await ask_link(relay, token, VICTIM) == 202
    assert (await sink.sink.next())["To"] == VICTIM
    assert await ask_link(relay, token, "decoy@example.com") == 202
    assert (await sink.sink.next())["To"] == "decoy@example.com"
    assert await ask_link(relay, token, VICTIM) == 429  # changing address reset nothing
    assert sent_to(relay, VICTIM) == 1 and sink.sink.empty()


@BOTH_ENGINES
async def test_other_visitors_sites_and_an_erasure_reset_nothing(
    relay: RunningRelay, sink: SinkServer
) -> None:
    first = await new_visitor(relay)
    assert await ask_link(relay, first, VICTIM) == 202
    await sink.sink.next()
    second = await new_visitor(relay, BETA_ORIGIN)  # another site of the same relay
    assert await ask_link(relay, second, VICTIM, BETA_ORIGIN) == 429
    async with relay.client() as client:  # the first visitor erases itself
        assert (await client.delete("/v1/thread", headers=bearer(first))).status_code == 204
    third = await new_visitor(relay)
    assert await ask_link(relay, third, VICTIM.upper()) == 429  # any case
    with relay.db() as db:  # what the cap keeps of the address: a digest, no visitor
        kept = db.execute("SELECT mailbox, visitor_id FROM unconfirmed_sends").fetchall()
    assert [(len(h), v) for h, v in kept] == [(64, None)]
    assert VICTIM not in repr(kept)


@BOTH_ENGINES
async def test_a_visitor_reaches_three_unconfirmed_addresses_a_day(
    relay: RunningRelay, sink: SinkServer
) -> None:
    token = await new_visitor(relay)
    for n in range(3):
        assert await ask_link(relay, token, f"person{n}@example.com") == 202
        await sink.sink.next()
    assert await ask_link(relay, token, "person3@example.com") == 429
    assert sent_to(relay, "person3@example.com") == 0


@BOTH_ENGINES
async def test_unread_replies_to_a_given_address_share_the_cap(
    relay: RunningRelay, sink: SinkServer
) -> None:
    """An address left for replies (unverified) is capped like a resume link's."""
    for n in range(2):
        async with relay.client() as client:
            started = await start_thread(client, f"visitor {n}")
            contact = await client.post(
                "/v1/thread/contact", headers=bearer(started["token"]), json={"email": VICTIM}
            )
            assert contact.status_code == 200
            reply = await client.post(
                f"/v1/owner/threads/{started['thread']['id']}/messages",
                headers=bearer(relay.owner_token()),
                json={"body": f"Answer {n}"},
            )
            assert reply.status_code == 201
        if n == 0:
            assert (await sink.sink.next())["To"] == VICTIM
    assert sent_to(relay, VICTIM) == 1


@BOTH_ENGINES
async def test_an_address_the_visitor_confirmed_is_not_capped(
    relay: RunningRelay, sink: SinkServer
) -> None:
    token = await new_visitor(relay)
    assert await ask_link(relay, token, "ann@example.com") == 202
    mail = await sink.sink.next()
    found = LINK.search(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert found is not None
    async with relay.client() as phone:  # opening the link confirms the address
        assert (await phone.post("/v1/resume", json={"token": found.group(2)})).is_success
    assert await ask_link(relay, token, "ann@example.com") == 202
    assert (await sink.sink.next())["To"] == "ann@example.com"


@BOTH_ENGINES
async def test_plus_tags_and_gmail_dots_reach_one_mailbox(
    relay: RunningRelay, sink: SinkServer
) -> None:
    first = await new_visitor(relay)
    assert await ask_link(relay, first, "victim+1@example.com") == 202
    await sink.sink.next()
    for address in ("VICTIM+2@example.com", "victim@example.com"):
        assert await ask_link(relay, await new_visitor(relay), address) == 429, address
    assert await ask_link(relay, first, "j.doe@gmail.com") == 202
    await sink.sink.next()
    for address in ("jdoe+x@googlemail.com", "J.D.O.E@gmail.com"):
        assert await ask_link(relay, await new_visitor(relay), address) == 429, address


@BOTH_ENGINES
async def test_an_erasure_while_the_email_is_on_its_way_resets_nothing(
    relay: RunningRelay, sink: SinkServer
) -> None:
    sink.sink.hold = threading.Event()  # a slow mail server: the email waits in SMTP
    first = await new_visitor(relay)
    assert await ask_link(relay, first, VICTIM) == 202
    assert await asyncio.to_thread(sink.sink.arrived.wait, 10)
    async with relay.client() as client:
        assert (await client.delete("/v1/thread", headers=bearer(first))).status_code == 204
    sink.sink.hold.set()
    assert (await sink.sink.next())["To"] == VICTIM
    assert await ask_link(relay, await new_visitor(relay), VICTIM) == 429


@BOTH_ENGINES
async def test_an_erasure_keeps_the_suppressions_of_the_addresses_given(
    relay: RunningRelay,
) -> None:
    """An unsubscribe is the address owner's: a stranger who types that address into a
    chat, then erases the chat, must not lift it."""
    unsubscribe = relay.tokens.unsubscribe_token(VICTIM, "alpha")
    async with relay.client(origin=None) as client:
        assert (await client.post(f"/v1/unsubscribe/{unsubscribe}")).is_success
    token = await new_visitor(relay)
    async with relay.client() as client:
        contact = {"email": VICTIM}
        assert (
            await client.post("/v1/thread/contact", headers=bearer(token), json=contact)
        ).is_success
        assert (await client.delete("/v1/thread", headers=bearer(token))).status_code == 204
    assert await ask_link(relay, await new_visitor(relay), VICTIM) == 429
    with relay.db() as db:
        assert db.execute("SELECT address FROM suppressed").fetchall()[0][0] == VICTIM


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
async def test_two_relays_share_the_cap(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    """Relays on one database: the email that goes takes the mailbox's day before it
    leaves, so the other relay sees it taken while it is still on its way."""
    settings = {"smtp_url": sink.url, "reply_domain": "reply.example", "owner_notify_delay": 3600}
    one, two = make_relay(**settings), make_relay(**settings)
    sink.sink.hold = threading.Event()
    assert await ask_link(one, await new_visitor(one), VICTIM) == 202
    assert await asyncio.to_thread(sink.sink.arrived.wait, 10)
    assert await ask_link(two, await new_visitor(two), VICTIM) == 429
    sink.sink.hold.set()
    assert (await sink.sink.next())["To"] == VICTIM
    assert sent_to(two, VICTIM) == 1


@BOTH_ENGINES
async def test_a_forged_bounce_cannot_silence_an_address(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    """Anyone can send a bounce. One counts only if it quotes an email we sent, which its
    thread id (known to that email's reader and the owner) proves, not the outbox number
    (counted up: guessable)."""
    relay = mail_relay(make_relay, sink, owner_notify_delay=3600)
    async with relay.client() as client:
        started = await start_thread(client, "hi")
        contact = {"email": "ann@example.com"}
        headers = bearer(started["token"])
        assert (await client.post("/v1/thread/contact", headers=headers, json=contact)).is_success
        reply = await client.post(
            f"/v1/owner/threads/{started['thread']['id']}/messages",
            headers=bearer(relay.owner_token()),
            json={"body": "Yes"},
        )
        assert reply.is_success
    real = (await sink.sink.next())["Message-ID"]
    outbox_id = real.split(".")[1]
    for n, guess in enumerate([f"<outbox.{outbox_id}.t_guessed@r.e>", "<outbox.1.x@r.e>"]):
        await asyncio.to_thread(bounce, relay, "ann@example.com", guess, n)
    with relay.db() as db:
        assert db.execute("SELECT COUNT(*) FROM suppressed").fetchone()[0] == 0
    # The real one counts; ann@ was never confirmed, so it is forgotten, not suppressed
    # (the visitor who had a link sent to a stranger knows its Message-ID).
    await asyncio.to_thread(bounce, relay, "ann@example.com", real, 9)
    with relay.db() as db:
        assert db.execute("SELECT COUNT(*) FROM suppressed").fetchone()[0] == 0
        assert db.execute("SELECT email FROM visitors").fetchone()[0] is None


@BOTH_ENGINES
async def test_opening_a_link_gives_the_mailbox_its_day_back(
    relay: RunningRelay, sink: SinkServer
) -> None:
    """The cap protects strangers; who opened the link reads that mailbox. Signing out
    everywhere forgets the address, and typing it again must not find it capped."""
    token = await new_visitor(relay)
    assert await ask_link(relay, token, "ann@example.com") == 202
    found = LINK.search((await sink.sink.next()).get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert found is not None
    async with relay.client() as phone:
        opened = await phone.post("/v1/resume", json={"token": found.group(2)})
        fresh = opened.json()["token"]
        out = await phone.post(
            "/v1/thread/sign-out", headers=bearer(fresh), json={"everywhere": True}
        )
        assert out.status_code == 204
    assert await ask_link(relay, await new_visitor(relay), "ann@example.com") == 202
    assert (await sink.sink.next())["To"] == "ann@example.com"


@BOTH_ENGINES
async def test_an_email_that_never_left_uses_no_day(relay: RunningRelay, sink: SinkServer) -> None:
    sink.sink.refuse = True  # our own mail server refuses it for good (550)
    token = await new_visitor(relay)
    assert await ask_link(relay, token, VICTIM) == 202
    await eventually(lambda: link_status(relay) == "failed", "the link to fail for good")
    sink.sink.refuse = False
    assert await ask_link(relay, token, VICTIM) == 202
    assert (await sink.sink.next())["To"] == VICTIM


def link_status(relay: RunningRelay) -> str | None:
    with relay.db() as db:
        found = db.execute("SELECT status FROM outbox WHERE kind = 'resume_link'").fetchone()
    return found[0] if found else None


@BOTH_ENGINES
async def test_an_unsubscribe_holds_for_every_spelling_of_the_mailbox(
    relay: RunningRelay, sink: SinkServer
) -> None:
    unsubscribe = relay.tokens.unsubscribe_token("ann@gmail.com", "alpha")
    async with relay.client(origin=None) as client:
        assert (await client.post(f"/v1/unsubscribe/{unsubscribe}")).is_success
    for spelling in ("a.nn+x@gmail.com", "ANN@googlemail.com"):
        assert await ask_link(relay, await new_visitor(relay), spelling) == 429, spelling
    result = await asyncio.to_thread(
        subprocess.run,
        [*porch_command(), "mail", "unsuppress", "A.NN@gmail.com"],
        env=relay_env(relay),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "Lifted 1 suppression(s)" in result.stdout
    assert await ask_link(relay, await new_visitor(relay), "ann@gmail.com") == 202
