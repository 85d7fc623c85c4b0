"""Who may answer a conversation by email, through the relay's real SMTP ingress: the
owner the reply tag was issued to, an alias that owner registered, or a reply alias
of the site; nobody else, not even another owner's alias."""

from __future__ import annotations

import json
from collections.abc import Callable

import aiosmtplib
import pytest

from tests.mail.conftest import OWNER, REPLY_DOMAIN, issue_reply_tag, owner_reply, set_owner
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, free_port, start_thread

pytestmark = BOTH_ENGINES

PARTNER = "partner@alpha.example"


@pytest.fixture
def alias_relay(make_relay: Callable[..., RunningRelay]) -> RunningRelay:
    relay = make_relay(reply_domain=REPLY_DOMAIN, smtp_port=free_port())
    with relay.db() as db:  # two owners; the site also lets its front desk answer
        settings = json.loads(
            db.execute("SELECT settings FROM sites WHERE id = 'alpha'").fetchone()[0]
        )
        settings["reply_aliases"] = ["desk@alpha.example"]
        db.execute(
            "UPDATE sites SET owner_emails = ?, settings = ? WHERE id = 'alpha'",
            (json.dumps([OWNER, PARTNER]), json.dumps(settings)),
        )
    set_owner(relay, OWNER, aliases=("me@home.example",))
    set_owner(relay, PARTNER, aliases=("partner@home.example",))
    return relay


async def reply_from(relay: RunningRelay, sender: str, text: str) -> str:
    """Reply to a new conversation with OWNER's reply tag, from `sender`: the verdict."""
    async with relay.client() as client:
        started = await start_thread(client, "Can someone answer?")
    thread = started["thread"]["id"]
    tag = issue_reply_tag(relay, thread, OWNER)
    await aiosmtplib.send(
        owner_reply(tag, text, sender=sender),
        sender=sender,
        recipients=[f"r+{tag}@{REPLY_DOMAIN}"],
        hostname="127.0.0.1",
        port=relay.config.smtp_port,
    )
    with relay.db() as db:
        row = db.execute("SELECT verdict FROM inbound WHERE thread_id = ?", (thread,)).fetchone()
        bodies = [
            r[0]
            for r in db.execute(
                "SELECT body FROM messages WHERE thread_id = ? AND author = 'owner'", (thread,)
            )
        ]
    assert bodies == ([text] if row[0] == "posted" else [])
    return str(row[0])


@pytest.mark.parametrize(
    ("sender", "verdict"),
    [
        (OWNER, "posted"),
        ("me@home.example", "posted"),  # OWNER's own alias
        ("Me@Home.Example", "posted"),  # addresses compare lowercased
        ("desk@alpha.example", "posted"),  # the site's reply alias
        ("partner@home.example", "forged"),  # another owner's alias: not for OWNER's tag
        (PARTNER, "forged"),  # another owner: has a tag of their own
        ("someone@home.example", "forged"),
    ],
)
async def test_who_may_reply_with_an_owner_tag(
    alias_relay: RunningRelay, sender: str, verdict: str
) -> None:
    assert await reply_from(alias_relay, sender, f"Answer from {sender}") == verdict
