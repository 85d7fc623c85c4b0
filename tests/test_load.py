"""200 concurrent visitors on one relay, each sending and receiving: nothing lost."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import Live, RunningRelay, bearer, open_live, start_thread

VISITORS = 200
MESSAGES_EACH = 5
UNLIMITED = 1_000_000


async def test_200_concurrent_visitors_lose_nothing(make_relay: Any) -> None:
    relay: RunningRelay = make_relay(
        visitor_messages_per_minute=UNLIMITED,
        ip_messages_per_minute=UNLIMITED,
        threads_per_ip_per_hour=UNLIMITED,
    )
    owner = await open_live(relay, relay.owner_token(), origin=None)
    owner_seen: set[int] = set()
    expected_total = VISITORS * (1 + MESSAGES_EACH + 1)  # start, sends, one reply each
    everything_seen = asyncio.Event()

    async def watch_owner() -> None:
        while len(owner_seen) < expected_total:
            owner_seen.add((await owner.next("message", timeout=30))["message"]["seq"])
        everything_seen.set()

    watching = asyncio.create_task(watch_owner())

    async with relay.client() as client:

        async def visitor(v: int) -> list[int]:
            started = await start_thread(client, f"hello from {v}", client_id=f"{v}-start")
            live: Live = await open_live(relay, started["token"])
            for i in range(MESSAGES_EACH):
                await live.send(type="send", body=f"{v}:{i}", client_id=f"{v}-{i}")
            acks = [await live.next("ack", timeout=30) for _ in range(MESSAGES_EACH)]
            assert sorted(a["client_id"] for a in acks) == sorted(
                f"{v}-{i}" for i in range(MESSAGES_EACH)
            )
            reply = await client.post(
                f"/v1/owner/threads/{started['thread']['id']}/messages",
                headers=bearer(relay.owner_token()),
                json={"body": f"reply to {v}"},
            )
            assert reply.status_code == 201
            # The reply arrives live on the visitor's socket.
            while True:
                message = (await live.next("message", timeout=30))["message"]
                if message["author"] == "owner":
                    assert message["body"] == f"reply to {v}"
                    break
            await live.ws.close()
            return [started["message"]["seq"], *(a["seq"] for a in acks), reply.json()["seq"]]

        per_visitor = await asyncio.gather(*(visitor(v) for v in range(VISITORS)))

    await asyncio.wait_for(everything_seen.wait(), timeout=30)
    await watching
    acked = {seq for seqs in per_visitor for seq in seqs}
    assert len(acked) == expected_total
    assert owner_seen == acked
    assert relay.counts()["messages"] == expected_total
    await owner.ws.close()
