"""Provider webhooks over real HTTP: each one posts a reply into its thread, refuses wrong,
stale and replayed credentials, malformed and oversized payloads without changing
anything, and does not exist unless configured."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from relay.channels.email.webhooks import MAX_REQUEST_BYTES, SIGNATURE_WINDOW, SeenTokens
from relay.errors import InvalidToken
from tests.mail.conftest import OWNER, REPLY_DOMAIN, issue_reply_tag, owner_reply
from tests.support import RunningRelay, bearer, start_thread

USER, PASSWORD = "porch", "correct horse battery staple"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
WORKER_SECRET = "edge-worker-secret-0123456789abcdef"
PROVIDERS = ("postmark", "mailgun", "sendgrid", "raw")
MakeRelay = Callable[..., RunningRelay]
Post = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def relay(make_relay: MakeRelay) -> RunningRelay:
    return make_relay(
        inbound_basic_auth=f"{USER}:{PASSWORD}",
        mailgun_signing_key=MAILGUN_KEY,
        inbound_secret=WORKER_SECRET,
    )


# -- what each provider sends ----------------------------------------------------------


def sign(key: str, data: str | bytes) -> str:
    message = data.encode() if isinstance(data, str) else data
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def now() -> str:
    return str(int(time.time()))


async def postmark(
    client: httpx.AsyncClient, raw: bytes, *, auth: Any = (USER, PASSWORD)
) -> httpx.Response:
    payload = {"From": OWNER, "Subject": "Re: hi", "TextBody": "…", "RawEmail": raw.decode()}
    return await client.post("/v1/inbound/postmark", json=payload, auth=auth)


async def mailgun(
    client: httpx.AsyncClient,
    raw: bytes,
    *,
    key: str = MAILGUN_KEY,
    timestamp: str | None = None,
    token: str | None = None,
    urlencoded: bool = False,
) -> httpx.Response:
    timestamp = timestamp or now()
    token = token or secrets.token_hex(25)
    fields = {
        "recipient": f"r+x@{REPLY_DOMAIN}",
        "sender": OWNER,
        "timestamp": timestamp,
        "token": token,
        "signature": sign(key, timestamp + token),
    }
    if urlencoded:
        return await client.post("/v1/inbound/mailgun", data={**fields, "body-mime": raw.decode()})
    return await client.post(
        "/v1/inbound/mailgun", data=fields, files={"body-mime": (None, raw, "text/plain")}
    )


async def sendgrid(
    client: httpx.AsyncClient, raw: bytes, *, auth: Any = (USER, PASSWORD)
) -> httpx.Response:
    fields = {"to": f"r+x@{REPLY_DOMAIN}", "from": OWNER, "charsets": '{"to":"UTF-8"}'}
    return await client.post(
        "/v1/inbound/sendgrid",
        data=fields,
        files={"email": (None, raw, "text/plain")},
        auth=auth,
    )


async def worker(
    client: httpx.AsyncClient,
    raw: bytes,
    *,
    secret: str = WORKER_SECRET,
    timestamp: str | None = None,
    signed: bytes | None = None,
) -> httpx.Response:
    timestamp = timestamp or now()
    signature = sign(secret, timestamp.encode() + b"." + (raw if signed is None else signed))
    headers = {
        "content-type": "message/rfc822",
        "x-porch-timestamp": timestamp,
        "x-porch-signature": signature,
    }
    return await client.post("/v1/inbound/raw", content=raw, headers=headers)


SENDERS: dict[str, Post] = {
    "postmark": postmark,
    "mailgun": mailgun,
    "sendgrid": sendgrid,
    "raw": worker,
}


async def conversation(relay: RunningRelay) -> tuple[dict[str, Any], str]:
    async with relay.client() as client:
        started = await start_thread(client, "Do you deliver?")
    return started, issue_reply_tag(relay, started["thread"]["id"], OWNER)


async def owner_messages(relay: RunningRelay, visitor_token: str) -> list[dict[str, Any]]:
    async with relay.client() as client:
        history = await client.get("/v1/thread", headers=bearer(visitor_token))
    return [m for m in history.json()["messages"] if m["author"] == "owner"]


def refused(response: httpx.Response, status: int, code: str, says: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert says.lower() in response.json()["message"].lower()


# -- delivered -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_reply_is_posted_into_its_thread(relay: RunningRelay, provider: str) -> None:
    started, tag = await conversation(relay)
    async with relay.client(origin=None) as client:
        response = await SENDERS[provider](client, owner_reply(tag, f"Yes, via {provider}."))
    assert response.status_code == 200, response.text
    assert response.json() == {"verdict": "posted"}
    [message] = await owner_messages(relay, started["token"])
    assert message["body"] == f"Yes, via {provider}." and message["via"] == "email"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_second_delivery_is_a_duplicate(relay: RunningRelay, provider: str) -> None:
    started, tag = await conversation(relay)
    reply = owner_reply(tag, "Only once, please.")
    async with relay.client(origin=None) as client:
        first = await SENDERS[provider](client, reply)
        second = await SENDERS[provider](client, reply)  # a provider's retry: fresh signature
    assert first.json() == {"verdict": "posted"}
    assert second.status_code == 200 and second.json() == {"verdict": "duplicate"}
    assert len(await owner_messages(relay, started["token"])) == 1


async def test_the_same_mail_through_two_providers_is_posted_once(relay: RunningRelay) -> None:
    started, tag = await conversation(relay)
    reply = owner_reply(tag, "Sent to two places.")
    async with relay.client(origin=None) as client:
        assert (await postmark(client, reply)).json() == {"verdict": "posted"}
        assert (await worker(client, reply)).json() == {"verdict": "duplicate"}
    assert len(await owner_messages(relay, started["token"])) == 1


async def test_mailgun_urlencoded_form_works_too(relay: RunningRelay) -> None:
    started, tag = await conversation(relay)
    async with relay.client(origin=None) as client:
        response = await mailgun(client, owner_reply(tag, "Urlencoded."), urlencoded=True)
    assert response.json() == {"verdict": "posted"}
    assert [m["body"] for m in await owner_messages(relay, started["token"])] == ["Urlencoded."]


async def test_pipeline_verdicts_other_than_posted_are_answered_too(relay: RunningRelay) -> None:
    started, tag = await conversation(relay)
    forged = owner_reply(tag, "Not the owner.", sender="mallory@evil.example")
    async with relay.client(origin=None) as client:
        response = await worker(client, forged)
    assert response.status_code == 200 and response.json() == {"verdict": "forged"}
    assert await owner_messages(relay, started["token"]) == []


# -- credentials -----------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["postmark", "sendgrid"])
@pytest.mark.parametrize(
    ("auth", "says"),
    [
        (None, "expected HTTP Basic credentials"),
        ((USER, "wrong password"), "user name or password is wrong"),
        (("someone", PASSWORD), "user name or password is wrong"),
        (httpx.BasicAuth(USER, PASSWORD + "x"), "user name or password is wrong"),
    ],
)
async def test_basic_auth_is_required(
    relay: RunningRelay, provider: str, auth: Any, says: str
) -> None:
    started, tag = await conversation(relay)
    before = relay.counts()
    async with relay.client(origin=None) as client:
        response = await SENDERS[provider](client, owner_reply(tag, "Let me in."), auth=auth)
    refused(response, 401, "invalid_token", says)
    assert response.headers["www-authenticate"].startswith("Basic realm=")
    assert relay.counts() == before


async def test_basic_auth_that_is_not_base64_is_refused(relay: RunningRelay) -> None:
    async with relay.client(origin=None) as client:
        response = await client.post(
            "/v1/inbound/postmark",
            json={"RawEmail": "x"},
            headers={"authorization": "Basic not*base64"},
        )
    refused(response, 401, "invalid_token", "expected base64")
    assert "www-authenticate" in response.headers


async def test_mailgun_signature_must_match(relay: RunningRelay) -> None:
    _, tag = await conversation(relay)
    before = relay.counts()
    async with relay.client(origin=None) as client:
        wrong_key = await mailgun(client, owner_reply(tag, "x"), key="key-someone-else")
        unsigned = await client.post(
            "/v1/inbound/mailgun", files={"body-mime": (None, owner_reply(tag, "x"))}
        )
    refused(wrong_key, 401, "invalid_token", "signature does not match")
    refused(unsigned, 401, "invalid_token", "expected Mailgun's 'timestamp', 'token'")
    assert relay.counts() == before


@pytest.mark.parametrize("offset", [-SIGNATURE_WINDOW - 5, SIGNATURE_WINDOW + 5])
async def test_stale_signatures_are_refused(relay: RunningRelay, offset: int) -> None:
    _, tag = await conversation(relay)
    before = relay.counts()
    stale = str(int(time.time()) + offset)
    async with relay.client(origin=None) as client:
        from_mailgun = await mailgun(client, owner_reply(tag, "old"), timestamp=stale)
        from_worker = await worker(client, owner_reply(tag, "old"), timestamp=stale)
    refused(from_mailgun, 401, "invalid_token", "stale")
    refused(from_worker, 401, "invalid_token", "stale")
    assert relay.counts() == before


async def test_replayed_mailgun_token_is_refused(relay: RunningRelay) -> None:
    started, tag = await conversation(relay)
    token, timestamp = secrets.token_hex(25), now()
    async with relay.client(origin=None) as client:
        first = await mailgun(client, owner_reply(tag, "One."), token=token, timestamp=timestamp)
        # Even with another message inside, the same signed token is not taken twice.
        replay = await mailgun(client, owner_reply(tag, "Two."), token=token, timestamp=timestamp)
    assert first.json() == {"verdict": "posted"}
    refused(replay, 401, "invalid_token", "used before")
    assert [m["body"] for m in await owner_messages(relay, started["token"])] == ["One."]


async def test_mailgun_token_of_a_refused_payload_can_be_retried(relay: RunningRelay) -> None:
    _, tag = await conversation(relay)
    token, timestamp = secrets.token_hex(25), now()
    fields = {
        "timestamp": timestamp,
        "token": token,
        "signature": sign(MAILGUN_KEY, timestamp + token),
    }
    async with relay.client(origin=None) as client:
        broken = await client.post("/v1/inbound/mailgun", data={**fields, "body-mime": ""})
        retry = await mailgun(
            client, owner_reply(tag, "Retried."), token=token, timestamp=timestamp
        )
    refused(broken, 400, "invalid_request", "'body-mime'")
    assert retry.json() == {"verdict": "posted"}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"secret": "another-secret"}, "signature does not match"),
        ({"signed": b"a different body"}, "signature does not match"),
        ({"timestamp": "yesterday"}, "expected a timestamp in unix seconds"),
    ],
)
async def test_worker_signature_must_match(
    relay: RunningRelay, change: dict[str, Any], says: str
) -> None:
    _, tag = await conversation(relay)
    before = relay.counts()
    async with relay.client(origin=None) as client:
        response = await worker(client, owner_reply(tag, "tampered"), **change)
    refused(response, 401, "invalid_token", says)
    assert relay.counts() == before


async def test_worker_without_signature_headers_is_refused(relay: RunningRelay) -> None:
    async with relay.client(origin=None) as client:
        response = await client.post(
            "/v1/inbound/raw", content=b"Subject: x\r\n\r\nx", headers={"x-porch-timestamp": now()}
        )
    refused(response, 401, "invalid_token", "X-Porch-Signature")


# -- malformed and oversized -----------------------------------------------------------


async def test_malformed_payloads_are_refused(relay: RunningRelay) -> None:
    before = relay.counts()
    auth = (USER, PASSWORD)
    timestamp, token = now(), secrets.token_hex(25)
    signed = {
        "timestamp": timestamp,
        "token": token,
        "signature": sign(MAILGUN_KEY, timestamp + token),
    }
    async with relay.client(origin=None) as client:
        post = client.post
        cases = {
            "postmark not JSON": await post(
                "/v1/inbound/postmark",
                content=b"{nope",
                auth=auth,
                headers={"content-type": "application/json"},
            ),
            "postmark without RawEmail": await post(
                "/v1/inbound/postmark", json={"TextBody": "hi"}, auth=auth
            ),
            "postmark RawEmail not text": await post(
                "/v1/inbound/postmark", json={"RawEmail": 42}, auth=auth
            ),
            "mailgun as JSON": await post("/v1/inbound/mailgun", json=signed),
            "mailgun without body-mime": await post("/v1/inbound/mailgun", data=signed),
            "mailgun broken multipart": await post(
                "/v1/inbound/mailgun",
                content=b"--b\r\nnonsense",
                headers={"content-type": "multipart/form-data; boundary=b"},
            ),
            "sendgrid without email": await post(
                "/v1/inbound/sendgrid", data={"to": "x"}, files={"x": (None, b"y")}, auth=auth
            ),
            "sendgrid as JSON": await post("/v1/inbound/sendgrid", json={"email": "x"}, auth=auth),
        }
        empty = await worker(client, b"")
        as_json = await client.post(
            "/v1/inbound/raw",
            content=b"{}",
            headers={
                "content-type": "application/json",
                "x-porch-timestamp": timestamp,
                "x-porch-signature": sign(WORKER_SECRET, timestamp + ".{}"),
            },
        )
    for case, response in cases.items():
        assert response.status_code == 400, f"{case}: {response.status_code} {response.text}"
        assert response.json()["error"] == "invalid_request", case
        assert response.json()["message"].startswith("expected"), case
    refused(empty, 400, "invalid_request", "got an empty body")
    refused(as_json, 400, "invalid_request", "expected Content-Type message/rfc822")
    assert relay.counts() == before


def declared_too_large(path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "host: 127.0.0.1",
        "connection: close",
        f"content-length: {MAX_REQUEST_BYTES + 1}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_declared_oversized_body_is_refused_before_it_is_sent(
    relay: RunningRelay, provider: str
) -> None:
    """Only the headers go out: the relay must answer from Content-Length alone."""
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    headers = {
        "postmark": {"content-type": "application/json", "authorization": basic},
        "mailgun": {"content-type": "multipart/form-data; boundary=b"},
        "sendgrid": {"content-type": "multipart/form-data; boundary=b", "authorization": basic},
        "raw": {
            "content-type": "message/rfc822",
            "x-porch-timestamp": now(),
            "x-porch-signature": "0" * 64,
        },
    }[provider]
    reader, writer = await asyncio.open_connection(relay.config.host, relay.config.port)
    try:
        writer.write(declared_too_large(f"/v1/inbound/{provider}", headers))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 413"), head


async def chunks(total: int, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_streamed_oversized_body_is_refused(relay: RunningRelay, provider: str) -> None:
    """No Content-Length (chunked): the relay counts as it reads."""
    before = relay.counts()
    headers = {
        "postmark": {"content-type": "application/json"},
        "mailgun": {"content-type": "multipart/form-data; boundary=b"},
        "sendgrid": {"content-type": "multipart/form-data; boundary=b"},
        "raw": {
            "content-type": "message/rfc822",
            "x-porch-timestamp": now(),
            "x-porch-signature": "0" * 64,
        },
    }[provider]
    async with relay.client(origin=None) as client:
        response = await client.post(
            f"/v1/inbound/{provider}",
            content=chunks(MAX_REQUEST_BYTES + 1),
            headers=headers,
            auth=(USER, PASSWORD),
        )
    refused(response, 413, "too_large", f"limit of {MAX_REQUEST_BYTES} bytes")
    assert relay.counts() == before


# -- not configured ----------------------------------------------------------------------


async def test_unconfigured_webhooks_do_not_exist(make_relay: MakeRelay) -> None:
    relay = make_relay()  # none of the inbound settings
    async with relay.client(origin=None) as client:
        unknown = await client.post("/v1/inbound/nonexistent", content=b"x")
        answers = {p: await SENDERS[p](client, b"Subject: x\r\n\r\nx") for p in PROVIDERS}
    assert unknown.status_code == 404
    for provider, response in answers.items():
        assert response.status_code == 404, provider
        assert response.json() == unknown.json() == {"error": "not_found", "message": "Not Found"}


async def test_one_configured_webhook_leaves_the_others_absent(make_relay: MakeRelay) -> None:
    relay = make_relay(inbound_secret=WORKER_SECRET)
    async with relay.client(origin=None) as client:
        configured = await worker(client, b"Subject: x\r\n\r\nno tag here\r\n")
        others = [await SENDERS[p](client, b"Subject: x\r\n\r\nx") for p in PROVIDERS[:3]]
    assert configured.status_code == 200 and configured.json() == {"verdict": "no_tag"}
    assert [r.status_code for r in others] == [404, 404, 404]


# -- the replay memory ------------------------------------------------------------------


def test_seen_tokens_expire_and_stay_bounded() -> None:
    clock = [1000.0]
    seen = SeenTokens(window=600, limit=3, clock=lambda: clock[0])
    seen.claim("a")
    with pytest.raises(InvalidToken, match="used before"):
        seen.claim("a")
    clock[0] += 601  # past the window: "a" is forgotten, and may come again
    seen.claim("a")
    for token in "bcdef":
        seen.claim(token)
    assert len(seen) == 3  # the oldest were dropped to stay within the limit
    with pytest.raises(InvalidToken, match="used before"):
        seen.claim("f")
