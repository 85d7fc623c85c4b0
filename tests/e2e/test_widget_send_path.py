"""One send path (issue 20): with its live socket ready the widget sends text over it and
takes the ack as "stored"; without one, over HTTP; a socket lost before the ack leaves the
message queued, and it goes again (same client_id) and is stored once."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, Request, WebSocket, WebSocketRoute, expect

from tests.e2e.conftest import Stage, running_stage
from tests.e2e.test_widget import PUSH_CHECK, STORED_VISITOR, only_thread, open_and_send

PENDING = "porch-chat .message.pending"
SEND_OVER_HTTP = re.compile(r"/v1/thread/messages$")
LIVE = re.compile(r"/v1/live$")
CLOSE_RATE_LIMITED = 4429


@dataclass
class Socket:
    """One live socket as the page saw it: the frames it sent and received."""

    ws: WebSocket
    sent: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    def ready(self) -> bool:
        return any(frame["type"] == "ready" for frame in self.received)

    def sends(self, body: str) -> list[dict[str, Any]]:
        return [f for f in self.sent if f["type"] == "send" and f["body"] == body]

    def answers(self, kind: str, client_id: str) -> list[dict[str, Any]]:
        """Frames of `kind` about the message `client_id` (acks, and message frames)."""
        about = [f.get("message", {}).get("client_id") for f in self.received]
        return [
            f
            for f, cid in zip(self.received, about, strict=True)
            if f["type"] == kind and cid == client_id
        ]

    def wait_for(self, kind: str, body: str | None = None) -> None:
        """Until this socket has received a frame of `kind` (a message: with `body`)."""

        def matches(frame: dict[str, Any]) -> bool:
            return frame["type"] == kind and (body is None or frame["message"]["body"] == body)

        # Events reach our handlers only while Playwright waits: nothing can slip in
        # between this check and the wait.
        if not any(matches(f) for f in self.received):
            self.ws.wait_for_event("framereceived", lambda payload: matches(json.loads(payload)))


class Wire:
    """What a page sends and receives: its live sockets' frames, its message POSTs."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.sockets: list[Socket] = []
        self.posts: list[Request] = []
        page.on("websocket", self._opened)
        page.on("request", self._request)

    def _opened(self, ws: WebSocket) -> None:
        socket = Socket(ws)
        self.sockets.append(socket)
        ws.on("framesent", lambda payload: socket.sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: socket.received.append(json.loads(payload)))

    def _request(self, request: Request) -> None:
        if request.method == "POST" and SEND_OVER_HTTP.search(request.url):
            self.posts.append(request)

    def ready(self) -> Socket:
        """The page's newest socket, once the relay said "ready" on it."""
        if not self.sockets:
            self.page.wait_for_event("websocket")
        socket = self.sockets[-1]
        socket.wait_for("ready")
        return socket

    def posted(self, body: str) -> list[Request]:
        return [r for r in self.posts if json.loads(r.post_data or "{}").get("body") == body]


def started(page: Page, wire: Wire) -> Socket:
    """A conversation started (over HTTP: there is no socket yet) and its socket ready."""
    with page.expect_response(PUSH_CHECK):  # not in flight when a test cuts the network
        open_and_send(page, "first, to start")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    return wire.ready()


def test_with_the_socket_ready_text_goes_over_it_and_the_ack_is_its_only_answer(
    stage: Stage, page: Page
) -> None:
    wire = Wire(page)
    page.goto(stage.url("/"))
    socket = started(page, wire)
    open_and_send(page, "over the socket")
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    expect(page.locator(PENDING)).to_have_count(0)
    [sent] = socket.sends("over the socket")
    [ack] = socket.answers("ack", sent["client_id"])
    assert ack["message"]["body"] == "over the socket" and ack["seq"] == ack["message"]["seq"]
    thread = only_thread(stage)
    stage.owner_reply(thread, "the reply")  # a copy would come before it, in seq order
    socket.wait_for("message", "the reply")
    assert socket.answers("message", sent["client_id"]) == []
    assert wire.posts == []  # not one message went over HTTP
    assert [m["body"] for m in stage.messages(thread)] == [
        "first, to start",
        "over the socket",
        "the reply",
    ]


