"""The provider fakes (tests/fakes) behave as the real APIs do where channel tests rely
on it: calls recorded, bad tokens and over-long texts refused, scripted failures that
happen then clear, no token in a URL, Meta's signature."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.graph_api import (
    MESSENGER_SEND,
    PHONE_NUMBER,
    RE_ENGAGEMENT,
    WHATSAPP_SEND,
    FakeGraphApi,
)
from tests.fakes.telegram_api import BOT_BLOCKED, FakeBotApi, too_many_requests
from tests.fakes.webhooks import (
    messenger_postback_referral,
    meta_signature,
    meta_signed,
    telegram_update,
    whatsapp_message,
    whatsapp_status,
)

BOT_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
PHONE_NUMBER_ID = "106540352242922"
WHATSAPP_TOKEN = "EAAG-whatsapp"
PAGE_ID = "1234567890"
PAGE_TOKEN = "EAAG-page"
HTTP_OK = 200
HTTP_BAD_REQUEST = 400
HTTP_UNAUTHORIZED = 401
CLIENT_TIMEOUT = 0.5  # seconds; a hung call must outlast it
WHATSAPP_TEXT = {
    "messaging_product": "whatsapp",
    "to": "+16505551234",
    "type": "text",
    "text": {"body": "Your bread is ready"},
}


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as api:
        api.add_bot(BOT_TOKEN, "alpha_bakery_bot")
        yield api


@pytest.fixture
def graph() -> Iterator[FakeGraphApi]:
    with FakeGraphApi() as api:
        api.add_whatsapp(PHONE_NUMBER_ID, WHATSAPP_TOKEN, "+1 555-078-3881")
        api.add_page(PAGE_ID, PAGE_TOKEN)
        yield api


def bot_client(api: FakeBotApi) -> httpx.Client:
    return httpx.Client(base_url=f"{api.url}/bot{BOT_TOKEN}", timeout=CLIENT_TIMEOUT)


def graph_client(api: FakeGraphApi, token: str | None = WHATSAPP_TOKEN) -> httpx.Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=api.url, headers=headers, timeout=CLIENT_TIMEOUT)


# -- Telegram -------------------------------------------------------------------------


def test_bot_api_records_a_sent_message(bot_api: FakeBotApi) -> None:
    with bot_client(bot_api) as client:
        answer = client.post("/sendMessage", json={"chat_id": 42, "text": "Hello"}).json()
    assert answer["ok"] is True
    assert answer["result"]["chat"]["id"] == 42 and answer["result"]["text"] == "Hello"
    (call,) = bot_api.wait_for_calls("sendMessage")
    assert call.params == {"chat_id": 42, "text": "Hello"} and call.status == HTTP_OK
    assert bot_api.sent(BOT_TOKEN) == [answer["result"]]


def test_bot_api_refuses_an_unknown_or_revoked_token(bot_api: FakeBotApi) -> None:
    unauthorized = {"ok": False, "error_code": 401, "description": "Unauthorized"}
    with httpx.Client(base_url=bot_api.url) as client:
        assert client.post("/bot1:nope/getMe").json() == unauthorized
        assert client.post(f"/bot{BOT_TOKEN}/getMe").json()["result"]["is_bot"] is True
        bot_api.revoke(BOT_TOKEN)
        response = client.post(f"/bot{BOT_TOKEN}/getMe")
    assert response.status_code == HTTP_UNAUTHORIZED and response.json() == unauthorized


def test_bot_api_refuses_a_text_too_long_or_empty(bot_api: FakeBotApi) -> None:
    with bot_client(bot_api) as client:
        too_long = client.post("/sendMessage", json={"chat_id": 42, "text": "a" * 4097})
        longest = client.post("/sendMessage", json={"chat_id": 42, "text": "a" * 4096})
        empty = client.post("/sendMessage", json={"chat_id": 42, "text": ""})
    assert too_long.status_code == HTTP_BAD_REQUEST
    assert too_long.json()["description"] == "Bad Request: message is too long"
    assert longest.status_code == HTTP_OK
    assert empty.json()["description"] == "Bad Request: message text is empty"


def test_bot_api_scripted_failures_happen_then_clear(bot_api: FakeBotApi) -> None:
    bot_api.fail_next("sendMessage", too_many_requests(7))
    bot_api.fail_next("sendMessage", BOT_BLOCKED)
    message = {"chat_id": 42, "text": "Hello"}
    with bot_client(bot_api) as client:
        answers = [client.post("/sendMessage", json=message) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [429, 403, HTTP_OK]
    assert answers[0].json()["parameters"] == {"retry_after": 7}
    assert answers[1].json()["description"] == "Forbidden: bot was blocked by the user"


def test_bot_api_hang_outlasts_the_client_timeout(bot_api: FakeBotApi) -> None:
    bot_api.hang_next("sendMessage")
    with bot_client(bot_api) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/sendMessage", json={"chat_id": 42, "text": "Hello"})
    assert bot_api.wait_for_calls("sendMessage")[0].status is None
    assert bot_api.sent(BOT_TOKEN) == []  # a hung call never takes effect


def test_bot_api_keeps_the_webhook_and_its_secret(bot_api: FakeBotApi) -> None:
    hook = {"url": "https://relay.example/telegram", "secret_token": "s3cret_-"}
    with bot_client(bot_api) as client:
        bad = client.post("/setWebhook", json={**hook, "secret_token": "not secret!"})
        client.post("/setWebhook", data={**hook, "allowed_updates": json.dumps(["message"])})
        info = client.get("/getWebhookInfo").json()["result"]
    assert bad.json()["ok"] is False
    assert info["url"] == hook["url"] and info["allowed_updates"] == ["message"]
    assert "secret_token" not in info
    stored = bot_api.webhook(BOT_TOKEN)
    assert stored is not None and stored.secret_token == "s3cret_-"


# -- Graph ----------------------------------------------------------------------------


def test_graph_records_a_whatsapp_send(graph: FakeGraphApi) -> None:
    with graph_client(graph) as client:
        answer = client.post(f"/{PHONE_NUMBER_ID}/messages", json=WHATSAPP_TEXT).json()
    assert answer["contacts"] == [{"input": "+16505551234", "wa_id": "16505551234"}]
    assert answer["messages"][0]["id"].startswith("wamid.")
    (call,) = graph.wait_for_calls(WHATSAPP_SEND)
    assert call.token == WHATSAPP_TOKEN and call.body == WHATSAPP_TEXT
    assert graph.sent == [call]


def test_graph_refuses_a_missing_wrong_or_revoked_token(graph: FakeGraphApi) -> None:
    path = f"/{PHONE_NUMBER_ID}/messages"
    with graph_client(graph, token=None) as client:
        missing = client.post(path, json=WHATSAPP_TEXT)
    with graph_client(graph, token="EAAG-wrong") as client:
        wrong = client.post(path, json=WHATSAPP_TEXT)
    graph.revoke(WHATSAPP_TOKEN)
    with graph_client(graph) as client:
        revoked = client.post(path, json=WHATSAPP_TEXT)
    for response in (missing, wrong, revoked):
        assert response.status_code == HTTP_UNAUTHORIZED
        assert response.json()["error"]["code"] == 190
        assert response.json()["error"]["type"] == "OAuthException"
    assert graph.sent == []


def test_graph_refuses_a_token_in_the_url(graph: FakeGraphApi) -> None:
    with graph_client(graph) as client:
        response = client.post(
            f"/{PHONE_NUMBER_ID}/messages",
            params={"access_token": WHATSAPP_TOKEN},
            json=WHATSAPP_TEXT,
        )
    assert response.status_code == HTTP_BAD_REQUEST
    assert "access_token in the URL" in response.json()["error"]["message"]
    assert graph.sent == []


def test_graph_refuses_another_accounts_token(graph: FakeGraphApi) -> None:
    with graph_client(graph, token=PAGE_TOKEN) as client:
        response = client.post(f"/{PHONE_NUMBER_ID}/messages", json=WHATSAPP_TEXT)
    assert response.status_code == HTTP_BAD_REQUEST
    assert response.json()["error"]["error_subcode"] == 33


def test_graph_refuses_texts_too_long(graph: FakeGraphApi) -> None:
    whatsapp = {**WHATSAPP_TEXT, "text": {"body": "a" * 4097}}
    messenger = {
        "recipient": {"id": "psid-1"},
        "messaging_type": "RESPONSE",
        "message": {"text": "a" * 2001},
    }
    with graph_client(graph) as client:
        too_long_whatsapp = client.post(f"/{PHONE_NUMBER_ID}/messages", json=whatsapp)
    with graph_client(graph, token=PAGE_TOKEN) as client:
        too_long_messenger = client.post(f"/{PAGE_ID}/messages", json=messenger)
        longest = client.post(
            f"/{PAGE_ID}/messages", json={**messenger, "message": {"text": "a" * 2000}}
        )
    assert too_long_whatsapp.status_code == too_long_messenger.status_code == HTTP_BAD_REQUEST
    assert too_long_whatsapp.json()["error"]["code"] == 100
    assert longest.json()["recipient_id"] == "psid-1"
    assert longest.json()["message_id"].startswith("m_")
    assert len(graph.wait_for_calls(MESSENGER_SEND, 2)) == 2


def test_graph_scripted_failure_happens_then_clears(graph: FakeGraphApi) -> None:
    graph.fail_next(WHATSAPP_SEND, RE_ENGAGEMENT)
    with graph_client(graph) as client:
        first = client.post(f"/{PHONE_NUMBER_ID}/messages", json=WHATSAPP_TEXT)
        second = client.post(f"/{PHONE_NUMBER_ID}/messages", json=WHATSAPP_TEXT)
    assert first.status_code == HTTP_BAD_REQUEST
    assert first.json()["error"]["code"] == 131047
    assert first.json()["error"]["message"] == "(#131047) Re-engagement message"
    assert second.status_code == HTTP_OK


def test_graph_hang_outlasts_the_client_timeout(graph: FakeGraphApi) -> None:
    graph.hang_next(WHATSAPP_SEND)
    with graph_client(graph) as client, pytest.raises(httpx.ReadTimeout):
        client.post(f"/{PHONE_NUMBER_ID}/messages", json=WHATSAPP_TEXT)
    assert graph.wait_for_calls(WHATSAPP_SEND)[0].status is None


def test_graph_tells_the_number_behind_a_phone_number_id(graph: FakeGraphApi) -> None:
    fields = {"fields": "display_phone_number,verified_name"}
    with graph_client(graph) as client:
        answer = client.get(f"/{PHONE_NUMBER_ID}", params=fields).json()
    assert answer == {
        "display_phone_number": "+1 555-078-3881",
        "verified_name": "Alpha Bakery",
        "id": PHONE_NUMBER_ID,
    }
    assert graph.calls(PHONE_NUMBER)[0].query == fields


async def test_waiting_from_an_async_test(graph: FakeGraphApi) -> None:
    headers = {"authorization": f"Bearer {WHATSAPP_TOKEN}"}
    async with httpx.AsyncClient(base_url=graph.url, headers=headers) as client:
        await client.post(f"/{PHONE_NUMBER_ID}/messages", json=WHATSAPP_TEXT)
    (call,) = await graph.await_calls(WHATSAPP_SEND)
    assert call.status == HTTP_OK


def test_waiting_for_calls_that_never_come_says_what_came(graph: FakeGraphApi) -> None:
    with pytest.raises(AssertionError, match="expected 1 'messenger.send'"):
        graph.wait_for_calls(MESSENGER_SEND, timeout=0.1)


# -- webhooks -------------------------------------------------------------------------


def test_meta_signature_is_the_hmac_of_the_raw_body() -> None:
    # The HMAC-SHA256 example of Wikipedia's HMAC article.
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert meta_signature("key", body) == f"sha256={expected}"
    raw, headers = meta_signed("key", {"object": "page"})
    assert headers["X-Hub-Signature-256"] == meta_signature("key", raw)


def test_webhook_payloads_have_the_documented_shape() -> None:
    update = telegram_update(7, 42, "Hi", username="ada")
    chat = {"id": 42, "first_name": "Ada", "type": "private", "username": "ada"}
    assert update["message"]["chat"] == chat and update["message"]["text"] == "Hi"
    inbound = whatsapp_message(PHONE_NUMBER_ID, "15550783881", "16505551234", "Hi", "wamid.X")
    value = inbound["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
    assert value["messages"][0]["text"] == {"body": "Hi"}
    failed = whatsapp_status(PHONE_NUMBER_ID, "wamid.X", "failed", "16505551234")
    status = failed["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status["errors"][0]["code"] == 131047
    postback = messenger_postback_referral(PAGE_ID, "psid-1", "thread-token")
    event = postback["entry"][0]["messaging"][0]
    assert event["postback"]["referral"]["ref"] == "thread-token"
