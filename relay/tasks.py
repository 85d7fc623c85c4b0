"""Background tasks that live as long as the app (or the demo) does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger("porch")


@asynccontextmanager
async def background(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run a task for the app's lifetime; one that dies is logged, not silent."""
    task = asyncio.create_task(work, name=f"porch-{name}")
    task.add_done_callback(_report_death)
    try:
        yield
    finally:
        task.cancel()
        # A task that died was reported when it did; shutting down goes on regardless.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s died", task.get_name(), exc_info=task.exception())


_spawned: set[asyncio.Task[None]] = set()


def spawn(work: Coroutine[Any, Any, None], name: str) -> None:
    """Start a short task from plain code; kept referenced until it ends."""
    task = asyncio.get_running_loop().create_task(work, name=f"porch-{name}")
    _spawned.add(task)
    task.add_done_callback(_spawned.discard)
    task.add_done_callback(_report_death)
