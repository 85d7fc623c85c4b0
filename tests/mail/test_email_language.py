"""Every email in its recipient's language (relay/channels/email/compose.py through the
one catalogue, widget/messages.json): owner notifications in the owner's language,
replies and resume links in the visitor's. A real relay, a real SMTP sink."""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from relay.catalogue import LANGUAGES, catalogue
from relay.channels.email.reading import REPLY_MARKERS
from tests.mail.conftest import OWNER, mail_relay, set_owner
from tests.mail.smtp_sink import SinkServer
from tests.mail.test_outbound import text_of
from tests.support import ALPHA, RunningRelay, bearer, start_thread

COMPOSE = Path(__file__).resolve().parents[2] / "relay" / "channels" / "email" / "compose.py"


@pytest.fixture
def relay(make_relay: Callable[..., RunningRelay], sink: SinkServer) -> RunningRelay:
    return mail_relay(make_relay, sink)


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return]


async def conversation(
    relay: RunningRelay, sink: SinkServer, language: str | None
) -> tuple[EmailMessage, EmailMessage, EmailMessage]:
    """A visitor writing from a widget in `language` (None: a widget that says none):
    the owner's notification, the visitor's email about the owner's reply, and a resume
    link, as they arrived."""
    async with relay.client() as client:
        started = await start_thread(client, "Avez-vous du pain ?", name="Zoé", language=language)
        owner_mail = await sink.sink.next()
        auth = bearer(started["token"])
        saved = await client.post("/v1/thread/contact", headers=auth, json={"email": "z@x.example"})
        assert saved.status_code == 200
        thread = started["thread"]["id"]
        await client.post(
            f"/v1/owner/threads/{thread}/messages",
            headers=bearer(relay.owner_token()),
            json={"body": "Oui, jusqu'à 19 h."},
        )
        visitor_mail = await sink.sink.next()
    # A second device asks for a link the next day (the address had its one email today).
    with relay.db() as db:
        db.execute("DELETE FROM unconfirmed_sends")
        db.commit()
    async with relay.client() as client:
        asked = await client.post(
            "/v1/thread/resume-link",
            headers=auth,
            json={"email": "z@x.example", "page": "https://alpha.example/"},
        )
        assert asked.status_code in (200, 202, 204), asked.text
        resume_mail = await sink.sink.next()
    return owner_mail, visitor_mail, resume_mail


async def test_a_french_visitor_and_a_french_owner_read_french(
    relay: RunningRelay, sink: SinkServer
) -> None:
    set_owner(relay, OWNER, language="fr")
    owner_mail, visitor_mail, resume_mail = await conversation(relay, sink, "fr")
    assert owner_mail["Subject"] == "Alpha Bakery : conversation avec Zoé"
    assert text_of(owner_mail).startswith(REPLY_MARKERS[1])  # the reader knows this one too
    assert visitor_mail["Subject"] == "Alpha Bakery a répondu à votre message"
    assert "Alpha Bakery vous a répondu :" in text_of(visitor_mail)
    assert "Ne plus recevoir ces e-mails" in html_of(visitor_mail)
    assert resume_mail["Subject"] == "Votre conversation avec Alpha Bakery"
    assert "Il ne fonctionne qu’une fois" in text_of(resume_mail)
    for mail in (owner_mail, visitor_mail, resume_mail):
        assert not re.search(r"\b(conversation with|replied to|You get this)\b", text_of(mail))


async def test_an_english_owner_of_a_french_visitor_reads_english(
    relay: RunningRelay, sink: SinkServer
) -> None:
    set_owner(relay, OWNER, language="en")
    owner_mail, visitor_mail, _ = await conversation(relay, sink, "fr")
    # Each recipient in their own language, in one conversation.
    assert owner_mail["Subject"] == "Alpha Bakery: conversation with Zoé"
    assert text_of(owner_mail).startswith(REPLY_MARKERS[0])
    assert visitor_mail["Subject"] == "Alpha Bakery a répondu à votre message"


async def test_a_visitor_whose_widget_said_no_language_reads_the_sites(
    relay: RunningRelay, sink: SinkServer
) -> None:
    french_site = dataclasses.replace(ALPHA, settings={**ALPHA.settings, "language": "fr"})
    await relay.call(relay.services.store.add_site(french_site, replace=True))
    owner_mail, visitor_mail, resume_mail = await conversation(relay, sink, None)
    assert visitor_mail["Subject"] == "Alpha Bakery a répondu à votre message"
    assert "Ne plus recevoir ces e-mails" in text_of(visitor_mail)
    assert resume_mail["Subject"] == "Votre conversation avec Alpha Bakery"
    # An owner who chose no language reads the site's too.
    assert owner_mail["Subject"] == "Alpha Bakery : conversation avec Zoé"
    assert text_of(owner_mail).startswith(REPLY_MARKERS[1])


async def test_english_by_default(relay: RunningRelay, sink: SinkServer) -> None:
    owner_mail, visitor_mail, resume_mail = await conversation(relay, sink, "en")
    assert owner_mail["Subject"] == "Alpha Bakery: conversation with Zoé"
    assert visitor_mail["Subject"] == "Alpha Bakery replied to your message"
    assert "Stop these emails" in text_of(visitor_mail)
    assert resume_mail["Subject"] == "Your conversation with Alpha Bakery"


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_text_compose_uses_exists_in_every_language_with_the_same_placeholders() -> None:
    used = set(re.findall(r'"(server\.[a-z_.]+)"', COMPOSE.read_text(encoding="utf-8")))
    used |= {
        f"server.digest.{mode}" for mode in ("hourly", "daily", "message")
    }  # built from the mode
    used |= {
        f"server.digest.{noun}.{form}"
        for noun in ("messages", "conversations")
        for form in ("one", "other")
    }  # _counted
    assert len(used) > 30, used  # the scan found compose's keys
    texts: dict[str, dict[str, Any]] = catalogue()
    for key in sorted(used):
        forms = {language: texts[language].get(key) for language in LANGUAGES}
        assert all(forms.values()), f"{key} is missing in {[k for k, v in forms.items() if not v]}"
        assert len({frozenset(placeholders(v)) for v in forms.values() if v}) == 1, forms
