"""Whatever a client sends, the visitor API answers it without a server error: a
refusal is JSON {"error": code, "message": text} with no traceback in it, and a
refused request writes nothing. Hypothesis drives the visitor endpoints and the live
socket with arbitrary JSON, broken bytes, lone surrogates, huge strings and wrong
types; schemathesis drives every operation of the relay's own /v1/openapi.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from relay.config import Config
from relay.web.openapi import document
from tests.mail.conftest import OWNER, REPLY_DOMAIN
from tests.mail.smtp_sink import SinkServer
from tests.reliability.backends import Backend, launch_relay
from tests.support import ALPHA, ALPHA_ORIGIN, BETA, BETA_ORIGIN, RunningRelay, free_port

EXAMPLES = 100  # per hypothesis test: each is one request, a few milliseconds
API_EXAMPLES = 40  # per operation and generation mode of the OpenAPI document
FRAME_TIMEOUT = 5.0  # seconds for the relay's answer to one frame
IDENTITY_SECRET = "fuzz-identity-secret"  # so `identity` and /identify check a hash
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "', '.py", line')
# The live socket: refusals close with 4000 + HTTP status; 1009 is the WebSocket
# protocol's own "message too big" (uvicorn's limit, PORCH_WS_MAX_FRAME_BYTES).
CLOSE_TOO_BIG = 1009
# A failing example with a huge string makes hypothesis warn about the size of its
# repr while reporting it: the warning (an error here) would hide the failure itself.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)


# -- the relay under fuzz ---------------------------------------------------------------


@dataclass(frozen=True)
class Fuzzed:
    relay: RunningRelay
    backend: Backend
    http: httpx.Client
    visitor: str  # a visitor token of alpha, valid throughout

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a refused request must leave as it was: row counts, and the rows
        requests update in place (contact details, read cursors, epochs)."""
        visitors = self.backend.rows(
            "SELECT id, name, email, language, external_id, token_epoch FROM visitors ORDER BY id"
        )
        threads = self.backend.rows(
            "SELECT id, status, last_seq, owner_read_seq, visitor_read_seq FROM threads ORDER BY id"
        )
        return (
            self.backend.counts(),
            [tuple(row) for row in visitors],
            [tuple(row) for row in threads],
        )


@pytest.fixture(scope="module")
def mail_sink() -> Iterator[SinkServer]:
    server = SinkServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, mail_sink: SinkServer) -> Iterator[Fuzzed]:
    """One relay for the module (hypothesis runs many examples on it), with every
    optional endpoint switched on."""
    directory = tmp_path_factory.mktemp("fuzz")
    backend = Backend(directory)  # SQLite: the examples share one relay
    alpha = replace(ALPHA, settings={**ALPHA.settings, "identity_secret": IDENTITY_SECRET})
    relay = launch_relay(
        backend,
        sites=(alpha, BETA),
        smtp_url=mail_sink.url,
        reply_domain=REPLY_DOMAIN,
        # Emails wait an hour: the outbox worker writes nothing while examples compare
        # the store before and after (a resume link still goes at once).
        owner_notify_delay=3600,
        visitor_notify_delay=3600,
        inbound_secret="fuzz-inbound-secret",
        inbound_basic_auth="fuzz:secret",
        mailgun_signing_key="fuzz-mailgun-key",
    )
    try:
        with httpx.Client(base_url=relay.url, timeout=10) as http:
            started = http.post(
                "/v1/sites/alpha/threads",
                json={"body": "hello"},
                headers={"origin": ALPHA_ORIGIN},
            )
            assert started.status_code == 201, started.text
            yield Fuzzed(relay, backend, http, started.json()["token"])
    finally:
        relay.stop()


def header_bytes(headers: dict[str, str]) -> dict[str, bytes]:
    """Header values as raw bytes: any text as UTF-8 (surrogates too), less the control
    characters HTTP/1.1 cannot carry (the client refuses them before sending)."""
    return {
        name: bytes(
            b for b in value.encode("utf-8", "surrogatepass") if b >= 32 and b != 127
        ).strip()
        for name, value in headers.items()
    }


