"""Messaging apps as channels, against local fakes of the Bot API and the Graph API:
webhooks verified before anything is stored, duplicates stored once, a chat bound to a
widget thread by a single-use code, and the owner's reply delivered to the chat."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.apps_support import (
    APP_SECRET,
    BOT_TOKEN,
    PAGE_ID,
    PAGE_TOKEN,
    PHONE_ID,
    PSID,
    VERIFY,
    WA_TOKEN,
    Fakes,
    porch,
)
from tests.fakes.graph_api import SUBSCRIBE
from tests.fakes.webhooks import (
    messenger_message,
    meta_signed,
    telegram_headers,
    telegram_update,
    whatsapp_message,
)
from tests.support import RunningRelay, bearer, porch_command, relay_env, start_thread

pytestmark = pytest.mark.parametrize("engine", ["sqlite", "postgres"], indirect=True)


async def test_telegram_chat_continues_a_widget_thread(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    bot, _ = fakes
    channel = porch(app_relay, "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN)
    assert BOT_TOKEN not in json.dumps(channel)  # never printed back
    webhook = bot.webhook(BOT_TOKEN)
    assert webhook is not None and webhook.url == channel["webhook_url"]
    assert BOT_TOKEN not in webhook.url
    listed = porch(app_relay, "channel", "list", "alpha")
    assert [c["id"] for c in listed] == [channel["id"]] and BOT_TOKEN not in json.dumps(listed)
    path = f"/v1/channels/{channel['id']}/webhook"
    async with app_relay.client() as client:
        started = await start_thread(client, "Do you deliver?")
        auth = bearer(started["token"])
        config = (await client.get("/v1/sites/alpha/config")).json()
        assert config["channels"] == [{"id": channel["id"], "kind": "telegram"}]
        link = await client.post(
            "/v1/thread/continue", json={"channel": channel["id"]}, headers=auth
        )
        assert link.status_code == 201, link.text
        code = link.json()["code"]
        assert link.json()["url"] == f"https://t.me/alpha_bot?start={code}"
        # A forged update (no secret) is refused and stores nothing.
        forged = await client.post(path, json=telegram_update(1, 7070, f"/start {code}"))
        assert forged.status_code == 403
        good = telegram_headers(webhook.secret_token)
        bound = await client.post(
            path, json=telegram_update(1, 7070, f"/start {code}"), headers=good
        )
        assert bound.status_code == 200, bound.text
        # The code works once: another chat cannot take the thread with it.
        stolen = await client.post(
            path, json=telegram_update(2, 9999, f"/start {code}"), headers=good
        )
        assert stolen.status_code == 200
        # Telegram retries the same update ten times: stored once.
        for _ in range(10):
            again = await client.post(
                path, json=telegram_update(3, 7070, "Tomorrow?"), headers=good
            )
            assert again.status_code == 200
        history = (await client.get("/v1/thread", headers=auth)).json()
        bodies = [(m["author"], m["via"], m["body"]) for m in history["messages"]]
        assert bodies.count(("visitor", "telegram", "Tomorrow?")) == 1
        assert bodies[0] == ("visitor", "widget", "Do you deliver?")
        # The confirmation note goes to the chat that used the code, once.
        note = bot.wait_for_calls("sendMessage", 1)[0]
        assert note.params["chat_id"] in (7070, "7070") and "Telegram" in note.params["text"]
    assert not [c for c in bot.calls("sendMessage") if str(c.params["chat_id"]) == "9999"]


async def test_whatsapp_webhooks_are_verified_before_anything_is_stored(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    options = ["--phone-number-id", PHONE_ID, "--access-token", WA_TOKEN]
    options += ["--app-secret", APP_SECRET, "--verify-token", VERIFY]
    channel = porch(app_relay, "channel", "add", "alpha", "whatsapp", *options)
    assert channel["handle"] == "+33 6 12 34 56 78"
    path = f"/v1/channels/{channel['id']}/webhook"
    async with app_relay.client(origin=None) as client:
        hello = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"}
        assert (await client.get(path, params=hello)).text == "42"
        wrong = {**hello, "hub.verify_token": "guess"}
        assert (await client.get(path, params=wrong)).status_code == 403
        payload = whatsapp_message(PHONE_ID, "33612345678", "33700000000", "Hi!", "wamid.1")
        raw, headers = meta_signed(APP_SECRET, payload)
        bad = {"content-type": "application/json", "x-hub-signature-256": "sha256=" + "0" * 64}
        assert (await client.post(path, content=raw, headers=bad)).status_code == 403
        unsigned = {"content-type": "application/json"}
        assert (await client.post(path, content=raw, headers=unsigned)).status_code == 403
        assert (await client.post("/v1/channels/ch_nope/webhook", content=raw)).status_code == 404
        junk, junk_headers = meta_signed(APP_SECRET, {"object": "page"})
        assert (await client.post(path, content=junk, headers=junk_headers)).status_code == 400
        for _ in range(3):
            ok = await client.post(path, content=raw, headers=headers)
            assert ok.status_code == 200, ok.text
    removed = subprocess.run(
        [*porch_command(), "channel", "remove", "alpha", channel["id"]],
        env=relay_env(app_relay),
        capture_output=True,
        text=True,
    )
    assert removed.returncode == 0, removed.stderr
    assert porch(app_relay, "channel", "list", "alpha") == []


async def test_a_code_delivered_again_after_a_crash_binds_and_notes_once(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """The relay bound the chat, then died before recording the update: Telegram
    delivers the /start again, and the chat is still the thread's, told once."""
    bot, _ = fakes
    channel = porch(app_relay, "channel", "add", "alpha", "telegram", "--bot-token", BOT_TOKEN)
    path = f"/v1/channels/{channel['id']}/webhook"
    headers = telegram_headers(bot.webhook(BOT_TOKEN).secret_token)  # type: ignore[union-attr]
    async with app_relay.client() as client:
        started = await start_thread(client, "Hello from the site")
        auth = bearer(started["token"])
        link = await client.post(
            "/v1/thread/continue", json={"channel": channel["id"]}, headers=auth
        )
        start = telegram_update(7, 4242, f"/start {link.json()['code']}")
        assert (await client.post(path, json=start, headers=headers)).status_code == 200
        with app_relay.db() as db:  # as if the relay died before recording the update
            db.execute("DELETE FROM inbound WHERE channel = 'telegram'")
        assert (await client.post(path, json=start, headers=headers)).status_code == 200
        after = await client.post(path, json=telegram_update(8, 4242, "Me again"), headers=headers)
        assert after.status_code == 200
        history = (await client.get("/v1/thread", headers=auth)).json()["messages"]
    assert [m["author"] for m in history] == ["visitor", "system", "visitor"]
    assert history[-1]["body"] == "Me again"
    assert len(bot.wait_for_calls("sendMessage", 1)) == 1


