"""Trust in emailed replies, end to end through a real relay: DKIM-signed and unsigned
replies from domains whose DMARC policy a DNS server on loopback publishes, the site's
sender_checks, trusted and forged Authentication-Results, held replies released and
discarded from the inbox, DNS failures deferring mail, and the envelope `porch smtp`
carries to the relay. (The checks themselves: tests/mail/test_authentication.py.)"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import aiosmtplib
import pytest

from relay.channels.email.smtp_forwarder import signature
from relay.channels.email.smtp_ingress import S451_TRY_LATER
from tests.mail.conftest import OWNER, REPLY_DOMAIN, issue_reply_tag, set_owner
from tests.mail.test_smtp_command import SECRET as FORWARDER_SECRET
from tests.mail.test_smtp_command import porch_smtp
from tests.mail.test_webhooks import WORKER_SECRET, worker
from tests.mail.trust_support import (
    SENDER_HELO,
    FakeDns,
    Key,
    bodies,
    deliver,
    inbound,
    named,
    new_key,
    reply,
    sender_dns,
    signed,
    verdict,
)
from tests.pg import BOTH_ENGINES
from tests.support import (
    ALPHA,
    BETA_ORIGIN,
    RunningRelay,
    bearer,
    free_port,
    open_live,
    start_thread,
)
from tests.test_inbox_api import inbox, inbox_socket, next_frame

MakeRelay = Callable[..., RunningRelay]
BETA_OWNER = "owner@beta.example"
TRY_LATER = int(S451_TRY_LATER.split()[0])  # the ingress's answer to a deferred mail


@pytest.fixture(scope="module")
def key() -> Key:
    return new_key()


@pytest.fixture(scope="module")
def dns(key: Key) -> Iterator[FakeDns]:
    with sender_dns(key) as server:
        yield server


def smtp_relay(make_relay: MakeRelay, dns: FakeDns, **overrides: Any) -> RunningRelay:
    """A relay taking replies on its SMTP ingress, checking senders against `dns`; it
    sends no mail (no notices here: tests/mail/test_refused_replies.py)."""
    settings = {"reply_domain": REPLY_DOMAIN, "smtp_port": free_port()}
    return make_relay(dns_servers=(dns.address,), **{**settings, **overrides})


async def conversation(
    relay: RunningRelay, site: str = "alpha", owner: str = OWNER
) -> tuple[dict[str, Any], str]:
    """A visitor's thread, and the reply tag its owner's notification would carry."""
    origin = BETA_ORIGIN if site == "beta" else ALPHA.origins[0]
    async with relay.client(origin=origin) as client:
        started = await start_thread(client, "Do you bake on Sundays?", site=site)
    return started, issue_reply_tag(relay, started["thread"]["id"], owner)


def address(tag: str) -> str:
    return f"r+{tag}@{REPLY_DOMAIN}"


def held_rows(relay: RunningRelay) -> list[dict[str, Any]]:
    with relay.db() as db:
        rows = db.execute(
            "SELECT id, thread_id, sender, body, reason, status, raw IS NULL AS forgotten"
            " FROM held_mail ORDER BY id"
        ).fetchall()
    return [named(row) for row in rows]


async def set_sender_checks(relay: RunningRelay, checks: str) -> None:
    site = replace(ALPHA, settings={**ALPHA.settings, "sender_checks": checks})
    await relay.call(relay.services.store.add_site(site, replace=True))


# -- posted or held ----------------------------------------------------------------------


@BOTH_ENGINES
async def test_a_signed_reply_is_posted_and_its_envelope_kept(
    make_relay: MakeRelay, dns: FakeDns, key: Key
) -> None:
    relay = smtp_relay(make_relay, dns)
    started, tag = await conversation(relay)
    live = await open_live(relay, started["token"], since=started["message"]["seq"])
    raw = signed(reply(tag, "Yes, from 8 to noon."), key)
    await deliver(relay, raw, to=address(tag))
    message = (await live.next("message"))["message"]
    await live.ws.close()
    assert (message["author"], message["body"]) == ("owner", "Yes, from 8 to noon.")
    record = inbound(relay, raw)
    assert record is not None
    assert record["verdict"] == "posted"
    assert (record["peer_ip"], record["helo"], record["mail_from"]) == (
        "127.0.0.1",
        SENDER_HELO,
        OWNER,
    )
    checks = record["authentication"]
    assert checks["from_domain"] == "alpha.example"
    assert [(d["domain"], d["result"]) for d in checks["dkim"]] == [("alpha.example", "pass")]
    assert checks["dmarc"]["result"] == "pass" and checks["dmarc"]["policy"] == "reject"
    assert checks["spf"]["identity"] == "mailfrom"  # the envelope reached the checks


@BOTH_ENGINES
async def test_an_unsigned_reply_from_a_reject_domain_is_held_for_the_owner_only(
    make_relay: MakeRelay, dns: FakeDns, key: Key
) -> None:
    relay = smtp_relay(make_relay, dns)
    started, tag = await conversation(relay)
    thread = started["thread"]["id"]
    seq = started["message"]["seq"]
    visitor = await open_live(relay, started["token"], since=seq)
    async with inbox(relay) as page, inbox_socket(page, since=seq) as owner_socket:
        forged = reply(tag, "Everything is free today!")
        await deliver(relay, forged, to=address(tag))
        assert await next_frame(owner_socket, "held") == {"type": "held", "thread": thread}
        # The next message the visitor sees is the genuine one: the held reply never
        # reached their socket.
        await deliver(relay, signed(reply(tag, "Open 8 to noon."), key), to=address(tag))
        message = (await visitor.next("message"))["message"]
    await visitor.ws.close()
    assert message["body"] == "Open 8 to noon."
    assert bodies(relay) == ["Open 8 to noon."]
    record = inbound(relay, forged)
    assert record is not None and record["verdict"] == "held"
    assert record["authentication"]["dmarc"]["result"] == "fail"
    [held] = held_rows(relay)
    assert (held["thread_id"], held["sender"], held["body"]) == (
        thread,
        OWNER,
        "Everything is free today!",
    )
    assert (held["reason"], held["status"], held["forgotten"]) == ("dmarc_fail", "held", False)


# (From domain, the site's sender_checks, signed, what becomes of the reply)
CHECKS_CASES = [
    ("quarantine.example", "dmarc", False, "held"),
    ("none.example", "dmarc", False, "posted"),
    ("norecord.example", "dmarc", False, "posted"),
    ("none.example", "strict", False, "held"),
    ("norecord.example", "strict", True, "posted"),
    ("alpha.example", "off", False, "posted"),
]


@BOTH_ENGINES
async def test_what_the_domain_publishes_and_the_site_setting_decide(
    make_relay: MakeRelay, dns: FakeDns, key: Key
) -> None:
    relay = smtp_relay(make_relay, dns)
    _, tag = await conversation(relay)
    # The owner replies from each domain in turn: addresses they registered as theirs.
    others = {f"owner@{case[0]}" for case in CHECKS_CASES} - {OWNER}
    set_owner(relay, OWNER, aliases=tuple(sorted(others)))
    outcomes, posted = [], []
    for number, (domain, checks, sign, _) in enumerate(CHECKS_CASES):
        await set_sender_checks(relay, checks)
        text = f"Reply {number} from {domain}"
        raw = reply(tag, text, sender=f"owner@{domain}")
        raw = signed(raw, key, domain) if sign else raw
        await deliver(relay, raw, to=address(tag), mail_from=f"owner@{domain}")
        outcomes.append(verdict(relay, raw))
        if outcomes[-1] == "posted":
            posted.append(text)
    assert outcomes == [case[3] for case in CHECKS_CASES]
    assert bodies(relay) == posted
    held = held_rows(relay)
    assert [row["reason"] for row in held] == ["dmarc_fail", "unauthenticated"]


# -- held replies in the inbox -----------------------------------------------------------

MENU = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@BOTH_ENGINES
async def test_an_owner_releases_or_discards_a_held_reply_of_their_own_sites(
    make_relay: MakeRelay, dns: FakeDns
) -> None:
    relay = smtp_relay(make_relay, dns)
    started, tag = await conversation(relay)
    _, beta_tag = await conversation(relay, "beta", BETA_OWNER)
    kept = reply(tag, "Here is the menu.", files={"menu.pdf": MENU})
    dropped = reply(tag, "Send your card number")
    theirs = reply(beta_tag, "Réponse de Beta", sender=BETA_OWNER)
    for raw, to, sender in (
        (kept, tag, OWNER),
        (dropped, tag, OWNER),
        (theirs, beta_tag, BETA_OWNER),
    ):
        await deliver(relay, raw, to=address(to), mail_from=sender)
    assert [verdict(relay, raw) for raw in (kept, dropped, theirs)] == ["held"] * 3
    alpha_kept, alpha_dropped, beta_held = (row["id"] for row in held_rows(relay))

    async with inbox(relay) as alpha, inbox(relay, BETA_OWNER) as beta:
        listed = (await alpha.get("/inbox/api/held")).json()["held"]
        assert [(h["id"], h["body"]) for h in listed] == [
            (alpha_kept, "Here is the menu."),
            (alpha_dropped, "Send your card number"),
        ]
        assert listed[0]["author"] == "owner" and listed[0]["reason"] == "dmarc_fail"
        beta_list = (await beta.get("/inbox/api/held")).json()["held"]
        assert [h["id"] for h in beta_list] == [beta_held]
        for action in ("release", "discard"):  # another site's owner: as if it did not exist
            response = await beta.post(f"/inbox/api/held/{alpha_kept}/{action}")
            assert response.status_code == 404, response.text
            assert response.json()["error"] == "not_found"
        assert [row["status"] for row in held_rows(relay)] == ["held"] * 3

        released = await alpha.post(f"/inbox/api/held/{alpha_kept}/release")
        assert released.status_code == 200, released.text
        message = released.json()["message"]
        assert message["body"] == "Here is the menu."
        assert [a["name"] for a in message["attachments"]] == ["menu.pdf"]
        again = await alpha.post(f"/inbox/api/held/{alpha_kept}/release")
        assert again.status_code == 404, again.text

        discarded = await alpha.post(f"/inbox/api/held/{alpha_dropped}/discard")
        assert discarded.status_code == 200 and discarded.json() == {"discarded": True}
        assert (await alpha.post(f"/inbox/api/held/{alpha_dropped}/release")).status_code == 404
        assert (await alpha.get("/inbox/api/held")).json()["held"] == []

    # The mail delivered again after its release is a duplicate: posted once.
    await deliver(relay, kept, to=address(tag))
    async with relay.client() as client:
        history = (await client.get("/v1/thread", headers=bearer(started["token"]))).json()
    owner = [m for m in history["messages"] if m["author"] == "owner"]
    assert [(m["body"], [a["name"] for a in m["attachments"]]) for m in owner] == [
        ("Here is the menu.", ["menu.pdf"])
    ]
    rows = {row["id"]: row for row in held_rows(relay)}
    assert (rows[alpha_kept]["status"], rows[alpha_kept]["forgotten"]) == ("released", True)
    assert rows[alpha_dropped]["status"] == "discarded"
    assert (rows[alpha_dropped]["body"], rows[alpha_dropped]["forgotten"]) == ("", True)
    assert (rows[beta_held]["status"], rows[beta_held]["forgotten"]) == ("held", False)
    assert bodies(relay) == ["Here is the menu."]


async def test_the_null_sender_is_kept_as_empty_and_checked_by_its_helo(
    make_relay: MakeRelay, dns: FakeDns, key: Key
) -> None:
    relay = smtp_relay(make_relay, dns)
    _, tag = await conversation(relay)
    raw = signed(reply(tag, "Sent by a mail robot of ours"), key)
    await deliver(relay, raw, to=address(tag), mail_from="")
    record = inbound(relay, raw)
    assert record is not None and record["verdict"] == "posted"
    assert record["mail_from"] == ""
    spf = record["authentication"]["spf"]
    assert (spf["identity"], spf["domain"], spf["result"]) == ("helo", SENDER_HELO, "pass")


@BOTH_ENGINES
async def test_a_visitors_held_reply_is_released_as_theirs(
    make_relay: MakeRelay, dns: FakeDns
) -> None:
    relay = smtp_relay(make_relay, dns)
    customer = "customer@quarantine.example"  # a domain asking to quarantine the unverified
    async with relay.client() as client:
        started = await start_thread(client, "Please email me the price list")
        left = await client.post(
            "/v1/thread/contact", headers=bearer(started["token"]), json={"email": customer}
        )
    assert left.status_code == 200, left.text
    tag = issue_reply_tag(relay, started["thread"]["id"], customer)  # their notification's
    raw = reply(tag, "Thanks, and for 12 people?", sender=customer)
    await deliver(relay, raw, to=address(tag), mail_from=customer)
    assert verdict(relay, raw) == "held"
    [held] = held_rows(relay)
    async with inbox(relay) as page:
        listed = (await page.get("/inbox/api/held")).json()["held"]
        assert [(h["author"], h["sender"]) for h in listed] == [("visitor", customer)]
        released = await page.post(f"/inbox/api/held/{held['id']}/release")
    assert released.status_code == 200, released.text
    message = released.json()["message"]
    assert (message["author"], message["body"]) == ("visitor", "Thanks, and for 12 people?")
    assert message["client_id"] is None  # the visitor's side's own, never shown to owners
    assert bodies(relay, "visitor") == ["Please email me the price list", message["body"]]


# -- Authentication-Results --------------------------------------------------------------


async def test_only_a_trusted_servers_authentication_results_count(
    make_relay: MakeRelay, dns: FakeDns
) -> None:
    relay = make_relay(
        dns_servers=(dns.address,),
        inbound_secret=WORKER_SECRET,
        trusted_authserv_ids=("mx.trusted.example",),
    )
    _, tag = await conversation(relay)
    forged = reply(tag, "Trust me", headers={"Authentication-Results": "evil.example; dmarc=pass"})
    vouched = reply(
        tag,
        "Checked by our own server",
        headers={
            "Authentication-Results": "mx.trusted.example; dkim=pass header.d=alpha.example;"
            " dmarc=pass header.from=alpha.example"
        },
    )
    async with relay.client(origin=None) as client:
        answers = [(await worker(client, raw)).json() for raw in (forged, vouched)]
    assert answers == [{"verdict": "held"}, {"verdict": "posted"}]
    assert bodies(relay) == ["Checked by our own server"]
    ignored = inbound(relay, forged)
    assert ignored is not None
    assert ignored["authentication"]["trusted"] == []
    assert any("evil.example" in note for note in ignored["authentication"]["ignored"])
    believed = inbound(relay, vouched)
    assert believed is not None
    assert believed["authentication"]["dmarc"]["aligned_by"] == "authentication-results"
    assert believed["peer_ip"] is None  # a webhook has no SMTP envelope of its own


# -- DNS failures ------------------------------------------------------------------------


async def test_a_dns_failure_defers_the_reply_until_dns_answers(
    make_relay: MakeRelay, dns: FakeDns, key: Key
) -> None:
    relay = smtp_relay(make_relay, dns)
    _, tag = await conversation(relay)
    set_owner(relay, OWNER, aliases=("owner@flaky.example",))
    raw = signed(reply(tag, "Yes, we deliver.", sender="owner@flaky.example"), key, "flaky.example")
    dns.fail("_dmarc.flaky.example")
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
            await deliver(relay, raw, to=address(tag), mail_from="owner@flaky.example")
    finally:
        dns.recover("_dmarc.flaky.example")
    assert deferred.value.code == TRY_LATER
    assert inbound(relay, raw) is None and bodies(relay) == []
    await deliver(relay, raw, to=address(tag), mail_from="owner@flaky.example")  # the retry
    assert verdict(relay, raw) == "posted"
    assert bodies(relay) == ["Yes, we deliver."]


# -- `porch smtp` carries the envelope ---------------------------------------------------


async def test_porch_smtp_hands_the_envelope_it_saw_to_the_relay(
    make_relay: MakeRelay, dns: FakeDns, key: Key, tmp_path: object
) -> None:
    relay = make_relay(
        dns_servers=(dns.address,), inbound_secret=FORWARDER_SECRET, reply_domain=REPLY_DOMAIN
    )
    _, tag = await conversation(relay)
    raw = signed(reply(tag, "Forwarded by our MX"), key)
    bounces = "bounces+7@alpha.example"  # MAIL FROM differs from From, as with providers
    async with porch_smtp(relay.url, tmp_path) as port:
        # From another loopback address: the relay cannot mistake the forwarder's own
        # connection for the sender's.
        await deliver(relay, raw, to=address(tag), mail_from=bounces, port=port, source="127.0.0.2")
    record = inbound(relay, raw)
    assert record is not None and record["verdict"] == "posted"
    assert (record["peer_ip"], record["helo"], record["mail_from"]) == (
        "127.0.0.2",
        SENDER_HELO,
        bounces,
    )
    assert record["authentication"]["spf"]["domain"] == "alpha.example"


def raw_request(raw: bytes, envelope: str, signed_envelope: str | None = None) -> dict[str, Any]:
    """Headers and body for /v1/inbound/raw with X-Porch-Envelope: signed as given, or
    with `signed_envelope` in the signature (what a tamperer changed)."""
    timestamp = str(int(time.time()))
    signed_part = f"{timestamp}.{envelope if signed_envelope is None else signed_envelope}"
    return {
        "content": raw,
        "headers": {
            "content-type": "message/rfc822",
            "x-porch-timestamp": timestamp,
            "x-porch-envelope": envelope,
            "x-porch-signature": signature(WORKER_SECRET, signed_part, raw),
        },
    }


async def test_a_tampered_or_malformed_envelope_is_refused(
    make_relay: MakeRelay, dns: FakeDns
) -> None:
    relay = make_relay(dns_servers=(dns.address,), inbound_secret=WORKER_SECRET)
    _, tag = await conversation(relay)
    raw = reply(tag, "Through an edge worker")
    genuine = json.dumps({"peer_ip": "192.0.2.10", "helo": "mx.example", "mail_from": OWNER})
    lying = json.dumps({"peer_ip": "127.0.0.1", "helo": "mx.example", "mail_from": OWNER})
    malformed = {
        "not JSON": "peer_ip=192.0.2.10",
        "no mail_from": json.dumps({"peer_ip": "192.0.2.10", "helo": None}),
        "not an address": json.dumps({"peer_ip": "mx.example", "helo": None, "mail_from": ""}),
        "helo a number": json.dumps({"peer_ip": "192.0.2.10", "helo": 7, "mail_from": ""}),
    }
    before = relay.counts()
    async with relay.client(origin=None) as client:
        tampered = await client.post("/v1/inbound/raw", **raw_request(raw, lying, genuine))
        answers = {
            case: await client.post("/v1/inbound/raw", **raw_request(raw, envelope))
            for case, envelope in malformed.items()
        }
    assert tampered.status_code == 401, tampered.text
    assert tampered.json()["error"] == "invalid_token"
    assert "signature does not match" in tampered.json()["message"]
    for case, response in answers.items():
        assert response.status_code == 400, f"{case}: {response.text}"
        assert response.json()["error"] == "invalid_request", case
        assert "expected X-Porch-Envelope" in response.json()["message"], case
    assert relay.counts() == before
    assert inbound(relay, raw) is None
