"""What the provider fakes share: a Starlette app served by uvicorn on a free loopback
port from a background thread (as tests/support.py runs the relay), a log of calls a test
can wait on without sleeping, and a script of failures and hangs for the next calls."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import uvicorn
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp

from tests.support import STARTUP_TIMEOUT, _Server, free_socket

CallT = TypeVar("CallT")
FailureT = TypeVar("FailureT")

WAIT_TIMEOUT = 10.0  # seconds; a relay that has not called the provider by then never will
HANG_SECONDS = 60.0  # longer than any client timeout the relay would choose
# A hang still open at stop is released first; this only bounds a handler that misbehaves.
SHUTDOWN_TIMEOUT = 5


@dataclass(frozen=True)
class Hang:
    """A scripted call answered only after `seconds` (or at stop), never taking effect."""

    seconds: float = HANG_SECONDS


@dataclass(frozen=True)
class Answer:
    """A scripted call answered normally: lets a failure hit a later call, not the next."""


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request, as the fake received it."""

    filename: str | None
    content_type: str | None
    content: bytes


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, Upload]]:
    """A form's text fields and its file parts (multipart/form-data or urlencoded)."""
    fields: dict[str, str] = {}
    files: dict[str, Upload] = {}
    async with request.form() as form:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                content_type = value.headers.get("content-type")
                files[name] = Upload(value.filename, content_type, await value.read())
            else:
                fields[name] = value
    return fields, files


class CallLog(Generic[CallT]):
    """Every call a fake received, in order; `name` files a call under its method."""

    def __init__(self, name: Callable[[CallT], str]) -> None:
        self._name = name
        self._calls: list[CallT] = []
        self._changed = threading.Condition()

    def add(self, call: CallT) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    def all(self, name: str | None = None) -> list[CallT]:
        with self._changed:
            return [call for call in self._calls if name is None or self._name(call) == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = WAIT_TIMEOUT) -> list[CallT]:
        """The first `count` calls of `name`, once that many came; fails saying what came."""
        with self._changed:
            came = self._changed.wait_for(lambda: len(self.all(name)) >= count, timeout)
            if not came:
                seen = [self._name(call) for call in self._calls]
                raise AssertionError(
                    f"expected {count} {name!r} call(s) within {timeout} s, "
                    f"got {len(self.all(name))}; all calls: {seen}"
                )
            return self.all(name)[:count]

    async def wait_for_async(
        self, name: str, count: int = 1, timeout: float = WAIT_TIMEOUT
    ) -> list[CallT]:
        """wait_for from an async test, without blocking its loop."""
        return await asyncio.to_thread(self.wait_for, name, count, timeout)


class Script(Generic[FailureT]):
    """What the next calls of a method answer instead of the normal reply, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, deque[FailureT | Hang | Answer]] = {}

    def add(self, name: str, action: FailureT | Hang, times: int, after: int = 0) -> None:
        """`action` for `times` calls, once `after` calls were answered normally."""
        with self._lock:
            queue = self._next.setdefault(name, deque())
            queue.extend([Answer()] * after + [action] * times)

    def take(self, name: str) -> FailureT | Hang | None:
        with self._lock:
            queue = self._next.get(name)
            action = queue.popleft() if queue else None
            return None if isinstance(action, Answer) else action

    def clear(self) -> None:
        with self._lock:
            self._next.clear()


class LoopbackServer:
    """Serves `app` on 127.0.0.1; a context manager, so sync fixtures can `with` it."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self._app = app
        self._name = name
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._release = asyncio.Event()  # bound to the server's loop on first wait
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def options(self) -> dict[str, Any]:
        """More uvicorn.Config options (a fake serving https gives its certificate)."""
        return {}

    def start(self) -> None:
        sock = free_socket()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=SHUTDOWN_TIMEOUT,
            **self.options(),
        )
        self._server = _Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        if not self._server.ready.wait(STARTUP_TIMEOUT) or not self._server.started:
            self._server.should_exit = True
            raise RuntimeError(f"{self._name} failed to start within {STARTUP_TIMEOUT} s")

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self.release_hangs()
        self._server.should_exit = True
        self._thread.join(timeout=SHUTDOWN_TIMEOUT * 2)
        self._server = None

    def release_hangs(self) -> None:
        """Ends every hang now (each then answers its provider's server error)."""
        release, self._release = self._release, asyncio.Event()
        if self._server is not None:
            self._server.loop.call_soon_threadsafe(release.set)

    async def hang(self, hang: Hang) -> None:
        release = self._release
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), hang.seconds)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