def assert_clean(response: httpx.Response) -> None:
    """No server error; a refusal is the relay's JSON error, with nothing internal."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code < 400:
        return
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) <= {"error", "message", "reason"}, body
    assert isinstance(body["error"], str) and isinstance(body["message"], str), body
    for marker in TRACEBACK_MARKERS:
        assert marker not in body["message"], body["message"]


# -- what clients may send ------------------------------------------------------------------

# Any character, lone UTF-16 surrogates included (JSON escapes them as \udXXX).
CHARACTERS = st.characters() | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT = st.text(CHARACTERS, max_size=40)
# Around the limits: 4,000 characters of body, 65,536 bytes of request, in characters
# of 1 to 4 UTF-8 bytes, combining ones and control characters.
HUGE = st.builds(
    lambda piece, times: piece * times,
    st.sampled_from(["x", "é", "e\u0301", "😀", " ", "\n", "\x00", "\r\n", "\u202e"]),
    st.sampled_from([3999, 4000, 4001, 16_000, 70_000]),
)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | TEXT | HUGE
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=8,
)
FIELD = TEXT | HUGE | JSON
BODY_FIELDS = {
    "body": FIELD,
    "client_id": FIELD | st.from_regex(r"\A[A-Za-z0-9_.:-]{1,70}\Z"),
    "name": FIELD,
    "email": FIELD | st.emails(),
    "page": FIELD | st.just("https://alpha.example/page?x=1"),
    "language": FIELD | st.sampled_from(["en", "fr"]),
    "identity": st.fixed_dictionaries({}, optional={"id": FIELD, "hash": FIELD}) | JSON,
    "id": FIELD,
    "hash": FIELD | st.from_regex(r"\A[0-9a-f]{64}\Z"),
    "seq": FIELD | st.integers(min_value=-5, max_value=2**64),
    "token": FIELD,
    "everywhere": FIELD,
}
OBJECT = st.fixed_dictionaries({}, optional=BODY_FIELDS) | JSON


def as_json(value: Any) -> bytes:
    """JSON as a client library writes it (ensure_ascii: surrogates as \\udXXX)."""
    return json.dumps(value).encode()


PAYLOAD = OBJECT.map(as_json) | st.binary(max_size=64) | st.just(b"")
ORIGIN = st.sampled_from([ALPHA_ORIGIN, BETA_ORIGIN, "https://evil.example", "null", None])


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    # The relay fixture is module-scoped on purpose: one relay serves every example.
    return settings(max_examples=examples, suppress_health_check=[HealthCheck.too_slow])


# -- the visitor API -------------------------------------------------------------------------

SITE = st.sampled_from(["alpha", "beta", "nope"]) | TEXT.filter(bool)


@fuzz_settings()
@given(site=SITE, payload=PAYLOAD, origin=ORIGIN)
def test_start_thread_refuses_cleanly(
    fuzzed: Fuzzed, site: str, payload: bytes, origin: str | None
) -> None:
    before = fuzzed.snapshot()
    headers = {"content-type": "application/json", **({"origin": origin} if origin else {})}
    path = f"/v1/sites/{quote(site, safe='', errors='surrogatepass')}/threads"
    response = fuzzed.http.post(path, content=payload, headers=headers)
    assert_clean(response)
    counts_before, counts_after = before[0], fuzzed.backend.counts()
    if response.status_code == 201:  # a new visitor, thread and first message
        for table in ("visitors", "threads", "messages"):
            assert counts_after[table] == counts_before[table] + 1, table
    elif response.status_code == 200:  # a retried start: what the first one made
        assert counts_after == counts_before
    else:
        assert fuzzed.snapshot() == before, f"refused with {response.status_code}, yet written"


VISITOR_POSTS = [
    "/v1/thread/messages",
    "/v1/thread/read",
    "/v1/thread/contact",
    "/v1/thread/resume-link",
    "/v1/sites/alpha/identify",
    "/v1/resume",
]


@pytest.mark.parametrize("path", VISITOR_POSTS)
@fuzz_settings()
@given(payload=PAYLOAD, origin=ORIGIN, token=st.sampled_from(["valid", "none"]) | TEXT)
def test_visitor_posts_refuse_cleanly(
    fuzzed: Fuzzed, path: str, payload: bytes, origin: str | None, token: str
) -> None:
    before = fuzzed.snapshot()
    headers = {"content-type": "application/json", **({"origin": origin} if origin else {})}
    if token != "none":
        headers["authorization"] = f"Bearer {fuzzed.visitor if token == 'valid' else token}"
    response = fuzzed.http.post(path, content=payload, headers=header_bytes(headers))
    assert_clean(response)
    if response.status_code >= 400:
        assert fuzzed.snapshot() == before, f"refused with {response.status_code}, yet written"
    elif path == "/v1/thread/messages" and response.status_code == 201:
        assert fuzzed.backend.counts()["messages"] == before[0]["messages"] + 1


@fuzz_settings()
@given(
    since=st.one_of(TEXT, st.integers().map(str), st.just("1e3")),
    extra=st.dictionaries(TEXT.filter(bool), TEXT, max_size=3),
)
def test_history_refuses_cleanly(fuzzed: Fuzzed, since: str, extra: dict[str, str]) -> None:
    before = fuzzed.snapshot()
    encoded = "&".join(
        f"{quote(key, errors='surrogatepass')}={quote(value, errors='surrogatepass')}"
        for key, value in {**extra, "since": since}.items()
    )
    response = fuzzed.http.get(
        f"/v1/thread?{encoded}", headers={"authorization": f"Bearer {fuzzed.visitor}"}
    )
    assert_clean(response)
    assert fuzzed.snapshot() == before  # reading writes nothing


# -- the live socket ---------------------------------------------------------------------------

FRAME = (
    OBJECT.map(lambda value: json.dumps(value))
    | st.fixed_dictionaries({"type": st.just("send")}, optional=BODY_FIELDS).map(json.dumps)
    | st.fixed_dictionaries(
        {"type": st.sampled_from(["read", "typing", "ping", "hello", "here"])},
        optional=BODY_FIELDS,
    ).map(json.dumps)
    | TEXT
    | st.binary(max_size=32)
)


def exchange(fuzzed: Fuzzed, hello: str | bytes, frame: str | bytes | None) -> list[Any]:
    """Open the live socket, say `hello`, then `frame` and a ping: the frames the relay
    sent until the pong, or the close code it ended with (last)."""
    received: list[Any] = []
    with connect(fuzzed.relay.ws_url, origin=ALPHA_ORIGIN, compression=None) as ws:  # type: ignore[arg-type]
        try:
            ws.send(hello)
            if frame is not None:  # after "ready": a refusal is then the frame's alone
                while not received or received[-1]["type"] != "ready":
                    received.append(json.loads(ws.recv(timeout=FRAME_TIMEOUT)))
                ws.send(frame)
            ws.send(json.dumps({"type": "ping"}))
            while True:
                received.append(json.loads(ws.recv(timeout=FRAME_TIMEOUT)))
                if received[-1]["type"] == "pong":
                    return received
        except (ConnectionClosed, OSError) as closed:
            code = getattr(closed, "rcvd", None) and closed.rcvd.code  # type: ignore[union-attr]
            if code is None:  # reset before its close frame came: see below
                assert oversized(hello) or oversized(frame), f"dropped without a close: {closed}"
                code = CLOSE_TOO_BIG
            received.append(code)
            return received


def oversized(frame: str | bytes | None) -> bool:
    """A frame over the relay's limit: uvicorn answers 1009 and closes the connection
    while the rest of the frame is still coming, so the kernel may reset it (unread
    data) before the close frame reaches the client."""
    size = len(frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame or b"")
    return size > Config.ws_max_frame_bytes


def assert_clean_frames(received: list[Any]) -> None:
    for frame in received:
        if isinstance(frame, int):  # the close code
            assert 4000 <= frame < 4500 or frame == CLOSE_TOO_BIG, f"closed with {frame}"
        elif frame["type"] == "error":
            assert isinstance(frame["error"], str) and isinstance(frame["message"], str), frame
            assert not any(marker in frame["message"] for marker in TRACEBACK_MARKERS), frame


@fuzz_settings()
@given(frame=FRAME)
def test_live_frames_refuse_cleanly(fuzzed: Fuzzed, frame: str | bytes) -> None:
    before = fuzzed.snapshot()
    # A cursor beyond the newest seq gets the thread again, then "ready".
    hello = json.dumps({"type": "hello", "token": fuzzed.visitor, "since": 2**62})
    received = exchange(fuzzed, hello, frame)
    assert_clean_frames(received)
    types = [item["type"] for item in received if isinstance(item, dict)]
    replayed = types.index("ready") if "ready" in types else len(types)
    assert set(types[:replayed]) <= {"message"} and "ready" in types, received  # hello was fine
    types = types[replayed:]
    refused = isinstance(received[-1], int) or "error" in types
    if refused:
        assert fuzzed.snapshot() == before, f"refused ({received[-1]}), yet written"
    if "ack" in types:
        assert fuzzed.backend.counts()["messages"] in (
            before[0]["messages"],  # a client_id already stored: the same message
            before[0]["messages"] + 1,
        )


@fuzz_settings()
@given(
    hello=st.fixed_dictionaries(
        {"type": st.just("hello")}, optional={"token": FIELD, "since": FIELD | st.integers()}
    ).map(json.dumps)
    | FRAME
)
def test_live_hello_refuses_cleanly(fuzzed: Fuzzed, hello: str | bytes) -> None:
    before = fuzzed.snapshot()
    received = exchange(fuzzed, hello, None)
    assert_clean_frames(received)
    assert isinstance(received[-1], int), f"a made-up hello was let in: {received}"
    assert fuzzed.snapshot() == before


# -- every operation of the OpenAPI document --------------------------------------------------


def raw_mime(context: Any, value: Any) -> bytes:
    """Bodies for message/rfc822 (the raw-MIME endpoint), which schemathesis has no
    serializer for: bytes as generated, text as UTF-8, anything else as JSON."""
    data = getattr(value, "data", value)  # its Binary wraps generated bytes
    if isinstance(data, bytes):
        return data
    text = data if isinstance(data, str) else json.dumps(data)
    return text.encode("utf-8", "surrogatepass")


schemathesis.serializer("message/rfc822")(raw_mime)

OPERATIONS = [
    (path, method, operation)
    for path, methods in document()["paths"].items()
    for method, operation in methods.items()
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def negatable(operation: dict[str, Any]) -> bool:
    """Whether schemathesis can make invalid input for it: a JSON body, or a parameter
    narrower than any string (a path segment of any text is never invalid)."""
    body = operation.get("requestBody", {}).get("content", {})
    typed = [p for p in operation.get("parameters", []) if p["schema"].get("type") != "string"]
    return "application/json" in body or bool(typed)


@pytest.fixture(scope="module")
def api(fuzzed: Fuzzed) -> Any:
    """The document the relay serves, loaded from its URL as any client would."""
    return schemathesis.openapi.from_url(fuzzed.relay.url + "/v1/openapi.json")


# Operations that end the caller's token or session: each example needs a new one.
ENDS_CREDENTIALS = {
    ("/v1/thread", "delete"),
    ("/v1/thread/sign-out", "post"),
    ("/inbox/api/logout", "post"),
}


def credentials(fuzzed: Fuzzed, operation: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and cookies of a caller allowed in, per the operation's security: a new
    visitor, the owner, or a new inbox session."""
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    if "visitor" in schemes:
        started = fuzzed.http.post("/v1/sites/alpha/threads", json={"body": "fuzz"})
        return {"authorization": f"Bearer {started.json()['token']}"}, {}
    if "owner" in schemes:
        return {"authorization": f"Bearer {fuzzed.relay.owner_token()}"}, {}
    if "inboxSession" in schemes:
        opened = fuzzed.http.post(
            "/inbox/api/session",
            json={"token": fuzzed.relay.tokens.login_token(OWNER)},
            headers={"origin": fuzzed.relay.url},
        )
        assert opened.status_code == 200, opened.text
        headers = {"x-csrf-token": opened.json()["csrf"], "origin": fuzzed.relay.url}
        return headers, dict(opened.cookies)
    return {}, {}