def test_typed_offline_it_goes_once_when_back(
    stage: Stage, context: BrowserContext, page: Page
) -> None:
    wire = Wire(page)
    page.goto(stage.url("/"))
    started(page, wire)
    context.set_offline(True)
    open_and_send(page, "typed offline")
    expect(page.locator(PENDING)).to_have_count(1)
    context.set_offline(False)
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    expect(page.locator(PENDING)).to_have_count(0)
    # Back online it goes at once, over HTTP (the new socket is not ready yet) or the
    # socket if it is: one way, once.
    over_socket = sum(len(s.sends("typed offline")) for s in wire.sockets)
    assert len(wire.posted("typed offline")) + over_socket == 1
    bodies = [m["body"] for m in stage.messages(only_thread(stage))]
    assert bodies == ["first, to start", "typed offline"]


def test_an_ack_lost_with_its_socket_is_stored_once_all_the_same(stage: Stage, page: Page) -> None:
    """The relay stores the message, then the socket dies before its ack arrives: the
    widget sends it again over HTTP with the same client_id, and the relay answers with
    the message it already has."""
    dropped: list[dict[str, Any]] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_relay(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame["type"] == "ack" and not dropped:
                dropped.append(frame)
                ws.close()  # the page's socket ends; the ack never reaches it
                server.close()
                return
            ws.send(message)

        server.on_message(from_relay)

    page.route_web_socket(LIVE, route)
    wire = Wire(page)
    page.goto(stage.url("/"))
    started(page, wire)
    with page.expect_response(SEND_OVER_HTTP) as again:
        open_and_send(page, "its ack is lost")
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    expect(page.locator(PENDING)).to_have_count(0)
    [lost] = dropped
    assert lost["message"]["body"] == "its ack is lost"
    # 200, not 201: the relay had it already, under the same client_id.
    assert again.value.status == 200
    assert again.value.json()["seq"] == lost["seq"]
    bodies = [m["body"] for m in stage.messages(only_thread(stage))]
    assert bodies == ["first, to start", "its ack is lost"]


def test_a_socket_the_relay_closes_before_storing_the_send(tmp_path: Path, page: Page) -> None:
    """Past PORCH_WS_FRAMES_PER_MINUTE the relay closes the socket (4429) without
    storing the frame: the message goes over HTTP, once."""
    # One frame a minute: the composer's typing frame, then the send is one too many.
    with running_stage(tmp_path, ws_frames_per_minute=1) as stage:
        wire = Wire(page)
        page.goto(stage.url("/"))
        socket = started(page, wire)
        with page.expect_response(SEND_OVER_HTTP) as posted:
            open_and_send(page, "one frame too many")
        expect(page.locator(STORED_VISITOR)).to_have_count(2)
        [sent] = socket.sends("one frame too many")
        assert socket.answers("ack", sent["client_id"]) == []
        assert posted.value.status == 201
        assert json.loads(posted.value.request.post_data or "{}")["client_id"] == sent["client_id"]
        bodies = [m["body"] for m in stage.messages(only_thread(stage))]
        assert bodies == ["first, to start", "one frame too many"]


def test_the_sending_tab_gets_its_ack_and_the_other_tab_the_message(
    stage: Stage, context: BrowserContext
) -> None:
    first, second = context.new_page(), context.new_page()
    first_wire, second_wire = Wire(first), Wire(second)
    first.goto(stage.url("/"))
    sender = started(first, first_wire)
    second.goto(stage.url("/"))  # a returning visitor: the UI loads and goes live at once
    other = second_wire.ready()
    open_and_send(first, "from the first tab")
    expect(second.locator(STORED_VISITOR)).to_have_count(2)
    expect(first.locator(STORED_VISITOR)).to_have_count(2)
    [sent] = sender.sends("from the first tab")
    stage.owner_reply(only_thread(stage), "to both tabs")
    for socket in (sender, other):  # after the reply, nothing of the message is still to come
        socket.wait_for("message", "to both tabs")
    assert len(sender.answers("ack", sent["client_id"])) == 1
    assert sender.answers("message", sent["client_id"]) == []
    assert len(other.answers("message", sent["client_id"])) == 1
    assert other.answers("ack", sent["client_id"]) == []
    assert first_wire.posts == second_wire.posts == []