async def test_channel_secrets_can_come_from_the_environment(
    app_relay: RunningRelay, fakes: Fakes
) -> None:
    """`porch channel add` reads each secret from PORCH_CHANNEL_<NAME> when its flag is
    not given (so it stays out of the process list and shell history); a flag wins."""
    bot, graph = fakes
    graph.add_page(PAGE_ID, PAGE_TOKEN)
    # Nothing given either way: refused, naming both ways, before the app is asked.
    missing = run_porch(app_relay, "channel", "add", "alpha", "telegram")
    assert missing.returncode != 0
    assert "--bot-token (or PORCH_CHANNEL_BOT_TOKEN)" in missing.stderr
    assert bot.calls() == []

    from_env = {"PORCH_CHANNEL_BOT_TOKEN": BOT_TOKEN}
    telegram = run_porch(app_relay, "channel", "add", "alpha", "telegram", env=from_env)
    assert telegram.returncode == 0, telegram.stderr
    assert BOT_TOKEN not in telegram.stdout
    webhook = bot.webhook(BOT_TOKEN)
    assert webhook is not None and webhook.url == json.loads(telegram.stdout)["webhook_url"]

    secrets = {
        "PORCH_CHANNEL_PAGE_TOKEN": PAGE_TOKEN,
        "PORCH_CHANNEL_APP_SECRET": "not-this-one",  # the flag below wins
        "PORCH_CHANNEL_VERIFY_TOKEN": VERIFY,
    }
    flags = ["--page-id", PAGE_ID, "--app-secret", APP_SECRET]
    added = run_porch(app_relay, "channel", "add", "alpha", "messenger", *flags, env=secrets)
    assert added.returncode == 0, added.stderr
    messenger = json.loads(added.stdout)
    assert PAGE_TOKEN not in added.stdout and VERIFY not in added.stdout
    path = f"/v1/channels/{messenger['id']}/webhook"
    async with app_relay.client(origin=None) as client:
        hello = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "7"}
        assert (await client.get(path, params=hello)).text == "7"  # the variable's
        raw, headers = meta_signed(APP_SECRET, messenger_message(PAGE_ID, PSID, "Hi", "m.1"))
        assert (await client.post(path, content=raw, headers=headers)).status_code == 200
        raw, headers = meta_signed("not-this-one", messenger_message(PAGE_ID, PSID, "?", "m.2"))
        assert (await client.post(path, content=raw, headers=headers)).status_code == 403
    [subscribed] = [c for c in graph.calls(SUBSCRIBE) if c.http_method == "POST"]
    assert subscribed.token == PAGE_TOKEN  # the variable's, checked with Meta


def run_porch(
    relay: RunningRelay, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`porch ARGS…` as tests.apps_support runs it (no PORCH_* of the test's own), with
    `env` added."""
    full = {
        **relay_env(relay),
        "PORCH_TELEGRAM_API_URL": relay.config.telegram_api_url,
        "PORCH_META_API_URL": relay.config.meta_api_url,
        "PORCH_PUBLIC_URL": relay.url,
        **(env or {}),
    }
    return subprocess.run([*porch_command(), *args], env=full, capture_output=True, text=True)
