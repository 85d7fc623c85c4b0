from __future__ import annotations

SOCKETS = 2000


async def run():
    return []
