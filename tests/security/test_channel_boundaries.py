"""Boundaries between channels, sites and customers: a start derived from a provider's
message id cannot be replayed through the widget (or pre-empted by it), two sites' bots
numbering updates alike are not duplicates, a "continue in the app" link never moves a
chat that continues someone else's conversation, a site's own contact address cannot be
silenced by another site, and the privacy export names the customer's chats."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from tests.apps_support import (
    BOT_TOKEN,
    Fakes,
    porch,
    secret_token,
)
from tests.fakes.webhooks import telegram_headers, telegram_update
from tests.mail.conftest import REPLY_DOMAIN, mail_relay
from tests.mail.smtp_sink import SinkServer
from tests.mail.test_visitor_email import customer_mail, smtp_send, threads_of
from tests.support import RunningRelay, bearer, start_thread
from tests.test_inbox_api import inbox

pytestmark = pytest.mark.parametrize("engine", ["sqlite", "postgres"], indirect=True)

BETA_BOT = "5151:beta-test-token"


def start_id(kind: str, external_id: str) -> str:
    """The client_id MessagingApp._start / Pipeline._to_contact_address give a start."""
    return f"{kind}.{hashlib.sha256(external_id.encode()).hexdigest()[:40]}"


async def test_widget_start_with_a_derived_client_id_hands_out_a_telegram_customers_thread(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """Anyone who can guess an update_id (sequential per bot) gets the visitor token
    of the Telegram customer's thread from the public start endpoint."""
    bot, _ = fakes
    channel = porch(app_relay, "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN)
    path = f"/v1/channels/{channel['id']}/webhook"
    async with app_relay.client() as client:
        update = telegram_update(123456, 7070, "My address is 5 rue Secrète, code 4321")
        sent = await client.post(path, json=update, headers=telegram_headers(secret_token(bot)))
        assert sent.status_code == 200
        # The attacker, on the widget's public API:
        stolen = await client.post(
            "/v1/sites/alpha/threads",
            json={"body": "hi", "client_id": start_id("telegram", "123456")},
        )
        assert stolen.status_code in (200, 201), stolen.text
        history = await client.get("/v1/thread", headers=bearer(stolen.json()["token"]))
        bodies = [m["body"] for m in history.json()["messages"]]
    assert "My address is 5 rue Secrète, code 4321" not in bodies, "thread taken over"


async def test_a_widget_start_can_swallow_a_future_telegram_customers_first_message(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """A start that used the client_id a future update will derive makes that
    update's message vanish (acknowledged 200, never stored)."""
    bot, _ = fakes
    channel = porch(app_relay, "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN)
    path = f"/v1/channels/{channel['id']}/webhook"
    async with app_relay.client() as client:
        await start_thread(client, "squatting", client_id=start_id("telegram", "777"))
        update = telegram_update(777, 8080, "Please call me back")
        sent = await client.post(path, json=update, headers=telegram_headers(secret_token(bot)))
        assert sent.status_code == 200
    with app_relay.db() as db:
        stored = [r[0] for r in db.execute("SELECT body FROM messages").fetchall()]
        chats = db.execute("SELECT COUNT(*) FROM chats").fetchone()[0]
    assert "Please call me back" in stored and chats == 1, (stored, chats)


async def test_two_sites_bots_with_the_same_update_id_are_not_duplicates(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """update_id is per bot; the inbound record is keyed by kind only, so beta's
    customer's message is dropped as alpha's duplicate."""
    bot, _ = fakes
    bot.add_bot(BETA_BOT, "beta_bot")
    alpha = porch(app_relay, "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN)
    beta = porch(app_relay, "channel", "add", "beta", "telegram", "--bot-token", BETA_BOT)
    beta_secret = bot.webhook(BETA_BOT).secret_token  # type: ignore[union-attr]
    async with app_relay.client() as client:
        one = await client.post(
            f"/v1/channels/{alpha['id']}/webhook",
            json=telegram_update(42, 7070, "for alpha"),
            headers=telegram_headers(secret_token(bot)),
        )
        two = await client.post(
            f"/v1/channels/{beta['id']}/webhook",
            json=telegram_update(42, 9090, "for beta"),
            headers=telegram_headers(beta_secret),
        )
        assert one.status_code == two.status_code == 200
    with app_relay.db() as db:
        stored = [r[0] for r in db.execute("SELECT body FROM messages").fetchall()]
    assert "for beta" in stored, stored


async def test_a_continue_link_moves_another_customers_chat_into_the_attackers_thread(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """The attacker makes a code for their own widget thread and gets a victim who
    already chats with the bot to open t.me/bot?start=CODE: the victim's chat is
    rebound, and what the victim writes next is readable on the attacker's widget."""
    bot, _ = fakes
    channel = porch(app_relay, "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN)
    path = f"/v1/channels/{channel['id']}/webhook"
    good = telegram_headers(secret_token(bot))
    async with app_relay.client() as client:
        victim = await client.post(path, json=telegram_update(1, 7070, "hello"), headers=good)
        assert victim.status_code == 200
        attacker = await start_thread(client, "attacker here")
        auth = bearer(attacker["token"])
        link = await client.post(
            "/v1/thread/continue", json={"channel": channel["id"]}, headers=auth
        )
        code = link.json()["code"]
        # The victim clicks the link: Telegram sends /start CODE from their chat.
        await client.post(path, json=telegram_update(2, 7070, f"/start {code}"), headers=good)
        await client.post(path, json=telegram_update(3, 7070, "my card ends 1234"), headers=good)
        seen = await client.get("/v1/thread", headers=auth)
        bodies = [m["body"] for m in seen.json()["messages"]]
    assert "my card ends 1234" not in bodies, (
        "the victim's chat now writes into the attacker's thread"
    )


async def test_the_privacy_export_names_the_customers_messaging_app_chats(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """A WhatsApp/Telegram customer's chat (their phone number / chat id, their name in
    the app) is personal data the relay keeps: the export should show it."""
    bot, _ = fakes
    channel = porch(app_relay, "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN)
    path = f"/v1/channels/{channel['id']}/webhook"
    async with app_relay.client() as client:
        started = await start_thread(client, "from the site")
        auth = bearer(started["token"])
        link = await client.post(
            "/v1/thread/continue", json={"channel": channel["id"]}, headers=auth
        )
        code = link.json()["code"]
        update = telegram_update(1, 7070, f"/start {code}", first_name="Grace")
        await client.post(path, json=update, headers=telegram_headers(secret_token(bot)))
        exported = await client.get("/v1/thread/export", headers=auth)
        assert exported.status_code == 200, exported.text
    assert "7070" in exported.text or "Grace" in exported.text, exported.text[:600]


async def test_a_start_from_an_email_to_the_contact_address_is_replayable_by_message_id(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    """The contact address's start is keyed by the Message-ID, which every recipient of
    the email (and every server on its way) sees: the widget's start hands out the
    thread."""

    relay = mail_relay(make_relay, sink)
    mail = customer_mail("hello@alpha.example", "Our door code is 4242")
    message_id = mail["Message-ID"].strip("<>")
    await smtp_send(relay, mail, f"contact+alpha@{REPLY_DOMAIN}")
    assert len(threads_of(relay)) == 1
    async with relay.client() as client:
        stolen = await client.post(
            "/v1/sites/alpha/threads",
            json={"body": "hi", "client_id": start_id("email", message_id)},
        )
        history = await client.get("/v1/thread", headers=bearer(stolen.json()["token"]))
    assert "Our door code is 4242" not in [m["body"] for m in history.json()["messages"]]


async def test_another_site_cannot_silence_a_sites_own_contact_address(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    """contact+alpha@ is alpha's by construction; beta listing it makes every email to
    it nobody's (NO_TAG), silently."""
    relay = mail_relay(make_relay, sink)
    async with inbox(relay, "owner@beta.example") as beta:
        claim = await beta.post(
            "/inbox/api/sites/beta/settings",
            {"contact_addresses": [f"contact+alpha@{REPLY_DOMAIN}"]},
        )
        assert claim.status_code == 200, claim.text
    await smtp_send(
        relay, customer_mail("hello@alpha.example", "Open Sunday?"), f"contact+alpha@{REPLY_DOMAIN}"
    )
    assert [row[1] for row in threads_of(relay)] == ["alpha"]


async def test_another_sites_owner_cannot_touch_this_sites_apps_from_the_inbox(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """Beta's owner, signed in to the inbox, aims at alpha's channels and threads: each
    is "not found", and a POST without the page's CSRF token is refused first."""

    channel = porch(app_relay, "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN)
    async with app_relay.client() as client:
        started = await start_thread(client, "Alpha's customer")
    thread = started["thread"]["id"]
    async with inbox(app_relay, "owner@beta.example") as beta:
        add = {"kind": "telegram", "options": {"bot_token": "4242:other"}}
        assert (await beta.post("/inbox/api/sites/alpha/channels", add)).status_code == 404
        removed = await beta.post(f"/inbox/api/sites/alpha/channels/{channel['id']}/remove")
        assert removed.status_code == 404
        template = await beta.post(
            f"/inbox/api/threads/{thread}/template", {"channel": channel["id"]}
        )
        assert template.status_code == 404
        seen = await beta.get(f"/inbox/api/threads/{thread}")
        assert seen.status_code == 404 and BOT_TOKEN not in seen.text
        no_csrf = await beta.client.post(
            "/inbox/api/sites/beta/channels", json=add, headers={"x-csrf-token": ""}
        )
        assert no_csrf.status_code == 403
    assert [c["id"] for c in porch(app_relay, "channel", "list", "alpha")] == [channel["id"]]
    assert porch(app_relay, "channel", "list", "beta") == []
