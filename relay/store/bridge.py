"""Run the store's plain (synchronous) SQL functions over asyncpg, on the event loop.

Every write and read of the store is a plain function of a connection, written once
for both engines: SQLite runs it on the connection's thread. For PostgreSQL, the
function runs in a greenlet; each statement it executes hands asyncpg's coroutine to
the parent greenlet (the event loop's task), which awaits it and switches back with
the rows. No thread, no second copy of the SQL: SQLAlchemy's asyncio support works
the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import greenlet

T = TypeVar("T")


class _Worker(greenlet.greenlet):  # type: ignore[misc]
    """Marks greenlets started by run(): only they may call wait()."""


async def run(fn: Callable[..., T], *args: Any) -> T:
    """Call fn(*args) in a greenlet, awaiting every awaitable it passes to wait()."""
    worker = _Worker(fn, parent=greenlet.getcurrent())
    request = worker.switch(*args)
    while not worker.dead:
        try:
            value = await request
        except BaseException as error:  # raised inside fn, where it can be handled
            request = worker.throw(error)
        else:
            request = worker.switch(value)
    return request  # type: ignore[no-any-return]


def wait(awaitable: Awaitable[T]) -> T:
    """From plain code running under run(): the awaitable's result."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Worker):
        raise RuntimeError("bridge.wait() outside bridge.run()")
    return current.parent.switch(awaitable)  # type: ignore[no-any-return]
