"""The live WebSocket, /v1/live.

Protocol (JSON text frames):
  client → {"type": "hello", "token": T, "since": N}        first frame, within HELLO_TIMEOUT
  relay  → {"type": "message", "message": {...}}           every message with seq > N, in order
  relay  → {"type": "ready", "seq": N[, "online"]}          replay done; live from here on
  relay  → {"type": "presence", "online": bool}             (visitors) an owner came or left
  client → {"type": "send", "body", "client_id"[, "attachments"][, "thread"]}
  relay  → {"type": "ack", "client_id", "seq", "thread", "message"}   in place of its copy
  client → {"type": "typing"[, "thread"]}, {"type": "read", "seq"[, "thread"]}, {"type": "ping"}
  relay  → {"type": "typing"|"read"|"pong"|"error", ...}
"thread" is for owner sockets, which watch every thread of their site.

No gaps, no duplicates: the socket subscribes to the bus *before* it reads the replay
from the store, then skips any bus message whose seq it already sent. A socket's own
message comes back to it once, as the ack, where its copy would have been in the
stream: a client that takes the ack's seq as its cursor skips nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from relay.conversations import Actor
from relay.errors import (
    InvalidRequest,
    InvalidToken,
    NotFound,
    PorchError,
    RateLimited,
)
from relay.inputs import (
    MAX_PAGE_MESSAGES,
    client_id,
    message_content,
    parse_json_object,
    seq_value,
)
from relay.models import (
    Author,
    Event,
    HeldChanged,
    Message,
    MessageAdded,
    PresenceChanged,
    SignedOut,
    StatusChanged,
    Thread,
    ThreadDeleted,
    Typing,
    Via,
    frame_json,
)
from relay.tokens import VisitorClaim
from relay.web.api import visitor_send_limits
from relay.web.origins import check_origin
from relay.web.services import Services, client_ip, services

log = logging.getLogger("porch.live")

HELLO_TIMEOUT = 10.0  # seconds a new socket may stay silent before it is closed
TYPING_INTERVAL = 2.0  # at most one typing event per socket per this many seconds
# Events a socket may have waiting before it counts as too slow. One visitor thread
# sees a few events a minute; an owner socket sees the whole site: 1,000 is minutes
# of backlog either way.
QUEUE_LIMIT = 1000
CLOSE_TOO_SLOW = 1013  # "try again later": the client resumes from its last seq
CLOSE_REASON_BYTES = 123  # RFC 6455 5.5: control frame payload 125 bytes, 2 for the code
# Seconds a send waits for the bus to bring its message (at once on SQLite, one NOTIFY
# round trip on PostgreSQL), so that its ack goes in its place; past it (a listener that
# is down) the socket is closed 1013 and the client resumes, in order, from its last seq.
ACK_WAIT = 10.0


@dataclass(frozen=True)
class QueuedAck:
    """An ack that waits its turn in a socket's stream; `placed` is set as it is written."""

    text: str
    placed: asyncio.Future[None]


@functools.cache
def _actor(role: Author, via: Via) -> Actor:
    return Actor(role, via)  # one each, shared by every socket


class Together:
    """Context managers held together (an ExitStack without its buffer): what an idle
    socket holds for its whole life stays a few plain objects."""

    __slots__ = ("_parts",)

    def __init__(self, *parts: AbstractContextManager[Any]) -> None:
        self._parts = parts

    def __enter__(self) -> None:
        for n, part in enumerate(self._parts):
            try:
                part.__enter__()
            except BaseException:
                for entered in reversed(self._parts[:n]):
                    entered.__exit__(None, None, None)
                raise

    def __exit__(self, *exc: object) -> None:
        for part in reversed(self._parts):
            part.__exit__(None, None, None)