def test_the_served_document_is_the_one_tested(api: Any) -> None:
    served = {(result.ok().path, result.ok().method) for result in api.get_all_operations()}
    assert served == {(path, method) for path, method, _ in OPERATIONS}


# Schemathesis' negative mutations draw from the global `random` module inside its
# strategies (schemathesis/specs/openapi/negative/), which hypothesis deprecates.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
@pytest.mark.parametrize(
    ("path", "method", "mode"),
    [
        (path, method, mode)
        for path, method, operation in OPERATIONS
        for mode in GenerationMode
        if mode is GenerationMode.POSITIVE or negatable(operation)
    ],
)
def test_every_operation_holds_to_its_document(
    fuzzed: Fuzzed, api: Any, path: str, method: str, mode: GenerationMode
) -> None:
    operation = api[path][method]
    described = document()["paths"][path][method]
    caller = credentials(fuzzed, described)

    @fuzz_settings(API_EXAMPLES)
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        fresh = (path, method) in ENDS_CREDENTIALS
        headers, cookies = credentials(fuzzed, described) if fresh else caller
        case.call_and_validate(
            base_url=fuzzed.relay.url,
            session=session,
            headers=headers,
            cookies=cookies,
            checks=CHECKS,
        )

    with requests.Session() as session:  # one connection, kept alive
        call()
