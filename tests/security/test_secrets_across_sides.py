"""What one side of a conversation can learn of the other's secrets, and replay.

A visitor's client_ids are the visitor's: replaying the first one to start a thread
hands out the visitor's token (that is how a lost answer is retried), so whoever reads
the inbox must never see them. Each owner surface is read as raw text and searched
for them, so a new field that leaks one fails here too."""

from __future__ import annotations

import json
import re
import uuid

from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, open_live, start_thread
from tests.test_inbox_api import inbox, inbox_socket, next_frame

pytestmark = BOTH_ENGINES


async def visitor_writes(relay: RunningRelay) -> tuple[dict[str, object], list[str]]:
    """A visitor who wrote three times (start, HTTP, socket): (started, their client_ids)."""
    ids = [str(uuid.uuid4()) for _ in range(3)]
    async with relay.client() as client:
        started = await start_thread(client, "First, with a UUID", client_id=ids[0])
        sent = await client.post(
            "/v1/thread/messages",
            headers=bearer(started["token"]),
            json={"body": "Second, over HTTP", "client_id": ids[1]},
        )
        assert sent.status_code == 201
    live = await open_live(relay, started["token"])
    await live.send(type="send", body="Third, over the socket", client_id=ids[2])
    assert (await live.next("ack"))["client_id"] == ids[2]
    await live.ws.close()
    return started, ids


async def test_no_owner_surface_shows_a_visitor_client_id(relay: RunningRelay) -> None:
    owner_socket = await open_live(relay, relay.owner_token(), origin=None)
    started, ids = await visitor_writes(relay)
    thread = started["thread"]["id"]  # type: ignore[index]
    seen: list[str] = []
    for _ in range(3):  # the owner socket got each message live
        seen.append(json.dumps(await owner_socket.next("message")))
    await owner_socket.ws.close()
    replayed = await open_live(relay, relay.owner_token(), origin=None)
    seen.append(json.dumps(replayed.replayed))
    await replayed.ws.close()
    owner = bearer(relay.owner_token())
    async with relay.client(origin=None) as api:
        seen.append((await api.get("/v1/owner/threads", headers=owner)).text)
        seen.append((await api.get(f"/v1/owner/threads/{thread}", headers=owner)).text)
    async with inbox(relay) as page:
        seen.append((await page.get("/inbox/api/threads")).text)
        seen.append((await page.get(f"/inbox/api/threads/{thread}")).text)
        seen.append((await page.get("/inbox/api/threads", q="Second")).text)
        async with inbox_socket(page) as ws:
            async with relay.client() as client:
                await client.post(
                    "/v1/thread/messages",
                    headers=bearer(started["token"]),  # type: ignore[arg-type]
                    json={"body": "Fourth, while the inbox is open", "client_id": ids[0] + "x"},
                )
            seen.append(json.dumps(await next_frame(ws, "message")))
    everything = "\n".join(seen)
    assert "Fourth, while the inbox is open" in everything  # the surfaces were read
    for secret in [*ids, ids[0] + "x"]:
        assert secret not in everything


async def test_each_side_still_sees_its_own_client_ids(relay: RunningRelay) -> None:
    """The widget and the inbox match their pending messages by client_id."""
    started, ids = await visitor_writes(relay)
    thread = started["thread"]["id"]  # type: ignore[index]
    async with relay.client() as client:
        reply = await client.post(
            f"/v1/owner/threads/{thread}/messages",
            headers=bearer(relay.owner_token()),
            json={"body": "Owner here", "client_id": "owner-reply-1"},
        )
        assert reply.json()["client_id"] == "owner-reply-1"
        history = await client.get("/v1/thread", headers=bearer(started["token"]))  # type: ignore[arg-type]
    by_author = {(m["author"], m["client_id"]) for m in history.json()["messages"]}
    assert by_author == {("visitor", ids[0]), ("visitor", ids[1]), ("visitor", ids[2]),
                         ("owner", None)}  # fmt: skip
    async with inbox(relay) as page:
        messages = (await page.get(f"/inbox/api/threads/{thread}")).json()["messages"]
    assert [m["client_id"] for m in messages if m["author"] == "owner"] == ["owner-reply-1"]


async def test_replaying_what_an_owner_sees_hands_out_no_token(relay: RunningRelay) -> None:
    started, _ = await visitor_writes(relay)
    thread = started["thread"]["id"]  # type: ignore[index]
    async with relay.client(origin=None) as api:
        view = (
            await api.get(f"/v1/owner/threads/{thread}", headers=bearer(relay.owner_token()))
        ).json()
    # Every string an owner sees about the first message and its thread, tried as the
    # client_id of a new start: each makes a conversation of its own, never the visitor's.
    first = view["messages"][0]
    candidates = {str(v) for v in (*first.values(), *view["thread"].values()) if v}
    async with relay.client() as client:
        for candidate in sorted(candidates):
            if not re.fullmatch(r"[A-Za-z0-9_.:-]{16,64}", candidate):
                continue  # not a client_id the API takes, or one it never replays
            replay = await client.post(
                "/v1/sites/alpha/threads", json={"body": "let me in", "client_id": candidate}
            )
            assert replay.status_code == 201, candidate
            assert replay.json()["thread"]["id"] != thread
            assert replay.json()["token"] != started["token"]