class Session:
    """One authenticated socket: a visitor on their thread, or an owner on their site."""

    __slots__ = (
        "ws",
        "s",
        "role",
        "actor",
        "sites",
        "thread",
        "last_seq",
        "_send_lock",
        "_typing_at",
        "_frames",
        "_window",
        "_outbox",
        "_flusher",
        "_live",
        "_too_slow",
        "epoch",
        "recheck",
        "here",
        "_acking",
        "_acking_seq",
    )

    def __init__(
        self,
        ws: WebSocket,
        s: Services,
        role: Author,
        sites: tuple[str, ...],
        thread: Thread | None,
        since: int,
        epoch: int = 0,
        *,
        via: Via,
    ) -> None:
        self.ws = ws
        self.epoch = epoch  # the visitor token's: a newer one on the bus signs this out
        self.s = s
        self.role = role
        self.actor = _actor(role, via)  # who writes from this socket, by which channel
        self.sites = sites  # the visitor's site; every site of an owner
        self.thread = thread  # the visitor's thread; None for an owner
        self.last_seq = since
        self._send_lock = asyncio.Lock()
        self._typing_at = 0.0
        self._frames = 0
        self._window = time.monotonic()
        # Events from the bus wait here. While the socket is idle neither this buffer nor
        # a task exists for it: both are made when an event comes, dropped once it is sent.
        self._outbox: deque[Event | PresenceChanged | QueuedAck] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._live = False  # events are held back until the replay is done
        self._too_slow = False
        # Inbox sockets: re-check the session before each frame (revoked elsewhere, sites
        # changed), and say whether the owner is looking ({"type": "here"}).
        self.recheck: Callable[[], Awaitable[None]] | None = None
        self.here: Callable[[bool], None] | None = None
        # This socket's sends whose message the bus has not brought yet, by (thread,
        # client_id): set when it does, as the ack goes out in the message's place.
        # (Made on the first send: an idle socket holds neither.)
        self._acking: dict[tuple[str, str], asyncio.Future[None]] | None = None
        # The same by seq, once the post returned it (a send without a client_id too).
        self._acking_seq: dict[int, asyncio.Future[None]] | None = None

    def subscribe(self) -> Together:
        """Watch the bus (a visitor: their thread and whether the owner is in; an owner:
        every site of theirs) for as long as this is held."""
        if self.thread is not None:
            return Together(
                self.s.bus.watch_thread(self.thread.id, self.deliver),
                self.s.presence.listen(self.sites[0], self._presence),
            )
        return Together(*(self.s.bus.watch_site(site, self.deliver) for site in self.sites))

    def _presence(self, online: bool) -> None:
        self.deliver(PresenceChanged(online))

    def end(self, code: int, reason: str) -> None:
        """Close from outside (a revoked session): stop sending, close now."""
        self._too_slow = True
        asyncio.ensure_future(close(self.ws, code, reason))

    def deliver(self, event: Event | PresenceChanged | QueuedAck) -> None:
        """The bus watcher: buffer, and make sure something is sending."""
        if self._outbox is None:
            self._outbox = deque()
        self._outbox.append(event)
        if len(self._outbox) > QUEUE_LIMIT and not self._too_slow:
            # The reader stopped reading (a send is stuck on its full TCP window): drop it
            # now rather than buffer without bound; it resumes from its last seq.
            self._too_slow = True
            if self._flusher is not None:
                self._flusher.cancel()
            self._flusher = asyncio.ensure_future(
                close(self.ws, CLOSE_TOO_SLOW, "too far behind: reconnect with since")
            )
            return
        if self._too_slow:
            return
        if self._live and self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush())

    def go_live(self) -> None:
        self._live = True
        if self._outbox and self._flusher is None and not self._too_slow:
            self._flusher = asyncio.ensure_future(self._flush())

    def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()

    async def _flush(self) -> None:
        try:
            while self._outbox and not self._too_slow:
                text = self._text_for(self._outbox.popleft())
                if text is not None:
                    await self.send_text(text)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the client left; the receive loop ends the session
        finally:
            self._flusher = None
            if not self._outbox:
                self._outbox = None

    async def send(self, frame: dict[str, Any]) -> None:
        await self.send_text(frame_json(frame))

    async def send_text(self, text: str) -> None:
        async with self._send_lock:
            await self.ws.send_text(text)

    async def check_cursor(self) -> None:
        """Before subscribing: a cursor from the future (a client's storage went wrong)
        would take every message for one already sent. A visitor gets their thread again
        (the client de-duplicates by seq), an owner the newest seq read now, so what
        commits later comes by the replay or the bus; `ready` names the real seq."""
        newest = self.thread.last_seq if self.thread else await self.s.store.last_seq()
        if self.last_seq > newest:
            self.last_seq = 0 if self.thread is not None else newest

    async def replay(self) -> None:
        while True:
            if self.thread is not None:
                page = await self.s.store.thread_messages(
                    self.thread.id, self.last_seq, MAX_PAGE_MESSAGES
                )
            else:
                page = await self.s.store.site_messages(
                    self.sites, self.last_seq, MAX_PAGE_MESSAGES
                )
            for message in page:
                frame = {"type": "message", "message": message.to_json(self.role, self.s.link)}
                await self.send(frame)
                self.last_seq = message.seq
            if len(page) < MAX_PAGE_MESSAGES:
                return

    def _text_for(self, event: Event | PresenceChanged | QueuedAck) -> str | None:
        if isinstance(event, QueuedAck):  # behind what the stream had to send first
            if not event.placed.done():
                event.placed.set_result(None)
            return event.text
        if isinstance(event, StatusChanged | HeldChanged) and self.role is Author.VISITOR:
            return None  # the owner's filing and moderation, not the visitor's business
        if isinstance(event, ThreadDeleted) and self.role is Author.VISITOR:
            self._too_slow = True
            asyncio.ensure_future(close(self.ws, 4401, "this conversation was deleted"))
            return None
        if isinstance(event, SignedOut):
            if self.role is Author.VISITOR and event.epoch > self.epoch:
                self._too_slow = True  # stop sending; the socket closes now
                asyncio.ensure_future(close(self.ws, 4401, "signed out everywhere"))
            return None
        if isinstance(event, MessageAdded):
            message = event.message
            if message.seq <= self.last_seq:
                return None  # already sent in the replay
            self.last_seq = message.seq
            placed = self._acking_seq.pop(message.seq, None) if self._acking_seq else None
            own = message.author is self.role and message.client_id is not None
            if placed is None and self._acking and own:
                placed = self._acking.pop((message.thread, str(message.client_id)), None)
            if placed is not None and not placed.done():
                placed.set_result(None)
                return self._ack(message)  # this socket's own: the ack, not a copy
        elif isinstance(event, Typing) and event.author is self.role:
            return None  # one's own typing, from another tab or this one
        return event.frame_for(self.role, self.s.link)

    async def receive(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            self._count_frame()
            if self.recheck is not None:
                await self.recheck()
            text = message.get("text")
            if text is None:
                raise InvalidRequest("expected text frames carrying JSON, got binary")
            frame = parse_json_object(text)
            kind = frame.get("type")
            if kind == "send":
                await self._on_send(frame)
            elif kind == "typing":
                await self._on_typing(frame)
            elif kind == "read":
                thread = await self._target(frame)
                await self.s.conversations.mark_read(
                    thread.id, self.role, seq_value(frame.get("seq"), "seq")
                )
            elif kind == "ping":
                await self.send({"type": "pong"})
            elif kind == "here" and self.here is not None:
                self.here(frame.get("here") is True)
            else:
                raise InvalidRequest(
                    f"unknown frame type {kind!r}; expected send, typing, read or ping"
                )

    def _count_frame(self) -> None:
        now = time.monotonic()
        if now - self._window >= 60:
            self._window, self._frames = now, 0
        self._frames += 1
        # Far above a person typing (typing events are throttled client-side too), far
        # below a flood: PORCH_WS_FRAMES_PER_MINUTE, 300 by default.
        most = self.s.config.ws_frames_per_minute
        if self._frames > most:
            raise RateLimited(
                f"more than {most} frames in a minute",
                retry_after=max(1, int(60 - (now - self._window))),
            )

    async def _on_send(self, frame: dict[str, Any]) -> None:
        cid = client_id(frame)
        thread = await self._target(frame)
        try:
            body, attachments = message_content(frame, self.s.config.max_body_chars)
        except PorchError as error:  # this message is refused, the socket is fine
            await self._refuse(cid, error)
            return
        if self.role is Author.VISITOR:
            visitor_send_limits(self.s, thread, client_ip(self.ws))
        # Marked before the post: the bus may bring the message before it returns.
        key = (thread.id, cid) if cid is not None else None
        placed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if key is not None:
            if self._acking is None:
                self._acking = {}
            self._acking[key] = placed
        try:
            message, _ = await self.s.conversations.post(
                thread.id, self.actor, body, cid, attachments, site=thread.site
            )
        except PorchError as error:
            if error.status >= 500 or isinstance(error, RateLimited):
                raise  # the relay's trouble, or too fast: the socket closes as before
            await self._refuse(cid, error)  # an attachment not theirs, taken, too large
            return
        finally:
            if key is not None and self._acking and self._acking.get(key) is placed:
                del self._acking[key]
        await self._acknowledge(message, placed)

    async def _acknowledge(self, message: Message, placed: asyncio.Future[None]) -> None:
        """The ack goes in the stream, never ahead of it: a client resumes from the ack's
        seq, so every message before it must have been sent first."""
        if not placed.done():
            if message.seq <= self.last_seq:
                # The stream passed it already (as a copy: a retry, a send without a
                # client_id): the ack queues behind whatever the stream still has to send.
                self.deliver(QueuedAck(self._ack(message), placed))
            else:  # still to come: the flusher writes the ack in its place
                if self._acking_seq is None:
                    self._acking_seq = {}
                self._acking_seq[message.seq] = placed
            try:
                await asyncio.wait_for(asyncio.shield(placed), ACK_WAIT)
            except TimeoutError:
                # The stream is stuck (a reader that stopped reading, a PostgreSQL listener
                # reconnecting): rather than an ack that would skip what is still on its
                # way, the client resumes, in order, from its last seq.
                if self._acking_seq:
                    self._acking_seq.pop(message.seq, None)
                self.end(CLOSE_TOO_SLOW, "the stream is late: reconnect with since")
                return
        # The flusher takes the lock as it writes the ack: once we have the lock, the ack
        # is out, before this socket's next frame is read.
        async with self._send_lock:
            return

    def _ack(self, message: Message) -> str:
        """The sender's answer: its message as stored, seen as this socket's role sees it."""
        return frame_json(
            {
                "type": "ack",
                "client_id": message.client_id,
                "seq": message.seq,
                "thread": message.thread,
                "message": message.to_json(self.role, self.s.link),
            }
        )

    async def _refuse(self, cid: str | None, error: PorchError) -> None:
        frame = {"type": "error", "client_id": cid, "error": error.code, "message": error.message}
        if error.reason:  # as HTTP gives it: a finer code to word the refusal
            frame["reason"] = error.reason
        await self.send(frame)

    async def _on_typing(self, frame: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._typing_at < TYPING_INTERVAL:
            return
        self._typing_at = now
        thread = await self._target(frame)
        event = Typing(thread.site, thread.id, self.role)
        self.s.bus.publish(event)
        await self.s.store.share_typing(event)

    async def _target(self, frame: dict[str, Any]) -> Thread:
        """The thread a frame is about: the visitor's own, or the one an owner names."""
        if self.thread is not None:
            return self.thread
        thread_id = frame.get("thread")
        if not isinstance(thread_id, str):
            raise InvalidRequest("an owner frame needs 'thread'")
        thread = await self.s.store.get_thread(thread_id)
        if thread is None or thread.site not in self.sites:
            raise NotFound(f"no thread {thread_id!r} on this site")
        return thread


def live(ws: WebSocket) -> Awaitable[None]:
    """The widget's socket (a visitor token), or an owner API client's (an owner token).
    Not a coroutine itself: an idle socket's task holds serve's frame, not one more."""
    s = services(ws)
    return serve(ws, lambda: _hello(ws, s))


async def serve(
    ws: WebSocket,
    opening: Callable[[], Awaitable[Session]],
    hold: Callable[[Session], AbstractContextManager[Any]] | None = None,
) -> None:
    """Run an accepted socket: authenticate (`opening` reads the hello), replay, then
    live until it ends. `hold`: what to hold while it is live (an owner's presence)."""
    try:
        session = await opening()
        held = hold(session) if hold is not None else contextlib.nullcontext()
        await session.check_cursor()
        with session.subscribe(), held:
            try:
                await session.replay()
                ready: dict[str, Any] = {"type": "ready", "seq": session.last_seq}
                if session.role is Author.VISITOR:  # is anyone at the inbox right now?
                    ready["online"] = session.s.presence.online(session.sites[0])
                await session.send(ready)
                session.go_live()
                await session.receive()
            finally:
                session.stop()
    except PorchError as error:
        await close(ws, error.close_code, error.message)
    except (WebSocketDisconnect, OSError):  # the client left
        pass
    except RuntimeError:  # the server closed it meanwhile (a frame over the size limit)
        pass
    else:
        await close(ws, 1000, "")


async def hello_frame(ws: WebSocket) -> dict[str, Any]:
    """The first frame, which must be a hello."""
    try:
        message = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT)
    except TimeoutError:
        raise InvalidRequest(f"expected a hello frame within {HELLO_TIMEOUT:g} s") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    frame = parse_json_object(message.get("text") or "")
    if frame.get("type") != "hello":
        raise InvalidRequest(f"expected a hello frame first, got type {frame.get('type')!r}")
    return frame


async def _hello(ws: WebSocket, s: Services) -> Session:
    await ws.accept()
    frame = await hello_frame(ws)
    token = frame.get("token")
    if not isinstance(token, str):
        raise InvalidToken("the hello frame needs a 'token'")
    since = seq_value(frame.get("since", 0), "since")
    claim = s.tokens.read(token)
    site = await s.store.get_site(claim.site)
    if site is None:
        raise InvalidToken("this token's site no longer exists")
    if isinstance(claim, VisitorClaim):
        thread = await s.store.visitor_thread(claim.visitor, claim.epoch)
        if thread is None or thread.site != site.id:
            raise InvalidToken("this token's conversation no longer exists")
        check_origin(ws.headers.get("origin"), site)
        return Session(
            ws, s, Author.VISITOR, (site.id,), thread, since, claim.epoch, via=Via.WIDGET
        )
    return Session(ws, s, Author.OWNER, (site.id,), None, since, via=Via.API)


async def close(ws: WebSocket, code: int, reason: str) -> None:
    encoded = reason.encode()[:CLOSE_REASON_BYTES].decode(errors="ignore")
    with contextlib.suppress(
        RuntimeError, OSError, WebSocketDisconnect
    ):  # the client may be gone already
        await ws.close(code, encoded)
