"""Email for visitors too: the email telling a visitor of the owner's reply has a reply
address bound to them, their answer lands in the thread as theirs (and confirms the
address), and a customer starts a conversation by writing to the site's own address
(contact+SITE@ at the relay, or a hello@ the site lists and forwards)."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

import aiosmtplib
import httpx
import pytest

from relay.channels.email.reading import REPLY_MARKERS, tag_of
from tests.mail.conftest import REPLY_DOMAIN, mail_relay
from tests.mail.smtp_sink import SinkServer
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer
from tests.test_inbox_api import inbox

pytestmark = BOTH_ENGINES

CUSTOMER = "ann@customer.example"


@pytest.fixture
def relay(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> RunningRelay:
    return mail_relay(make_relay, sink, inbound_basic_auth="in:secret")


def customer_mail(to: str, text: str, *, sender: str = CUSTOMER, **headers: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Ann <{sender}>"
    mail["To"] = to
    mail["Subject"] = "A cake for Saturday"
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain="customer.example")
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(text + "\n")
    return mail


async def smtp_send(relay: RunningRelay, mail: EmailMessage, rcpt: str) -> None:
    await aiosmtplib.send(
        mail, hostname="127.0.0.1", port=relay.config.smtp_port, recipients=[rcpt]
    )


async def thread_messages(relay: RunningRelay, thread: str) -> list[dict[str, Any]]:
    async with relay.client(origin=None) as client:
        owner = bearer(relay.owner_token())
        answer = await client.get(f"/v1/owner/threads/{thread}", headers=owner)
        assert answer.status_code == 200, answer.text
        return answer.json()["messages"]  # type: ignore[no-any-return]


async def owner_replies(relay: RunningRelay, thread: str, body: str) -> None:
    async with relay.client(origin=None) as client:
        owner = bearer(relay.owner_token())
        sent = await client.post(
            f"/v1/owner/threads/{thread}/messages", headers=owner, json={"body": body}
        )
        assert sent.status_code == 201, sent.text


def threads_of(relay: RunningRelay) -> list[Any]:
    with relay.db() as db:
        return db.execute(
            "SELECT t.id, t.site_id, v.email, v.email_verified_at FROM threads t"
            " JOIN visitors v ON v.id = t.visitor_id ORDER BY t.created_at"
        ).fetchall()


async def test_a_customer_writes_to_the_site_then_answers_the_owner_by_email(
    relay: RunningRelay, sink: SinkServer
) -> None:
    address = f"contact+alpha@{REPLY_DOMAIN}"
    await smtp_send(
        relay, customer_mail("hello@alpha.example", "Can you bake a rye cake?"), address
    )
    told = await sink.sink.next()  # the owner hears of it like any visitor message
    assert told["To"] == "owner@alpha.example" and "Can you bake a rye cake?" in str(told)
    [(thread, site, email, verified)] = threads_of(relay)
    assert (site, email, verified) == ("alpha", CUSTOMER, None)  # From alone proves nothing
    [first] = await thread_messages(relay, thread)
    assert (first["author"], first["via"]) == ("visitor", "email")

    await owner_replies(relay, thread, "Yes: 25 euros, ready Saturday 10 am.")
    answer = await sink.sink.next()
    assert answer["To"] == CUSTOMER
    reply_to = parseaddr(answer["Reply-To"])[1]
    tag = tag_of(reply_to)
    assert tag is not None and reply_to.endswith("@" + REPLY_DOMAIN)
    text = answer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith(REPLY_MARKERS[0]) and "25 euros" in text

    # Someone else cannot answer in Ann's name with the tag (From must be Ann's).
    forged = customer_mail(reply_to, "Make it chocolate", sender="mallory@evil.example")
    await smtp_send(relay, forged, reply_to)
    # Refused, and not told: nothing proves that mail came from mallory@evil.example
    # (a notice goes only to a sender DKIM or SPF proves: tests/mail/test_refused_replies.py).
    # Ann answers above the quote: her words land in the thread as hers, once.
    reply = customer_mail(reply_to, f"Perfect, thank you!\n\n> {REPLY_MARKERS[0]}\n> 25 euros")
    for _ in range(2):  # a mail server delivering twice
        await smtp_send(relay, reply, reply_to)
    notified = await sink.sink.next()
    assert notified["To"] == "owner@alpha.example" and "Perfect, thank you!" in str(notified)
    messages = await thread_messages(relay, thread)
    shown = [(m["author"], m["via"], m["body"]) for m in messages]
    assert shown[-1] == ("visitor", "email", "Perfect, thank you!")
    assert [m["body"] for m in messages].count("Perfect, thank you!") == 1
    assert not any("chocolate" in m["body"] for m in messages)
    # Answering from the address proved it: it is confirmed now.
    assert threads_of(relay)[0][3] is not None


async def test_a_listed_hello_address_starts_a_thread_unless_two_sites_list_it(
    relay: RunningRelay, sink: SinkServer
) -> None:
    async with inbox(relay) as page:
        saved = await page.post(
            "/inbox/api/sites/alpha/settings", {"contact_addresses": ["Hello@Alpha.example"]}
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["settings"]["contact_addresses"] == ["hello@alpha.example"]
    # Postmark hands us the mail as the hello@ mailbox got it.
    mail = customer_mail("Alpha Bakery <hello@alpha.example>", "Open on Sunday?")
    async with httpx.AsyncClient(base_url=relay.url, auth=("in", "secret")) as client:
        payload = {"RawEmail": mail.as_string()}
        posted = await client.post("/v1/inbound/postmark", json=payload)
        assert posted.status_code == 200, posted.text
        assert len(threads_of(relay)) == 1  # the webhook answers once the pipeline ran
        # Another site on the relay listing the same address makes it nobody's.
        async with inbox(relay, "owner@beta.example") as beta:
            claim = await beta.post(
                "/inbox/api/sites/beta/settings", {"contact_addresses": ["hello@alpha.example"]}
            )
            assert claim.status_code == 200, claim.text
        again = customer_mail("hello@alpha.example", "Still there?")
        answered = await client.post("/v1/inbound/postmark", json={"RawEmail": again.as_string()})
        assert answered.status_code == 200
    assert len(threads_of(relay)) == 1
    assert (await sink.sink.next())["To"] == "owner@alpha.example"


async def test_mail_to_an_unknown_site_or_an_auto_reply_starts_nothing(
    relay: RunningRelay,
) -> None:
    await smtp_send(relay, customer_mail("x@y.example", "Hi"), f"contact+nosuch@{REPLY_DOMAIN}")
    away = customer_mail("hello@alpha.example", "I am away", Auto_Submitted="auto-replied")
    await smtp_send(relay, away, f"contact+alpha@{REPLY_DOMAIN}")
    assert threads_of(relay) == []


async def test_a_customer_writing_by_email_at_night_gets_the_away_reply_by_email(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    # Saturday 23:00 in Paris; the bakery opens Monday at 9.
    relay = mail_relay(make_relay, sink, clock_start="2026-11-28T22:00:00Z")
    async with inbox(relay) as page:
        hours = {"timezone": "Europe/Paris", "hours": {"mon": [["09:00", "17:00"]]}}
        saved = await page.post("/inbox/api/sites/alpha/settings", hours)
        assert saved.status_code == 200, saved.text
    mail = customer_mail("hello@alpha.example", "Do you make wedding cakes?")
    await smtp_send(relay, mail, f"contact+alpha@{REPLY_DOMAIN}")
    received = [await sink.sink.next(), await sink.sink.next()]
    [away] = [m for m in received if m["To"] == CUSTOMER]
    assert [m["To"] for m in received if m is not away] == ["owner@alpha.example"]
    text = away.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [(thread, *_)] = threads_of(relay)
    [_, note] = await thread_messages(relay, thread)
    assert (note["author"], note["via"]) == ("system", "email")
    assert note["body"].splitlines()[0] in text and tag_of(parseaddr(away["Reply-To"])[1])
