"""What every channel's inbound side records: each message a provider delivered, by
(channel, its id at the provider), so a delivery made twice is handled once."""

from __future__ import annotations

from relay.models import utc_now
from relay.store.engine import Engine, StoreEvent
from relay.store.rows import Db


class InboundStore(Engine):
    async def inbound_seen(self, channel: str, external_id: str) -> bool:
        row = await self._read(
            lambda db: db.execute(
                "SELECT 1 FROM inbound WHERE channel = ? AND external_id = ?",
                (channel, external_id),
            ).fetchone()
        )
        return row is not None

    async def record_inbound(
        self, channel: str, external_id: str, verdict: str, thread: str | None
    ) -> None:
        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "INSERT INTO inbound (channel, external_id, verdict, thread_id, received_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (channel, external_id, verdict, thread, utc_now()),
            )
            return None, []

        await self.write(op)
