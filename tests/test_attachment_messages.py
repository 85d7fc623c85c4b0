"""Messages that carry photos and files (`"attachments": [id, …]`), on a real relay: the
same shape in the answer, the history, live frames and the owner's APIs; only the
sender's own unsent uploads in that thread; a retried client_id is one message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, open_live, start_thread
from tests.test_attachments import PDF, png_with_gps, upload
from tests.test_inbox_api import inbox, inbox_socket

pytestmark = BOTH_ENGINES

VISITOR_UPLOADS = "/v1/thread/attachments"


def message_count(relay: RunningRelay) -> int:
    with relay.db() as db:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


async def uploaded(client: httpx.AsyncClient, path: str, name: str, data: bytes, token: str) -> Any:
    sent = await upload(client, path, name, data, token)
    assert sent.status_code == 201, sent.text
    return sent.json()


async def test_a_visitor_sends_two_files_without_text_once_and_everyone_sees_them(
    relay: RunningRelay,
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "The leak, and the invoice")
        token, thread = started["token"], started["thread"]["id"]
        photo = await uploaded(client, VISITOR_UPLOADS, "leak.jpg", png_with_gps(), token)
        invoice = await uploaded(client, VISITOR_UPLOADS, "invoice.pdf", PDF, token)
        owner_live = await open_live(relay, relay.owner_token(), since=started["message"]["seq"])
        send = {"client_id": "c-files-1", "attachments": [photo["id"], invoice["id"]]}
        first = await client.post("/v1/thread/messages", json=send, headers=bearer(token))
        assert first.status_code == 201, first.text
        message = first.json()
        assert message["body"] == ""
        # In the order sent, each with the upload's own fields and a working link.
        assert [(a["id"], a["name"], a["type"], a["size"]) for a in message["attachments"]] == [
            (photo["id"], "leak.png", "image/png", photo["size"]),
            (invoice["id"], "invoice.pdf", "application/pdf", len(PDF)),
        ]
        assert (await client.get(message["attachments"][1]["url"])).content == PDF
        # The same client_id again: the same message, once, and not refused for its
        # uploads being taken (by itself).
        again = await client.post("/v1/thread/messages", json=send, headers=bearer(token))
        assert again.status_code == 200 and again.json()["seq"] == message["seq"]
        assert again.json()["attachments"][0]["id"] == photo["id"]
        frame = await owner_live.next("message")
        await owner_live.ws.close()
        history = await client.get(
            f"/v1/owner/threads/{thread}", headers=bearer(relay.owner_token())
        )
        mine = await client.get("/v1/thread", headers=bearer(token))
    assert message_count(relay) == 2
    live_files = frame["message"]["attachments"]
    assert [a["id"] for a in live_files] == [photo["id"], invoice["id"]]
    owner_files = history.json()["messages"][-1]["attachments"]
    visitor_files = mine.json()["messages"][-1]["attachments"]
    assert [a["name"] for a in owner_files] == [a["name"] for a in visitor_files]
    async with httpx.AsyncClient() as anyone:  # links from every reading work, no header
        for link in (live_files[0]["url"], owner_files[0]["url"], visitor_files[0]["url"]):
            got = await anyone.get(link)
            assert got.status_code == 200 and got.headers["content-type"] == "image/png"


async def test_an_upload_that_is_not_the_senders_own_unsent_one_stores_nothing(
    relay: RunningRelay,
) -> None:
    async with relay.client() as client:
        ann = await start_thread(client, "Ann")
        bob = await start_thread(client, "Bob")
        anns = await uploaded(client, VISITOR_UPLOADS, "a.pdf", PDF, ann["token"])
        thread = ann["thread"]["id"]
        owners = await uploaded(
            client, f"/v1/owner/threads/{thread}/attachments", "o.pdf", PDF, relay.owner_token()
        )
        sent = await client.post(
            "/v1/thread/messages",
            json={"body": "mine", "attachments": [anns["id"]]},
            headers=bearer(ann["token"]),
        )
        assert sent.status_code == 201
        before = message_count(relay)
        refusals = {
            "another visitor's": (bob["token"], [anns["id"]]),
            "the owner's": (ann["token"], [owners["id"]]),
            "unknown": (ann["token"], ["a_nothing_here"]),
            "already sent": (ann["token"], [anns["id"]]),
            "twice in one": (ann["token"], [owners["id"], owners["id"]]),
            "not a list": (ann["token"], anns["id"]),
            "too many": (ann["token"], [f"a_{n}" for n in range(11)]),
        }
        answers = {}
        for case, (token, ids) in refusals.items():
            response = await client.post(
                "/v1/thread/messages",
                json={"body": "", "attachments": ids},
                headers=bearer(token),
            )
            answers[case] = response.status_code
        # An empty body still needs something to carry.
        empty = await client.post(
            "/v1/thread/messages",
            json={"body": " ", "attachments": []},
            headers=bearer(ann["token"]),
        )
    assert answers == {
        "another visitor's": 422,
        "the owner's": 422,
        "unknown": 422,
        "already sent": 409,
        "twice in one": 422,
        "not a list": 422,
        "too many": 422,
    }
    assert empty.status_code == 422
    assert message_count(relay) == before
    with relay.db() as db:  # the owner's upload is still free to send
        row = db.execute("SELECT message_seq FROM attachments WHERE id = ?", (owners["id"],))
        assert row.fetchone()[0] is None


async def test_the_owners_pdf_reaches_the_visitors_socket_and_downloads(
    relay: RunningRelay,
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "Your price list, please")
        thread = started["thread"]["id"]
        live = await open_live(relay, started["token"], since=started["message"]["seq"])
        owner = relay.owner_token()
        prices = await uploaded(
            client, f"/v1/owner/threads/{thread}/attachments", "prices", PDF, owner
        )
        reply = await client.post(
            f"/v1/owner/threads/{thread}/messages",
            json={"body": "Here it is", "attachments": [prices["id"]]},
            headers=bearer(owner),
        )
        assert reply.status_code == 201, reply.text
        frame = await live.next("message")
        await live.ws.close()
        got = await client.get(frame["message"]["attachments"][0]["url"])
    assert frame["message"]["body"] == "Here it is"
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"].startswith("attachment")


async def test_files_sent_over_the_socket_are_acked_and_a_foreign_one_is_an_error_frame(
    relay: RunningRelay,
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "hi")
        token = started["token"]
        photo = await uploaded(client, VISITOR_UPLOADS, "p.png", png_with_gps(), token)
        other = await start_thread(client, "someone else")
        theirs = await uploaded(client, VISITOR_UPLOADS, "t.pdf", PDF, other["token"])
        live = await open_live(relay, token, since=started["message"]["seq"])
        await live.send(type="send", client_id="s-1", attachments=[photo["id"]])
        ack = await live.next("ack")
        await live.send(type="send", client_id="s-2", body="x", attachments=[theirs["id"]])
        refused = await live.next("error")
        await live.send(type="send", client_id="s-3", body="still here")
        still = await live.next("ack")
        await live.ws.close()
        history = (await client.get("/v1/thread", headers=bearer(token))).json()["messages"]
    assert ack["client_id"] == "s-1"
    assert refused["client_id"] == "s-2" and refused["reason"] == "unknown_attachment"
    assert still["client_id"] == "s-3"
    assert [(m["body"], [a["id"] for a in m["attachments"]]) for m in history] == [
        ("hi", []),
        ("", [photo["id"]]),
        ("still here", []),
    ]


async def test_the_inbox_uploads_and_replies_with_a_file_seen_on_its_socket(
    relay: RunningRelay,
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "A photo of the room?")
        thread = started["thread"]["id"]
    async with inbox(relay) as page:
        photo = await page.client.post(
            f"/inbox/api/threads/{thread}/attachments",
            files={"file": ("room.png", png_with_gps(), "image/png")},
            headers={"x-csrf-token": page.me["csrf"]},
        )
        assert photo.status_code == 201, photo.text
        no_csrf = await page.client.post(
            f"/inbox/api/threads/{thread}/attachments",
            files={"file": ("room.png", png_with_gps(), "image/png")},
        )
        async with inbox_socket(page, since=started["message"]["seq"]) as ws:
            reply = await page.post(
                f"/inbox/api/threads/{thread}/messages",
                {"body": "", "attachments": [photo.json()["id"]]},
            )
            assert reply.status_code == 201, reply.text
            frame = await next_message(ws)
        shown = await page.get(f"/inbox/api/threads/{thread}")
    assert no_csrf.status_code == 403
    assert frame["message"]["attachments"][0]["id"] == photo.json()["id"]
    assert shown.json()["messages"][-1]["attachments"][0]["type"] == "image/png"


async def next_message(ws: Any) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame["type"] == "message":
            return frame  # type: ignore[no-any-return]


async def test_a_sites_file_types_and_message_total_are_enforced(
    make_relay: Callable[..., RunningRelay],
) -> None:
    relay = make_relay()
    limits = '{"file_types": ["pdf"], "max_file_mb": 1, "max_message_mb": 1}'
    with relay.db() as db:
        db.execute("UPDATE sites SET settings = ? WHERE id = 'alpha'", (limits,))
    async with relay.client() as client:
        started = await start_thread(client, "Plans attached")
        token = started["token"]
        photo = await upload(client, VISITOR_UPLOADS, "p.png", png_with_gps(), token)
        # Two PDFs of 0.6 MB each: each under the file limit, together over the total.
        padded = PDF + b"%" + b"x" * 600_000 + b"\n"
        parts = [await uploaded(client, VISITOR_UPLOADS, f"{n}.pdf", padded, token) for n in (1, 2)]
        both = await client.post(
            "/v1/thread/messages",
            json={"attachments": [part["id"] for part in parts]},
            headers=bearer(token),
        )
        one = await client.post(
            "/v1/thread/messages", json={"attachments": [parts[0]["id"]]}, headers=bearer(token)
        )
    assert photo.status_code == 415 and photo.json()["error"] == "unsupported_type"
    assert both.status_code == 413 and both.json()["reason"] == "message_too_large"
    assert one.status_code == 201
    assert message_count(relay) == 2
