"""A real SMTP server (aiosmtpd) that keeps what it receives, for tests."""

from __future__ import annotations

import asyncio
import email
import email.policy
import queue
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

S250_OK = "250 OK"
S550_REJECTED = "550 5.1.1 Mailbox unavailable"


class Sink:
    """Collects mail; `refuse` makes it answer 550 to every message."""

    def __init__(self) -> None:
        self.received: queue.Queue[EmailMessage] = queue.Queue()
        self.refuse = False
        self.count = 0
        # `hold` given: each email is answered only once it is set (a slow server);
        # `arrived` says one is waiting.
        self.hold: threading.Event | None = None
        self.arrived = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.refuse:
            return S550_REJECTED
        if self.hold is not None:
            self.arrived.set()
            await asyncio.to_thread(self.hold.wait, 30)
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.count += 1
        self.received.put(message)
        return S250_OK

    async def next(self, timeout: float = 10.0) -> EmailMessage:
        """The next email received (waits in a thread: the server runs in its own)."""
        return await asyncio.to_thread(self.received.get, True, timeout)

    def empty(self) -> bool:
        return self.received.empty()


class SinkServer:
    def __init__(self, port: int, **options: Any) -> None:
        self.sink = Sink()
        self.port = port
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=port, **options)

    def start(self) -> SinkServer:
        self.controller.start()  # waits until it answers, or fails saying so
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"
