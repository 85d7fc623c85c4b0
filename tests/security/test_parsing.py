"""Input that breaks parsers rather than rules: JSON nested deeper than the parser's
stack, numbers longer than int() reads, constants that are not JSON. Every route that
reads JSON or a number answers 400 (a socket closes with 4400), logs no traceback and
changes nothing."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from tests.mail.conftest import mail_relay
from tests.mail.smtp_sink import SinkServer
from tests.mail.test_reply_loop import bounce, inbound_verdicts
from tests.support import RunningRelay, bearer, open_live, start_thread
from tests.test_inbox_api import Inbox, sign_in
from tests.test_live import closed_with

CLOSE_BAD_FRAME = 4400
DEEP = b"[" * 25_000 + b"]" * 25_000  # 50 KB, under every body limit
DEEP_INSIDE = b'{"body": "hi", "seq": ' + DEEP + b"}"
LONG_NUMBER = "9" * 5000  # int() refuses more than 4,300 digits
BAD_BODIES = {
    "deep array": DEEP,
    "deep value": DEEP_INSIDE,
    "NaN": b'{"body": "hi", "seq": NaN}',
    "Infinity": b'{"body": "hi", "seq": Infinity}',
    "5,000-digit number": b'{"body": "hi", "seq": ' + LONG_NUMBER.encode() + b"}",
}
INBOUND_AUTH = ("mail", "s3cret-for-webhooks")


@dataclass
class Callers:
    """Every kind of caller, signed in: a visitor, an owner API client, an inbox page."""

    relay: RunningRelay
    visitor: httpx.AsyncClient
    owner: httpx.AsyncClient
    page: Inbox
    webhook: httpx.AsyncClient  # a mail provider's, with its Basic credentials
    thread: str

    def json_routes(self) -> list[tuple[httpx.AsyncClient, str]]:
        t = self.thread
        return [
            (self.visitor, "/v1/sites/alpha/threads"),
            (self.visitor, "/v1/sites/alpha/identify"),
            (self.visitor, "/v1/thread/messages"),
            (self.visitor, "/v1/thread/read"),
            (self.visitor, "/v1/thread/contact"),
            (self.visitor, "/v1/thread/sign-out"),
            (self.visitor, "/v1/resume"),
            (self.owner, f"/v1/owner/threads/{t}/messages"),
            (self.owner, f"/v1/owner/threads/{t}/read"),
            (self.page.client, "/inbox/api/login"),
            (self.page.client, "/inbox/api/session"),
            (self.page.client, "/inbox/api/logout"),
            (self.page.client, "/inbox/api/me"),
            (self.page.client, f"/inbox/api/threads/{t}/messages"),
            (self.page.client, f"/inbox/api/threads/{t}/status"),
            (self.page.client, f"/inbox/api/threads/{t}/read"),
            (self.page.client, "/inbox/api/sites/alpha/settings"),
            (self.webhook, "/v1/inbound/postmark"),
        ]


@pytest_asyncio.fixture
async def callers(make_relay: Callable[..., RunningRelay]) -> AsyncIterator[Callers]:
    relay = make_relay(inbound_basic_auth=":".join(INBOUND_AUTH))
    async with relay.client() as client:
        started = await start_thread(client, "Hello")
    visitor = relay.client()
    visitor.headers.update(bearer(started["token"]))
    webhook = relay.client(origin=None)
    webhook.auth = httpx.BasicAuth(*INBOUND_AUTH)
    owner = relay.client(origin=None)
    owner.headers.update(bearer(relay.owner_token()))
    page = await sign_in(relay)
    page.client.headers["x-csrf-token"] = page.me["csrf"]
    yield Callers(relay, visitor, owner, page, webhook, started["thread"]["id"])
    for client in (visitor, owner, page.client, webhook):
        await client.aclose()


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    caplog.set_level(logging.ERROR)
    yield  # type: ignore[misc]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("kind", list(BAD_BODIES))
async def test_every_json_route_refuses_bodies_that_break_the_parser(
    callers: Callers, kind: str
) -> None:
    before = callers.relay.counts()
    for client, path in callers.json_routes():
        response = await client.post(
            path, content=BAD_BODIES[kind], headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, (path, response.status_code, response.text)
        assert response.json()["error"] == "invalid_request", path
    assert callers.relay.counts() == before


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    "value", [LONG_NUMBER, str(2**63), "-1", "²", "١٢", "12\n", " 12", "1e3", "0x10"]
)
async def test_every_number_a_client_sends_is_bounded(callers: Callers, value: str) -> None:
    t = callers.thread
    for client, path in [
        (callers.visitor, "/v1/thread"),
        (callers.owner, f"/v1/owner/threads/{t}"),
        (callers.page.client, f"/inbox/api/threads/{t}"),
    ]:
        response = await client.get(path, params={"since": value})
        assert response.status_code == 400, (path, value, response.text)
    for client, path in [
        (callers.visitor, "/v1/thread/read"),
        (callers.owner, f"/v1/owner/threads/{t}/read"),
        (callers.page.client, f"/inbox/api/threads/{t}/read"),
    ]:
        response = await client.post(path, json={"seq": value})
        assert response.status_code == 400, (path, value, response.text)


@pytest.mark.usefixtures("no_tracebacks")
async def test_a_request_declaring_an_absurd_length_is_refused(callers: Callers) -> None:
    """Content-Length is a number from the client too (written by hand: HTTP clients
    refuse to send these). uvicorn's parser may refuse it first; either way the answer
    is a 4xx or a closed connection, never a 500."""
    host, port = callers.relay.config.host, callers.relay.config.port
    token = callers.visitor.headers["authorization"]
    for length in (LONG_NUMBER[:1000], "١٢"):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"POST /v1/thread/messages HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {token}\r\nOrigin: https://alpha.example\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode()
            + b'{"body": "hi"}'
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        if status_line:
            status = int(status_line.split()[1])
            assert 400 <= status < 500, (length, status_line)


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    "frame",
    [
        DEEP.decode(),
        DEEP_INSIDE.decode(),
        '{"type": "read", "seq": "' + LONG_NUMBER + '"}',
        '{"type": "read", "seq": ' + LONG_NUMBER + "}",
        '{"type": "read", "seq": NaN}',
        '{"type": "read", "seq": ' + str(2**63) + "}",
    ],
    ids=["deep", "deep-inside", "long-string", "long-number", "nan", "over-63-bits"],
)
async def test_the_live_socket_closes_4400_on_frames_that_break_the_parser(
    callers: Callers, frame: str
) -> None:
    token = callers.visitor.headers["authorization"].removeprefix("Bearer ")
    live = await open_live(callers.relay, token)
    await live.ws.send(frame)
    assert (await closed_with(live))[0] == CLOSE_BAD_FRAME
    for hello in (frame, json.dumps({"type": "hello", "token": token, "since": LONG_NUMBER})):
        async with connect(
            callers.relay.ws_url, origin="https://alpha.example", compression=None
        ) as ws:  # type: ignore[arg-type]
            await ws.send(hello)
            assert (await closed_with(ws))[0] == CLOSE_BAD_FRAME


async def test_webhook_timestamps_are_bounded_too(make_relay: Callable[..., RunningRelay]) -> None:
    relay = make_relay(mailgun_signing_key="k" * 32, inbound_secret="s" * 32)
    async with relay.client(origin=None) as client:
        for value in (LONG_NUMBER[:4000], "١٢٣", "1e9"):
            mailgun = await client.post(
                "/v1/inbound/mailgun",
                data={"timestamp": value, "token": "t", "signature": "s", "body-mime": "x"},
            )
            raw = await client.post(
                "/v1/inbound/raw",
                content=b"From: a@b.c\r\n\r\nx",
                headers={"x-porch-timestamp": value.encode(), "x-porch-signature": "00"},
            )
            assert (mailgun.status_code, raw.status_code) == (401, 401), value


@pytest.mark.usefixtures("no_tracebacks")
async def test_a_bounce_quoting_a_huge_outbox_id_is_just_a_bounce(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    """Anyone can send a bounce: the number in the Message-ID it quotes is theirs."""
    relay = mail_relay(make_relay, sink)
    for n, digits in enumerate(("9" * 900, "9" * 19, "0" * 30 + "1")):  # lines stop at 1,000
        quoted = f"<outbox.{digits}.x@r.e>"
        await asyncio.to_thread(bounce, relay, "ann@example.com", quoted, n)
    assert inbound_verdicts(relay) == ["bounce"] * 3
    with relay.db() as db:
        assert db.execute("SELECT COUNT(*) FROM suppressed").fetchone()[0] == 0
