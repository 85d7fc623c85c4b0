"""Attacks on the messaging apps' ways in: forged, unsigned, re-signed and replayed
webhooks, bodies too large or not the app's JSON, codes of "continue in the app" guessed,
replayed, expired or asked for in bulk, and the channels' secrets looked for wherever the
relay speaks (the CLI, the inbox API, error bodies, its logs)."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from relay.channels.apps.provider import CODE_ALPHABET, CODE_LENGTH
from relay.channels.apps.webhook import MAX_WEBHOOK_BYTES
from tests.apps_support import (
    APP_SECRET,
    BOT_TOKEN,
    CHAT,
    PAGE_ID,
    PAGE_TOKEN,
    VERIFY,
    WA_TOKEN,
    WA_USER,
    Fakes,
    add_messenger,
    add_telegram,
    add_whatsapp,
    delivery_where,
    meta_writes,
    owner_replies,
    run_porch,
    secret_token,
    telegram_writes,
    thread_of,
    thread_view,
    wa_text,
    webhook_path,
)
from tests.fakes.graph_api import WHATSAPP_SEND
from tests.fakes.webhooks import (
    META_SIGNATURE_HEADER,
    TELEGRAM_SECRET_HEADER,
    messenger_message,
    meta_signature,
    meta_signed,
    telegram_update,
    whatsapp_status,
)
from tests.support import BETA_ORIGIN, RunningRelay, bearer, start_thread
from tests.test_inbox_api import inbox

FORBIDDEN, NOT_FOUND, TOO_LARGE, BAD_REQUEST, TOO_MANY = 403, 404, 413, 400, 429
# Beta's own WhatsApp number: another site, another Meta app, another secret.
BETA_PHONE_ID, BETA_TOKEN, BETA_SECRET = "2099", "beta-wa-token", "beta-app-secret"
CODES_PER_VISITOR_PER_HOUR = 30  # relay.web.services.Limits.codes_by_visitor


def random_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def nothing_stored(relay: RunningRelay) -> bool:
    counts = relay.counts()
    return (counts["visitors"], counts["threads"], counts["messages"]) == (0, 0, 0)


# -- Telegram ----------------------------------------------------------------------------


async def test_telegram_updates_without_the_secret_token_store_nothing(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    channel = add_telegram(app_relay)
    webhook = fakes[0].webhook(BOT_TOKEN)
    assert webhook is not None and BOT_TOKEN not in webhook.url
    assert BOT_TOKEN.split(":")[1] not in webhook.url  # not even the secret half
    update = telegram_update(1, CHAT, "Forged")
    answers = []
    async with app_relay.client(origin=None) as client:
        for headers in (
            {},
            {TELEGRAM_SECRET_HEADER: ""},
            {TELEGRAM_SECRET_HEADER: "guess"},
            {TELEGRAM_SECRET_HEADER: webhook.secret_token[:-1]},
            {TELEGRAM_SECRET_HEADER: webhook.secret_token.upper()},
            {TELEGRAM_SECRET_HEADER: BOT_TOKEN},  # the bot token is not the secret
        ):
            answer = await client.post(webhook_path(channel), json=update, headers=headers)
            answers.append(answer)
    assert [a.status_code for a in answers] == [FORBIDDEN] * 6
    assert nothing_stored(app_relay)
    for answer in answers:
        assert BOT_TOKEN not in answer.text and webhook.secret_token not in answer.text


async def test_telegram_bodies_that_are_not_updates_are_refused(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    channel = add_telegram(app_relay)
    headers = {TELEGRAM_SECRET_HEADER: secret_token(fakes[0]), "content-type": "application/json"}
    async with app_relay.client(origin=None) as client:
        for raw in (b"{not json", b"[]", b'"update"', b"{}", b'{"update_id": "1"}', b""):
            answer = await client.post(webhook_path(channel), content=raw, headers=headers)
            assert answer.status_code == BAD_REQUEST, (raw, answer.text)
    assert nothing_stored(app_relay)


# -- Meta: signatures ----------------------------------------------------------------------


def forged_signatures(raw: bytes) -> dict[str, str | None]:
    good = meta_signature(APP_SECRET, raw)
    digest = good.removeprefix("sha256=")
    return {
        "missing": None,
        "empty": "",
        "wrong": "sha256=" + "0" * 64,
        "truncated": good[:-2],
        "uppercase hex": "sha256=" + digest.upper(),
        "no prefix": digest,
        "sha1": "sha1=" + digest[:40],
        "another body": meta_signature(APP_SECRET, raw + b" "),
        "another site's secret": meta_signature(BETA_SECRET, raw),
        "the verify token": meta_signature(VERIFY, raw),
    }


async def test_meta_webhooks_with_a_forged_signature_store_nothing(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    fakes[1].add_whatsapp(BETA_PHONE_ID, BETA_TOKEN, "+33 6 98 76 54 32")
    channel = add_whatsapp(app_relay)
    add_whatsapp(app_relay, "beta", BETA_PHONE_ID, BETA_TOKEN, BETA_SECRET)
    raw = json.dumps(wa_text("Forged", "wamid.forged")).encode()
    refused = {}
    async with app_relay.client(origin=None) as client:
        for name, signature in forged_signatures(raw).items():
            headers = {"content-type": "application/json"}
            if signature is not None:
                headers[META_SIGNATURE_HEADER] = signature
            answer = await client.post(webhook_path(channel), content=raw, headers=headers)
            refused[name] = answer.status_code
    assert refused == {name: FORBIDDEN for name in refused}
    assert nothing_stored(app_relay)


async def test_a_delivery_for_one_site_signed_by_another_sites_app_is_refused(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """Beta's Meta app signs, correctly for beta, a message addressed to alpha's channel
    (or names alpha's number inside beta's webhook): neither is stored."""
    fakes[1].add_whatsapp(BETA_PHONE_ID, BETA_TOKEN, "+33 6 98 76 54 32")
    alpha = add_whatsapp(app_relay)
    beta = add_whatsapp(app_relay, "beta", BETA_PHONE_ID, BETA_TOKEN, BETA_SECRET)
    raw, headers = meta_signed(BETA_SECRET, wa_text("Cross-site", "wamid.cross"))
    async with app_relay.client(origin=None) as client:
        answer = await client.post(webhook_path(alpha), content=raw, headers=headers)
        assert answer.status_code == FORBIDDEN
        # Beta's webhook, beta's signature, but alpha's phone-number id inside.
        answer = await client.post(webhook_path(beta), content=raw, headers=headers)
        assert answer.status_code == 200
    assert nothing_stored(app_relay)


async def test_a_stale_delivery_replayed_is_stored_once(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """A valid delivery captured a week ago and sent again and again (Meta's signature
    has no date): the wamid or mid it carries makes every copy after the first a no-op."""
    fakes[1].add_page(PAGE_ID, PAGE_TOKEN)
    whatsapp, messenger = add_whatsapp(app_relay), add_messenger(app_relay)
    week_ago = int(time.time()) - 7 * 24 * 3600
    on_whatsapp = wa_text("Replayed on WhatsApp", "wamid.replayed", timestamp=week_ago)
    on_messenger = messenger_message(
        PAGE_ID, "6100", "Replayed on Messenger", "m_replayed", timestamp=week_ago * 1000
    )
    async with app_relay.client(origin=None) as client:
        for _ in range(5):
            await meta_writes(client, whatsapp, on_whatsapp)
            await meta_writes(client, messenger, on_messenger)
    with app_relay.db() as db:
        bodies = [row[0] for row in db.execute("SELECT body FROM messages ORDER BY seq")]
    assert bodies == ["Replayed on WhatsApp", "Replayed on Messenger"]


async def test_a_huge_webhook_body_is_refused_and_stores_nothing(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    whatsapp, telegram = add_whatsapp(app_relay), add_telegram(app_relay)
    huge = wa_text("x" * (MAX_WEBHOOK_BYTES + 1), "wamid.huge")
    raw, headers = meta_signed(APP_SECRET, huge)  # correctly signed, still too large
    update = json.dumps(telegram_update(1, CHAT, "y" * (MAX_WEBHOOK_BYTES + 1))).encode()
    telegram_headers = {TELEGRAM_SECRET_HEADER: secret_token(fakes[0])}

    async def chunks(body: bytes) -> Any:  # no Content-Length: the limit is counted
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    async with app_relay.client(origin=None) as client:
        for path, body, sent in (
            (webhook_path(whatsapp), raw, headers),
            (webhook_path(telegram), update, telegram_headers),
        ):
            declared = await client.post(path, content=body, headers=sent)
            assert declared.status_code == TOO_LARGE, declared.text
            streamed = await client.post(path, content=chunks(body), headers=sent)
            assert streamed.status_code == TOO_LARGE, streamed.text
    assert nothing_stored(app_relay)


async def test_signed_bodies_that_are_not_meta_webhooks_are_refused(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    channel = add_whatsapp(app_relay)
    async with app_relay.client(origin=None) as client:
        for raw in (
            b"{not json",
            b"[]",
            b'[{"object": "whatsapp_business_account"}]',
            b'{"object": "page", "entry": []}',
            b'{"object": "instagram"}',
            b'{"object": "whatsapp_business_account", "entry": "x"}',
            b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": 1}]}]}',
        ):
            headers = {
                "content-type": "application/json",
                META_SIGNATURE_HEADER: meta_signature(APP_SECRET, raw),
            }
            answer = await client.post(webhook_path(channel), content=raw, headers=headers)
            assert answer.status_code == BAD_REQUEST, (raw, answer.text)
    assert nothing_stored(app_relay)


async def test_unknown_channels_are_not_found(app_relay: RunningRelay, fakes: Fakes) -> None:
    add_whatsapp(app_relay)
    raw, headers = meta_signed(APP_SECRET, wa_text("Lost", "wamid.lost"))
    handshake = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"}
    async with app_relay.client(origin=None) as client:
        for channel in ("ch_nope", "%2e%2e", "ch_" + "a" * 500):
            path = f"/v1/channels/{channel}/webhook"
            assert (await client.post(path, content=raw, headers=headers)).status_code == NOT_FOUND
            assert (await client.get(path, params=handshake)).status_code == NOT_FOUND
    assert nothing_stored(app_relay)


# -- continue in the app ------------------------------------------------------------------


async def widget_visitor(relay: RunningRelay) -> tuple[dict[str, Any], dict[str, str]]:
    async with relay.client() as client:
        started = await start_thread(client, "From the widget")
    return started, bearer(started["token"])


async def ask_code(relay: RunningRelay, auth: dict[str, str], channel: str) -> httpx.Response:
    async with relay.client() as client:
        return await client.post("/v1/thread/continue", json={"channel": channel}, headers=auth)


def chats_of(relay: RunningRelay, thread: str) -> list[str]:
    with relay.db() as db:
        rows = db.execute("SELECT address FROM chats WHERE thread_id = ?", (thread,)).fetchall()
    return [str(row[0]) for row in rows]


async def test_another_sites_channel_gives_no_code(app_relay: RunningRelay, fakes: Fakes) -> None:
    fakes[1].add_whatsapp(BETA_PHONE_ID, BETA_TOKEN, "+33 6 98 76 54 32")
    beta = add_whatsapp(app_relay, "beta", BETA_PHONE_ID, BETA_TOKEN, BETA_SECRET)
    started, auth = await widget_visitor(app_relay)
    for channel in (beta["id"], "ch_nope", ""):
        answer = await ask_code(app_relay, auth, channel)
        assert answer.status_code in (NOT_FOUND, 422), answer.text
        assert "code" not in answer.json() and "url" not in answer.json()
    async with app_relay.client(origin=BETA_ORIGIN) as client:  # beta's page, alpha's token
        answer = await client.post(
            "/v1/thread/continue", json={"channel": beta["id"]}, headers=auth
        )
        assert answer.status_code >= 400 and "code" not in answer.json()
    with app_relay.db() as db:
        assert db.execute("SELECT COUNT(*) FROM link_codes").fetchone()[0] == 0


async def test_guessed_codes_bind_nothing(app_relay: RunningRelay, fakes: Fakes) -> None:
    telegram, whatsapp = add_telegram(app_relay), add_whatsapp(app_relay)
    started, auth = await widget_visitor(app_relay)
    real = (await ask_code(app_relay, auth, telegram["id"])).json()["code"]
    guesses = ["WRONGCODE", real.upper(), real[:-1], real + "a"]
    guesses += [
        "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)) for _ in range(20)
    ]
    async with app_relay.client(origin=None) as client:
        for n, guess in enumerate(guesses, start=1):
            update = telegram_update(n, 9000 + n, f"/start {guess}")
            await telegram_writes(client, telegram, secret_token(fakes[0]), update)
            prefill = f"Hello! I am continuing my conversation with Alpha Bakery (#{guess})"
            await meta_writes(client, whatsapp, wa_text(prefill, f"wamid.guess{n}"))
    assert chats_of(app_relay, started["thread"]["id"]) == []
    async with inbox(app_relay) as page:
        view = await thread_view(page, started["thread"]["id"])
    assert view["channels"] == [] and [m["body"] for m in view["messages"]] == ["From the widget"]
    # No chat was told it continues anything.
    assert fakes[0].calls("sendMessage") == [] and fakes[1].calls(WHATSAPP_SEND) == []


async def test_a_used_code_replayed_from_another_chat_binds_nothing(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    telegram = add_telegram(app_relay)
    started, auth = await widget_visitor(app_relay)
    code = (await ask_code(app_relay, auth, telegram["id"])).json()["code"]
    async with app_relay.client(origin=None) as client:
        for n, chat in enumerate((CHAT, 8001, 8002, CHAT), start=1):  # the first one binds
            update = telegram_update(n, chat, f"/start {code}")
            await telegram_writes(client, telegram, secret_token(fakes[0]), update)
    assert chats_of(app_relay, started["thread"]["id"]) == [str(CHAT)]
    assert {str(c.params["chat_id"]) for c in fakes[0].calls("sendMessage")} == {str(CHAT)}


async def test_an_expired_code_binds_nothing(app_relay: RunningRelay, fakes: Fakes) -> None:
    """A code lives 15 minutes of real time: its expiry is moved back in the database,
    as no setting moves that clock (PORCH_CLOCK_START moves business hours only)."""
    telegram = add_telegram(app_relay)
    started, auth = await widget_visitor(app_relay)
    code = (await ask_code(app_relay, auth, telegram["id"])).json()["code"]
    with app_relay.db() as db:
        db.execute("UPDATE link_codes SET expires_at = '2020-01-01T00:00:00.000Z'")
    async with app_relay.client(origin=None) as client:
        update = telegram_update(1, CHAT, f"/start {code}")
        await telegram_writes(client, telegram, secret_token(fakes[0]), update)
    assert chats_of(app_relay, started["thread"]["id"]) == []


async def test_codes_asked_for_in_bulk_are_refused(app_relay: RunningRelay, fakes: Fakes) -> None:
    telegram = add_telegram(app_relay)
    _, auth = await widget_visitor(app_relay)
    answers = [
        (await ask_code(app_relay, auth, telegram["id"])).status_code
        for _ in range(CODES_PER_VISITOR_PER_HOUR + 1)
    ]
    assert answers == [201] * CODES_PER_VISITOR_PER_HOUR + [TOO_MANY]


# -- the channels' secrets, wherever the relay speaks ------------------------------------


async def test_channel_secrets_are_never_shown_or_logged(
    make_relay: Callable[..., RunningRelay], fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the relay's default level (PORCH_LOG_LEVEL=info)
    bot, graph = fakes
    relay = make_relay(telegram_api_url=bot.url, meta_api_url=graph.url, log_level="info")
    added = run_porch(relay, "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN)
    telegram, whatsapp = json.loads(added.stdout), add_whatsapp(relay)
    listed = run_porch(relay, "channel", "list", "alpha")
    webhook_secret = secret_token(fakes[0])
    hidden = [BOT_TOKEN, BOT_TOKEN.split(":")[1], WA_TOKEN, APP_SECRET, VERIFY, webhook_secret]
    seen = [added.stdout, added.stderr, json.dumps(whatsapp), listed.stdout, listed.stderr]
    async with relay.client(origin=None) as client:
        update = telegram_update(1, CHAT, "Hello bot")
        await telegram_writes(client, telegram, webhook_secret, update)
        await meta_writes(client, whatsapp, wa_text("Hello number", "wamid.1"))
        raw, headers = meta_signed(APP_SECRET, wa_text("Forged", "wamid.2"))
        for answer in (
            await client.post(webhook_path(telegram), json=update),  # 403
            await client.post(webhook_path(whatsapp), content=raw + b"x", headers=headers),
            await client.get(webhook_path(whatsapp), params={"hub.mode": "subscribe"}),
            await client.get(webhook_path(telegram)),
        ):
            assert answer.status_code >= 400
            seen.append(answer.text)
        seen.append((await client.get("/v1/sites/alpha/config")).text)
    async with inbox(relay) as page:
        on_telegram = await thread_of(page, "Hello bot")
        await owner_replies(page, on_telegram, "Hello customer")
        await delivery_where(page, on_telegram, lambda d: d["status"] == "sent", "a delivery sent")
        bot.revoke(BOT_TOKEN)  # the next one fails, with Telegram's words in the logs
        await owner_replies(page, on_telegram, "Still there?")
        await delivery_where(page, on_telegram, lambda d: d["status"] == "failed", "a failure")
        seen.append(json.dumps(page.me))
        seen.append((await page.get("/inbox/api/threads")).text)
        seen.append((await page.get(f"/inbox/api/threads/{on_telegram}")).text)
        seen.append((await page.get("/inbox/api/session")).text)
    seen.append(caplog.text)
    everything = "\n".join(seen)
    assert "Hello customer" not in caplog.text and "Forged" not in everything
    assert "refused" in caplog.text  # the relay did log the failed delivery
    for secret in hidden:
        assert secret not in everything, f"{secret!r} leaked"


async def test_a_status_from_another_sites_app_does_not_touch_this_sites_reply(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """Beta's owner runs beta's Meta app, so can sign anything for beta's webhook; a
    status naming a message alpha sent must not change what alpha's inbox shows."""
    _, graph = fakes
    graph.add_whatsapp(BETA_PHONE_ID, BETA_TOKEN, "+33 6 98 76 54 32")
    alpha = add_whatsapp(app_relay)
    beta = add_whatsapp(app_relay, "beta", BETA_PHONE_ID, BETA_TOKEN, BETA_SECRET)
    async with inbox(app_relay) as page, app_relay.client(origin=None) as client:
        await meta_writes(client, alpha, wa_text("Hello alpha", "wamid.in1"))
        thread = await thread_of(page, "Hello alpha")
        await owner_replies(page, thread, "Hello from alpha")
        await delivery_where(page, thread, lambda d: d["status"] == "sent", "a delivery sent")
        [call] = graph.calls(WHATSAPP_SEND)
        assert call.answer is not None
        wamid = call.answer["messages"][0]["id"]
        forged = whatsapp_status(BETA_PHONE_ID, wamid, "failed", WA_USER)
        raw, headers = meta_signed(BETA_SECRET, forged)
        answer = await client.post(webhook_path(beta), content=raw, headers=headers)
        assert answer.status_code == 200
        [delivery] = (await thread_view(page, thread))["deliveries"]
    assert (delivery["status"], delivery["receipt"]) == ("sent", "accepted")
    assert delivery["error"] is None
