"""What every channel's inbound side records: each message a provider delivered, by
(channel, its id at the provider), so a delivery made twice is handled once."""

from __future__ import annotations

import json
from typing import Any

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
        self,
        channel: str,
        external_id: str,
        verdict: str,
        thread: str | None,
        *,
        envelope: dict[str, str | None] | None = None,
        authentication: dict[str, Any] | None = None,
    ) -> None:
        """`envelope`: what the receiving SMTP server saw (peer_ip, helo, mail_from), kept
        so that SPF can be checked again; `authentication`: the sender checks' verdict."""
        seen = envelope or {}

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "INSERT INTO inbound (channel, external_id, verdict, thread_id, received_at,"
                " peer_ip, helo, mail_from, authentication) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    channel,
                    external_id,
                    verdict,
                    thread,
                    utc_now(),
                    seen.get("peer_ip"),
                    seen.get("helo"),
                    seen.get("mail_from"),
                    json.dumps(authentication) if authentication is not None else None,
                ),
            )
            return None, []

        await self.write(op)
