"""User text in the headers of the emails we send: a visitor's name, a site's name.

Each email goes through a real SMTP server; its address headers are parsed back with
the standard library's header registry, and must hold our addresses and nothing else,
under a display name with nothing that reads as an address. No text may add a header.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from tests.mail.conftest import REPLY_DOMAIN, mail_relay
from tests.mail.smtp_sink import SinkServer
from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, start_thread
from tests.test_inbox_api import inbox

pytestmark = BOTH_ENGINES

SENDER = f"notify@{REPLY_DOMAIN}"
HOSTILE_NAMES = [
    "Your Bank Security Department: alerts@yourbank.example; action needed",
    'Support" <help@bank.example>, "Ann',
    "Ann\r\nBcc: x@evil.example",
    "Ｓupport ＠ bank.example",  # full-width look-alikes
    "\u202eelpmaxe.knab@strela",  # right-to-left override: shows as alerts@bank.example
    "=?utf-8?b?PGFAYi5jPg==?=",  # an encoded word that decodes to <a@b.c>
    "=?utf-8?q?x=0D=0ABcc:_evil@x.example?=",  # one that decodes to a new header line
    "Security Team (ops@bank.example) [urgent]: verify your account; now, please",
]
# What must not survive in a name shown as a sender, whatever the client decodes.
ADDRESS_LIKE = set('@<>:;,"') | {"\u202e"}


def addresses(mail: EmailMessage, header: str) -> list[str]:
    field = mail[header]
    assert field is not None, f"no {header} header"
    return [address.addr_spec for address in field.addresses]


def display_names(mail: EmailMessage, header: str) -> list[str]:
    return [address.display_name for address in mail[header].addresses]


def assert_only_ours(mail: EmailMessage, *, to: str) -> None:
    assert addresses(mail, "From") == [SENDER]
    assert addresses(mail, "To") == [to]
    for name in display_names(mail, "From"):
        assert not ADDRESS_LIKE & set(unicodedata.normalize("NFKC", name)), name
    for header in ("Bcc", "Cc", "Sender"):
        assert mail[header] is None, f"{header} was injected"
    assert mail.defects == [] and mail["From"].defects == ()


@pytest.fixture
def relay(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> RunningRelay:
    return mail_relay(make_relay, sink)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_a_visitor_name_never_makes_a_sender(
    relay: RunningRelay, sink: SinkServer, name: str
) -> None:
    async with relay.client() as client:
        await start_thread(client, "Hello", name=name)
    mail = await sink.sink.next()
    assert_only_ours(mail, to="owner@alpha.example")
    (reply_to,) = addresses(mail, "Reply-To")
    assert reply_to.startswith("r+") and reply_to.endswith(f"@{REPLY_DOMAIN}")
    assert "\n" not in str(mail["Subject"]) and "\r" not in str(mail["Subject"])
    assert display_names(mail, "From")[0].endswith(" via Alpha Bakery")


@pytest.mark.parametrize("name", HOSTILE_NAMES[:2] + HOSTILE_NAMES[5:7])
async def test_a_site_name_never_makes_a_sender(
    relay: RunningRelay, sink: SinkServer, name: str
) -> None:
    """Site names are set in the inbox, by anyone holding an owner's session."""
    async with inbox(relay) as page:
        renamed = await page.post("/inbox/api/sites/alpha/settings", {"name": name[:80]})
        assert renamed.status_code == 200, renamed.text
    async with relay.client() as client:
        started = await start_thread(client, "Hello")
        await sink.sink.next()  # the owner's notification
        asked = await client.post(
            "/v1/thread/resume-link",
            headers=bearer(started["token"]),
            json={"email": "ann@example.com"},
        )
        assert asked.status_code == 202
    link_mail = await sink.sink.next()
    assert_only_ours(link_mail, to="ann@example.com")
    assert "\n" not in str(link_mail["Subject"])
