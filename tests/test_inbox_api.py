"""The inbox API over real HTTP and WebSockets: sign-in links, the session cookie, CSRF,
revocation, the thread list with search, closing, presence and site settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.pg import BOTH_ENGINES
from tests.support import (
    ALPHA,
    BETA,
    BETA_ORIGIN,
    RunningRelay,
    open_live,
    relay_config,
    seed_sites,
    start_relay,
    start_thread,
    tampered,
)
from tests.test_live import closed_with

pytestmark = BOTH_ENGINES

OWNER = "owner@alpha.example"


class Inbox:
    """A signed-in inbox page, as a browser on the relay's own origin would be."""

    def __init__(self, relay: RunningRelay, client: httpx.AsyncClient, me: dict[str, Any]):
        self.relay, self.client, self.me = relay, client, me

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params)

    async def post(self, path: str, body: Any = None, **headers: str) -> httpx.Response:
        sent = {"x-csrf-token": self.me["csrf"], **headers}
        return await self.client.post(path, json=body if body is not None else {}, headers=sent)

    async def threads(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.get("/inbox/api/threads", **params)
        assert response.status_code == 200, response.text
        return response.json()["threads"]  # type: ignore[no-any-return]


async def sign_in(relay: RunningRelay, email: str = OWNER) -> Inbox:
    client = httpx.AsyncClient(base_url=relay.url, headers={"origin": relay.url}, timeout=10)
    response = await client.post(
        "/inbox/api/session", json={"token": relay.tokens.login_token(email)}
    )
    assert response.status_code == 200, response.text
    return Inbox(relay, client, response.json())


@asynccontextmanager
async def inbox(relay: RunningRelay, email: str = OWNER) -> AsyncIterator[Inbox]:
    signed_in = await sign_in(relay, email)
    try:
        yield signed_in
    finally:
        await signed_in.client.aclose()


@asynccontextmanager
async def inbox_socket(page: Inbox, since: int = 0) -> AsyncIterator[ClientConnection]:
    cookie = "; ".join(f"{k}={v}" for k, v in page.client.cookies.items())
    url = page.relay.url.replace("http://", "ws://") + "/inbox/live"
    async with connect(
        url,
        origin=page.relay.url,
        additional_headers={"cookie": cookie},  # type: ignore[arg-type]
    ) as ws:
        await ws.send(json.dumps({"type": "hello", "since": since}))
        while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "ready":
            pass
        yield ws


async def next_frame(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame["type"] == kind:
            return frame  # type: ignore[no-any-return]


# -- signing in --------------------------------------------------------------------------


async def test_a_link_opens_one_session_with_a_strict_cookie(relay: RunningRelay) -> None:
    token = relay.tokens.login_token(OWNER)
    async with httpx.AsyncClient(base_url=relay.url, headers={"origin": relay.url}) as client:
        response = await client.post("/inbox/api/session", json={"token": token})
        assert response.status_code == 200, response.text
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain http here; https adds it
        me = response.json()
        assert me["email"] == OWNER and [s["id"] for s in me["sites"]] == ["alpha"]
        assert "identity_secret" not in json.dumps(me)
        assert (await client.get("/inbox/api/session")).json()["session"] == me["session"]
        again = await client.post("/inbox/api/session", json={"token": token})
        assert again.status_code == 401 and again.json()["reason"] == "used"
        altered = await client.post("/inbox/api/session", json={"token": tampered(token)})
        assert altered.status_code == 401 and altered.json()["reason"] == "invalid"


async def test_sign_in_refuses_other_origins_and_strangers(relay: RunningRelay) -> None:
    token = relay.tokens.login_token(OWNER)
    async with httpx.AsyncClient(base_url=relay.url) as client:
        forged = await client.post(
            "/inbox/api/session", json={"token": token}, headers={"origin": "https://evil.example"}
        )
        assert forged.status_code == 403 and forged.json()["error"] == "forbidden"
        stranger = await client.post(
            "/inbox/api/session",
            json={"token": relay.tokens.login_token("nobody@example.com")},
            headers={"origin": relay.url},
        )
        # A valid link of an address that owns nothing opens an empty inbox at most.
        assert stranger.status_code == 200 and stranger.json()["sites"] == []
    with relay.db() as db:
        assert db.execute("SELECT COUNT(*) FROM owner_sessions").fetchone()[0] == 1


async def test_asking_for_a_link_without_mail_says_how_to_get_one(relay: RunningRelay) -> None:
    async with httpx.AsyncClient(base_url=relay.url, headers={"origin": relay.url}) as client:
        response = await client.post("/inbox/api/login", json={"email": OWNER})
        assert response.status_code == 503 and "porch owner login" in response.json()["message"]
        bad = await client.post("/inbox/api/login", json={"email": "not an address"})
        assert bad.status_code == 422


# -- CSRF and tampering ------------------------------------------------------------------


async def test_posts_need_the_csrf_token_and_the_own_origin(relay: RunningRelay) -> None:
    async with relay.client() as visitor:
        thread = (await start_thread(visitor, "hello"))["thread"]["id"]
    async with inbox(relay) as page:
        path = f"/inbox/api/threads/{thread}/messages"
        before = relay.counts()["messages"]
        missing = await page.client.post(path, json={"body": "x"})
        wrong = await page.post(path, {"body": "x"}, **{"x-csrf-token": "0" * 64})
        foreign = await page.post(path, {"body": "x"}, origin="https://evil.example")
        non_ascii = await page.client.post(
            path, json={"body": "x"}, headers={"x-csrf-token": "é".encode()}
        )
        for refused in (missing, wrong, foreign, non_ascii):
            assert refused.status_code == 403, refused.text
        assert relay.counts()["messages"] == before
        sent = await page.post(path, {"body": "Hi from the inbox", "client_id": "c-1"})
        assert sent.status_code == 201 and sent.json()["via"] == "inbox"


async def test_a_tampered_or_foreign_cookie_is_not_a_session(relay: RunningRelay) -> None:
    async with inbox(relay) as page:
        cookie = page.client.cookies["porch_session"]
        async with httpx.AsyncClient(base_url=relay.url) as other:
            middle = len(cookie) - 10  # inside the signature (its last character has spare bits)
            swapped = "A" if cookie[middle] != "A" else "B"
            tampered = cookie[:middle] + swapped + cookie[middle + 1 :]
            for value in (tampered, "x", ""):
                other.cookies.set("porch_session", value)
                response = await other.get("/inbox/api/session")
                assert response.status_code == 401, value
                assert response.json()["error"] == "unauthorized"


# -- sessions ------------------------------------------------------------------------------


async def test_revoking_a_session_ends_it_and_closes_its_socket(relay: RunningRelay) -> None:
    async with inbox(relay) as phone, inbox(relay) as desk:
        async with inbox_socket(phone) as socket:
            sessions = (await desk.get("/inbox/api/session")).json()["sessions"]
            assert {s["current"] for s in sessions} == {True, False} and len(sessions) == 2
            revoked = await desk.post(f"/inbox/api/sessions/{phone.me['session']}/revoke")
            assert revoked.status_code == 204
            code, _ = await closed_with(socket)
            assert code == 4401
        assert (await phone.get("/inbox/api/session")).status_code == 401
        assert (await desk.get("/inbox/api/session")).status_code == 200
        other = await desk.post("/inbox/api/sessions/s_nothere/revoke")
        assert other.status_code == 404


async def test_sign_out_everywhere(relay: RunningRelay) -> None:
    async with inbox(relay) as one, inbox(relay) as two:
        response = await one.post("/inbox/api/logout", {"everywhere": True})
        assert response.status_code == 204 and "porch_session" in response.headers["set-cookie"]
        assert (await two.get("/inbox/api/session")).status_code == 401


# -- threads -----------------------------------------------------------------------------


async def test_the_list_holds_only_the_owners_sites(relay: RunningRelay) -> None:
    async with relay.client() as alpha, relay.client(BETA_ORIGIN) as beta:
        mine = await start_thread(alpha, "Do you deliver?", name="Ann")
        theirs = await start_thread(beta, "Fuite d'eau", site="beta")
        await alpha.post(
            "/v1/thread/messages",
            json={"body": "On Sunday?"},
            headers={"authorization": f"Bearer {mine['token']}"},
        )
    async with inbox(relay) as page:
        threads = await page.threads()
        assert [t["id"] for t in threads] == [mine["thread"]["id"]]
        listed = threads[0]
        assert listed["unread"] == 2 and listed["visitor"]["name"] == "Ann"
        assert listed["visitor"]["first_seen"] and listed["last_message"]["body"] == "On Sunday?"
        assert (await page.get(f"/inbox/api/threads/{theirs['thread']['id']}")).status_code == 404
        refused = await page.post(
            f"/inbox/api/threads/{theirs['thread']['id']}/messages", {"body": "x"}
        )
        assert refused.status_code == 404
        assert (await page.get("/inbox/api/threads", site="beta")).status_code == 404
        thread = await page.get(f"/inbox/api/threads/{mine['thread']['id']}")
        messages = thread.json()["messages"]
        read = await page.post(
            f"/inbox/api/threads/{mine['thread']['id']}/read", {"seq": messages[-1]["seq"]}
        )
        assert read.status_code == 204
        assert (await page.threads())[0]["unread"] == 0


async def test_an_owner_of_two_sites_sees_both(tmp_path: Any) -> None:
    config = relay_config(tmp_path)
    shared = "both@example.com"
    seed_sites(
        config,
        [
            replace(ALPHA, owner_emails=(shared, "other@alpha.example")),
            replace(BETA, owner_emails=(shared,)),
        ],
    )
    relay = start_relay(config)
    try:
        async with relay.client() as alpha, relay.client(BETA_ORIGIN) as beta:
            await start_thread(alpha, "one")
            await start_thread(beta, "two", site="beta")
        async with inbox(relay, shared) as page, inbox(relay, "other@alpha.example") as other:
            assert {s["id"] for s in page.me["sites"]} == {"alpha", "beta"}
            assert len(await page.threads()) == 2
            assert [t["site"] for t in await page.threads(site="beta")] == ["beta"]
            assert [t["last_message"]["body"] for t in await other.threads()] == ["one"]
    finally:
        relay.stop()


async def test_search_folds_accents_and_never_breaks_on_syntax(relay: RunningRelay) -> None:
    async with relay.client() as visitor:
        cake = await start_thread(visitor, "Une crème brûlée pour samedi ?", name="Élodie")
        await start_thread(visitor, "Do you have gluten-free bread?")
    async with inbox(relay) as page:
        for query in ("creme", "CRÈME brul", "brûlée", "elodie"):
            found = await page.threads(q=query, status="all")
            assert [t["id"] for t in found] == [cake["thread"]["id"]], query
        hit = (await page.threads(q="creme"))[0]
        assert "\x02crème\x03" in hit["match"]
        for hostile in ('"', "AND OR NOT", "*", "bread)(", "NEAR(a b)", "%_\\"):
            response = await page.get("/inbox/api/threads", q=hostile)
            assert response.status_code == 200, hostile
        assert await page.threads(q="croissant") == []


async def test_the_list_comes_page_by_page(
    relay: RunningRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with relay.client() as visitor:
        started = {(await start_thread(visitor, f"bread {n}"))["thread"]["id"] for n in range(7)}
    async with inbox(relay) as page:
        whole = [t["id"] for t in await page.threads()]
        assert set(whole) == started
        # The relay serves from a thread of this process: the smaller page reaches it.
        monkeypatch.setattr("relay.store.inbox.INBOX_PAGE", 3)
        for filters in ({}, {"q": "bread"}, {"status": "all", "site": "alpha"}):
            seen: list[str] = []
            cursor: dict[str, str] = {}
            for _ in range(5):
                answer = await page.get("/inbox/api/threads", **filters, **cursor)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert len(body["threads"]) <= 3 and isinstance(body["seq"], int)
                seen += [t["id"] for t in body["threads"]]
                if body["next"] is None:
                    break
                cursor = {"before": body["next"]}
            assert seen == whole, filters
        for bad in ("", "yesterday", "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00Z|a|b"):
            refused = await page.get("/inbox/api/threads", before=bad)
            assert refused.status_code == 422, bad
            assert "'before' must be the 'next' of a previous list answer" in refused.text


async def test_close_and_reopen_and_a_visitor_reopens(relay: RunningRelay) -> None:
    async with relay.client() as visitor:
        started = await start_thread(visitor, "Thanks, that is all")
        thread = started["thread"]["id"]
        async with inbox(relay) as page, inbox_socket(page) as socket:
            closed = await page.post(f"/inbox/api/threads/{thread}/status", {"status": "closed"})
            assert closed.status_code == 200 and closed.json()["status"] == "closed"
            assert await next_frame(socket, "status") == {
                "type": "status",
                "thread": thread,
                "status": "closed",
            }
            assert await page.threads() == []
            assert [t["id"] for t in await page.threads(status="closed")] == [thread]
            bad = await page.post(f"/inbox/api/threads/{thread}/status", {"status": "gone"})
            assert bad.status_code == 422
            await visitor.post(
                "/v1/thread/messages",
                json={"body": "One more thing"},
                headers={"authorization": f"Bearer {started['token']}"},
            )
            assert (await next_frame(socket, "status"))["status"] == "open"
            assert [t["id"] for t in await page.threads()] == [thread]


# -- live --------------------------------------------------------------------------------


async def test_the_inbox_socket_streams_and_replies(relay: RunningRelay) -> None:
    async with relay.client() as visitor:
        started = await start_thread(visitor, "first")
        visitor_live = await open_live(relay, started["token"])
        assert visitor_live.ready["online"] is False
        async with inbox(relay) as page:
            listed = (await page.get("/inbox/api/threads")).json()
            async with inbox_socket(page, since=listed["seq"]) as socket:
                assert await visitor_live.next("presence") == {"type": "presence", "online": True}
                await visitor_live.send(type="send", body="are you there?", client_id="v-2")
                frame = await next_frame(socket, "message")
                assert frame["message"]["body"] == "are you there?"
                await visitor_live.send(type="typing")
                assert (await next_frame(socket, "typing"))["author"] == "visitor"
                thread = started["thread"]["id"]
                await socket.send(
                    json.dumps(
                        {"type": "send", "thread": thread, "body": "Yes!", "client_id": "o1"}
                    )
                )
                ack = await next_frame(socket, "ack")
                assert ack["thread"] == thread
                reply = await visitor_live.next("message")
                while reply["message"]["author"] != "owner":  # the visitor's own echo first
                    reply = await visitor_live.next("message")
                assert reply["message"]["body"] == "Yes!" and reply["message"]["via"] == "inbox"
            assert await visitor_live.next("presence") == {"type": "presence", "online": False}
        await visitor_live.ws.close()


async def test_the_inbox_socket_refuses_other_pages_and_no_session(relay: RunningRelay) -> None:
    url = relay.url.replace("http://", "ws://") + "/inbox/live"
    async with inbox(relay) as page:
        cookie = f"porch_session={page.client.cookies['porch_session']}"
        async with connect(
            url,
            origin="https://evil.example",
            additional_headers={"cookie": cookie},  # type: ignore[arg-type]
        ) as ws:
            assert (await closed_with(ws))[0] == 4403
    async with connect(url, origin=relay.url) as ws:  # type: ignore[arg-type]
        assert (await closed_with(ws))[0] == 4401


# -- settings ----------------------------------------------------------------------------


async def test_site_settings_reach_the_widget_and_bad_ones_change_nothing(
    relay: RunningRelay,
) -> None:
    async with inbox(relay) as page, relay.client() as visitor:
        path = "/inbox/api/sites/alpha/settings"
        saved = await page.post(path, {"greeting": "Bonjour from the inbox", "color": "#aa3300"})
        assert saved.status_code == 200, saved.text
        config = (await visitor.get("/v1/sites/alpha/config")).json()
        assert config["greeting"] == "Bonjour from the inbox" and config["color"] == "#aa3300"
        bad = await page.post(path, {"greeting": "changed", "timezone": "Mars/Olympus"})
        assert bad.status_code == 422 and "timezone" in bad.json()["message"]
        assert (await visitor.get("/v1/sites/alpha/config")).json()["greeting"] == (
            "Bonjour from the inbox"
        )
        other = await page.post("/inbox/api/sites/beta/settings", {"greeting": "x"})
        assert other.status_code == 404


async def test_owner_preferences(relay: RunningRelay) -> None:
    async with inbox(relay) as page:
        saved = await page.post(
            "/inbox/api/me",
            {"name": "Sam", "language": "fr", "notify": "daily", "aliases": ["Sam@Home.example"]},
        )
        assert saved.status_code == 200, saved.text
        me = saved.json()
        assert (me["name"], me["language"], me["notify"], me["aliases"]) == (
            "Sam",
            "fr",
            "daily",
            ["sam@home.example"],
        )
        for bad in ({"notify": "weekly"}, {"language": "de"}, {"aliases": ["nope"]}, {"x": 1}):
            response = await page.post("/inbox/api/me", bad)
            assert response.status_code == 422, bad
        assert (await page.get("/inbox/api/session")).json()["notify"] == "daily"


# -- away replies ------------------------------------------------------------------------

SATURDAY_NIGHT = "2026-11-28T22:00:00Z"  # 23:00 in Paris
WEEKDAYS = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture
def closed_relay(tmp_path: Any) -> Any:
    config = relay_config(tmp_path, clock_start=SATURDAY_NIGHT)
    hours = {"timezone": "Europe/Paris", "hours": WEEKDAYS}
    seed_sites(
        config,
        [
            replace(ALPHA, settings={**ALPHA.settings, **hours}),
            replace(BETA, settings={**BETA.settings, **hours, "away_text": "Urgence : 06 00"}),
        ],
    )
    relay = start_relay(config)
    yield relay
    relay.stop()


async def system_bodies(relay: RunningRelay, thread: str) -> list[str]:
    with relay.db() as db:
        rows = db.execute(
            "SELECT body FROM messages WHERE thread_id = ? AND author = 'system' ORDER BY seq",
            (thread,),
        ).fetchall()
    return [row[0] for row in rows]


async def test_outside_hours_one_automatic_reply(closed_relay: RunningRelay) -> None:
    relay = closed_relay
    async with relay.client() as visitor:
        started = await start_thread(visitor, "Are you open tomorrow?")
        thread = started["thread"]["id"]
        live = await open_live(relay, started["token"])
        assert [m["author"] for m in live.replayed] == ["visitor", "system"]
        # The automatic reply goes back by the channel the visitor wrote from.
        assert [m["via"] for m in live.replayed] == ["widget", "widget"]
        for body in ("Hello?", "Anyone?"):
            await live.send(type="send", body=body, client_id=f"c{len(body)}")
            await live.next("ack")
        replies = await system_bodies(relay, thread)
        assert len(replies) == 1
        assert "Monday at 09:00" in replies[0] and "email" in replies[0]
        await live.ws.close()


async def test_away_reply_in_the_visitors_language_with_the_owners_text(
    closed_relay: RunningRelay,
) -> None:
    async with closed_relay.client(BETA_ORIGIN) as visitor:
        started = await start_thread(visitor, "Bonsoir", site="beta", language="fr")
    replies = await system_bodies(closed_relay, started["thread"]["id"])
    assert len(replies) == 1
    assert "lundi à 09:00" in replies[0] and replies[0].endswith("Urgence : 06 00")


async def test_no_away_reply_while_an_owner_is_at_the_inbox(closed_relay: RunningRelay) -> None:
    relay = closed_relay
    async with inbox(relay) as page, inbox_socket(page):
        async with relay.client() as visitor:
            started = await start_thread(visitor, "Late question")
        assert await system_bodies(relay, started["thread"]["id"]) == []


# -- review fixes ------------------------------------------------------------------------


async def test_a_session_revoked_elsewhere_loses_its_socket_at_its_next_frame(
    relay: RunningRelay,
) -> None:
    """`porch owner logout` runs in another process: the socket learns it at its next
    frame (the page pings every 25 s), and a frame it sent is not acted upon."""
    async with relay.client() as visitor:
        thread = (await start_thread(visitor, "hi"))["thread"]["id"]
    async with inbox(relay) as page, inbox_socket(page) as socket:
        with relay.db() as db:
            db.execute("UPDATE owner_sessions SET revoked_at = 'now'")
        before = relay.counts()["messages"]
        await socket.send(
            json.dumps({"type": "send", "thread": thread, "body": "sneaky", "client_id": "x1"})
        )
        assert (await closed_with(socket))[0] == 4401
        assert relay.counts()["messages"] == before


async def test_an_owner_removed_from_a_site_is_told_to_reconnect(tmp_path: Any) -> None:
    config = relay_config(tmp_path)
    seed_sites(config, [replace(ALPHA, owner_emails=(OWNER, "helper@alpha.example")), BETA])
    relay = start_relay(config)
    try:
        async with inbox(relay, "helper@alpha.example") as page, inbox_socket(page) as socket:
            seed_sites(config, [ALPHA])  # the operator removed the helper (porch site set)
            await socket.send(json.dumps({"type": "ping"}))
            assert (await closed_with(socket))[0] == 4409
            assert (await page.threads()) == []
    finally:
        relay.stop()


async def test_sessions_end_after_ninety_idle_days(relay: RunningRelay) -> None:
    async with inbox(relay) as page:
        with relay.db() as db:
            db.execute("UPDATE owner_sessions SET last_seen_at = '2020-01-01T00:00:00.000Z'")
        assert (await page.get("/inbox/api/session")).status_code == 401


async def test_owners_can_be_added_from_the_inbox_not_removed(relay: RunningRelay) -> None:
    async with inbox(relay) as page:
        path = "/inbox/api/sites/alpha/settings"
        added = await page.post(path, {"owner_emails": [OWNER, "Colleague@Alpha.example"]})
        assert added.status_code == 200 and added.json()["owner_emails"] == [
            OWNER,
            "colleague@alpha.example",
        ]
        removed = await page.post(path, {"owner_emails": ["colleague@alpha.example"]})
        assert removed.status_code == 422 and removed.json()["reason"] == "owner_emails"
        assert OWNER in (await page.get("/inbox/api/session")).json()["sites"][0]["owner_emails"]


async def test_api_answers_are_never_cached_and_the_page_is_isolated(relay: RunningRelay) -> None:
    async with inbox(relay) as page:
        assert (await page.get("/inbox/api/session")).headers["cache-control"] == "no-store"
        assert (await page.get("/inbox/api/threads")).headers["cache-control"] == "no-store"
        shell = await page.get("/inbox")
        assert shell.headers["cross-origin-opener-policy"] == "same-origin"
        assert "script-src 'self'" in shell.headers["content-security-policy"]


async def test_online_only_while_the_owner_is_looking(relay: RunningRelay) -> None:
    async with relay.client() as visitor:
        started = await start_thread(visitor, "hello")
        visitor_live = await open_live(relay, started["token"])
        async with inbox(relay) as page, inbox_socket(page) as socket:
            assert await visitor_live.next("presence") == {"type": "presence", "online": True}
            await socket.send(json.dumps({"type": "here", "here": False}))  # tab hidden
            assert await visitor_live.next("presence") == {"type": "presence", "online": False}
            config = (await visitor.get("/v1/sites/alpha/config")).json()
            assert config["availability"]["online"] is False
            await socket.send(json.dumps({"type": "here", "here": True}))
            assert await visitor_live.next("presence") == {"type": "presence", "online": True}
        await visitor_live.ws.close()


async def test_the_automatic_reply_asks_for_an_email_only_when_there_is_none(
    closed_relay: RunningRelay,
) -> None:
    async with closed_relay.client() as visitor:
        started = await start_thread(visitor, "Hello?")
        first = await system_bodies(closed_relay, started["thread"]["id"])
        assert "Leave your email address" in first[0]
    with closed_relay.db() as db:  # a signed-in user whose address the site knows
        db.execute("UPDATE visitors SET email = 'ann@example.com'")
        db.execute("DELETE FROM messages WHERE author = 'system'")
    async with closed_relay.client() as visitor:
        await visitor.post(
            "/v1/thread/messages",
            json={"body": "Me again"},
            headers={"authorization": f"Bearer {started['token']}"},
        )
    again = await system_bodies(closed_relay, started["thread"]["id"])
    assert len(again) == 1 and "Leave your email address" not in again[0]
