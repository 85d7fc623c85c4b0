"""Messaging apps: Telegram in and out of the relay, versus the relay's own widget and
email paths in the same run.

Inbound: CLIENTS concurrent clients POST Telegram updates (the secret-token header
set, each a new text message in a chat that already has its thread) to
/v1/channels/{id}/webhook; a message counts when its 200 is back, which the relay sends
only once it is stored. Baseline: the same clients, the same number of conversations
and messages, through the widget's POST /v1/thread/messages (visitor bearer token);
counted at its 201. Rounds alternate, a warm-up round of each first; median of the
rest. The relay's CPU per message on each side says where a gap comes from.

Outbound: the owner replies once in each conversation (POST
/v1/owner/threads/{id}/messages, CLIENTS at a time) and the clock stops when the last
reply reached the fake Bot API as sendMessage: replies delivered per second, end to
end. Baseline: the same replies to widget visitors who left a confirmed email, until
the last email reached a local SMTP sink. Both go through the same delivery worker
(relay/channels/worker.py), one delivery at a time per channel. The email path is run
with PORCH_VISITOR_NOTIFY_DELAY=0: by default an owner reply waits 300 s for the
visitor to see it on the site before it is emailed, a policy rather than a cost, and a
chat is written to at once. What remains differs by nature, and the ratio says what it
costs: an email is composed (MIME, a reply address) and handed over in a fresh SMTP
conversation each time (aiosmtplib: connect, EHLO, MAIL, RCPT, DATA, QUIT); a chat reply
is one JSON POST on a kept-alive connection.

Both fakes (tests/fakes/telegram_api.py, tests/mail/smtp_sink.py) run in threads of
this process, so they weigh alike on both sides. The relay runs as `porch serve` on
SQLite (servers.py); the bot is connected with `porch channel add`, as an operator
does. Owners' notifications are queued as in any relay, but PORCH_OWNER_NOTIFY_DELAY
keeps them from being sent during the run: only the replies under test reach the sink.

A chat takes at most REPLIES_PER_THREAD_PER_HOUR messages an hour (relay/channels/
accept.py, a cap on loops between robots, not configurable): hence many conversations
with a few messages each per round, the same for the widget.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from relay.channels.accept import REPLIES_PER_THREAD_PER_HOUR
from relay.config import Config
from relay.store import open_store
from tests.bench import clients, servers
from tests.bench.harness import Machine, Row, at_least_ratio, log, noisy
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.webhooks import telegram_headers, telegram_update
from tests.mail.smtp_sink import SinkServer
from tests.support import bearer

CLIENTS = 16  # concurrent HTTP clients, on each side
CONVERSATIONS = 160  # Telegram chats, and as many widget visitors
PER_ROUND = 3  # messages per conversation in an inbound round
ROUNDS = 4  # inbound rounds per side, the first a warm-up not counted
REPLY_ROUNDS = 4  # outbound rounds per side (one reply per conversation), same
# Every message of a chat after its first counts against the loop cap: stay under it.
assert ROUNDS * PER_ROUND < REPLIES_PER_THREAD_PER_HOUR

BOT_TOKEN = "4242:bench-token"
FIRST_CHAT = 700_000_000  # Telegram user ids; a private chat's id is its user's
DELIVERY_TIMEOUT = 30.0  # seconds for a round's replies to reach the fakes
POLL = 0.002  # seconds between looks at the fakes' counts
HTTP_TIMEOUT = 30.0  # seconds; a loaded 2-core machine answers in well under one
OK, CREATED = 200, 201
SETTINGS = {
    "PORCH_REPLY_DOMAIN": "bench.example",
    "PORCH_VISITOR_NOTIFY_DELAY": "0",  # see the docstring
    "PORCH_OWNER_NOTIFY_DELAY": "3600",  # queued, never due during the run
}

Post = tuple[str, dict[str, Any], dict[str, str]]  # path, JSON body, headers


@dataclass(frozen=True)
class Round:
    rate: float  # messages (or replies) per second
    relay_us: float  # the relay's CPU per message, microseconds
    others: float  # share of the machine other processes used meanwhile


async def measure(
    relay: servers.Relay, name: str, count: int, work: Callable[[], Awaitable[None]]
) -> Round:
    machine = Machine(relay.pid)
    cpu = relay.cpu_seconds()
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    result = Round(count / elapsed, (relay.cpu_seconds() - cpu) / count * 1e6, machine.others())
    log(
        f"    {name}: {count} in {elapsed:.2f} s, {result.rate:,.0f}/s; relay CPU "
        f"{result.relay_us:.0f} µs each, busy {result.relay_us * count / 1e6 / elapsed:.0%} "
        f"of a core; others {result.others:.0%}"
    )
    return result


async def post_all(http: httpx.AsyncClient, requests: list[Post], status: int) -> None:
    """POST each (path, JSON body, headers), CLIENTS at a time; each must answer `status`."""

    async def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        response = await http.post(path, json=body, headers=headers)
        if response.status_code != status:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:200]}")

    await clients.bounded(CLIENTS, [functools.partial(post, *request) for request in requests])


class Telegram:
    """The bot's chats: CONVERSATIONS customers, each with a thread already."""

    def __init__(self, relay: servers.Relay, api: FakeBotApi, channel: str, secret: str) -> None:
        self.relay = relay
        self.api = api
        self.path = f"/v1/channels/{channel}/webhook"
        self.headers = telegram_headers(secret)
        self.update_ids = itertools.count(1)
        self.threads: list[str] = []

    @classmethod
    async def connect(cls, relay: servers.Relay, api: FakeBotApi) -> Telegram:
        out = await servers.porch_cli(
            relay.data_dir,
            {**relay.env, "PORCH_PUBLIC_URL": relay.http_url},
            *("channel", "add", servers.SITE, "telegram", "--bot-token", BOT_TOKEN),
        )
        webhook = api.webhook(BOT_TOKEN)
        if webhook is None:
            raise RuntimeError("`porch channel add` set no webhook on the fake Bot API")
        return cls(relay, api, json.loads(out)["id"], webhook.secret_token)

    def updates(self, name: str, per_chat: int) -> list[Post]:
        # Chat by chat within each pass: the clients in flight write to different chats.
        return [
            (
                self.path,
                telegram_update(next(self.update_ids), FIRST_CHAT + chat, f"{name} {n} {chat}"),
                self.headers,
            )
            for n in range(per_chat)
            for chat in range(CONVERSATIONS)
        ]

    async def start(self, http: httpx.AsyncClient) -> None:
        """Each chat's first message starts its thread: not measured."""
        await post_all(http, self.updates("hello", 1), OK)
        response = await http.get("/v1/owner/threads", headers=owner_auth(self.relay))
        response.raise_for_status()
        self.threads = [
            t["id"] for t in response.json()["threads"] if t["last_message"]["via"] == "telegram"
        ]
        if len(self.threads) != CONVERSATIONS:
            raise RuntimeError(f"{CONVERSATIONS} chats started {len(self.threads)} threads")

    def delivered(self) -> int:
        calls = self.api.calls("sendMessage")
        refused = [call for call in calls if call.status not in (None, OK)]
        if refused:
            raise RuntimeError(f"the fake Bot API refused a sendMessage: {refused[0]}")
        return len(calls)


class Widget:
    """CONVERSATIONS widget visitors, each with a thread and a confirmed email address."""

    def __init__(self, relay: servers.Relay, sink: SinkServer) -> None:
        self.relay = relay
        self.sink = sink
        self.tokens: list[str] = []
        self.threads: list[str] = []
        self.client_ids = itertools.count()

    async def start(self, http: httpx.AsyncClient) -> None:
        started: list[dict[str, Any]] = [{}] * CONVERSATIONS

        async def one(i: int) -> None:
            response = await http.post(
                f"/v1/sites/{servers.SITE}/threads", json={"body": f"hello {i}"}
            )
            if response.status_code != CREATED:
                raise RuntimeError(f"starting thread {i}: {response.status_code} {response.text}")
            started[i] = response.json()
            contact = await http.post(
                "/v1/thread/contact",
                json={"email": email_of(i)},
                headers=bearer(started[i]["token"]),
            )
            contact.raise_for_status()

        await clients.bounded(CLIENTS, [functools.partial(one, i) for i in range(CONVERSATIONS)])
        self.tokens = [s["token"] for s in started]
        self.threads = [s["thread"]["id"] for s in started]
        await self.confirm_emails()

    async def confirm_emails(self) -> None:
        """As if each visitor answered an email of ours (as good as opening its link),
        through the store, as clients.seed_conversations writes to the relay's database."""
        store = open_store(Config(data_dir=self.relay.data_dir))
        await store.open()
        try:
            for i, thread in enumerate(self.threads):
                if not await store.confirm_email_by_reply(thread, email_of(i)):
                    raise RuntimeError(f"could not confirm {email_of(i)} for thread {thread}")
        finally:
            await store.close()

    def messages(self, name: str, per_thread: int) -> list[Post]:
        return [
            (
                "/v1/thread/messages",
                {"body": f"{name} {n} {i}", "client_id": f"w-{next(self.client_ids)}"},
                bearer(token),
            )
            for n in range(per_thread)
            for i, token in enumerate(self.tokens)
        ]

    def delivered(self) -> int:
        if self.sink.sink.refuse:
            raise RuntimeError("the SMTP sink refuses mail")
        return self.sink.sink.count


def email_of(i: int) -> str:
    return f"visitor{i}@customers.example"


def owner_auth(relay: servers.Relay) -> dict[str, str]:
    return bearer(relay.owner_token)


async def replies(
    http: httpx.AsyncClient,
    relay: servers.Relay,
    name: str,
    threads: list[str],
    delivered: Callable[[], int],
) -> Round:
    """The owner replies once in each thread; until every reply has been delivered."""
    before = delivered()
    requests = [
        (
            f"/v1/owner/threads/{thread}/messages",
            {"body": f"{name}: thanks, on its way", "client_id": f"{name}-{n}"},
            owner_auth(relay),
        )
        for n, thread in enumerate(threads)
    ]

    async def work() -> None:
        started = time.perf_counter()
        await post_all(http, requests, CREATED)
        log(f"    {name}: replies posted in {time.perf_counter() - started:.2f} s")
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while delivered() - before < len(threads):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name}: {delivered() - before} of {len(threads)} replies delivered"
                    f" after {DELIVERY_TIMEOUT} s"
                )
            await asyncio.sleep(POLL)

    return await measure(relay, name, len(threads), work)


def stored(relay: servers.Relay, via: str) -> int:
    """Messages of `via` in the relay's database: what a 200 or 201 claimed is there."""
    path = Config(data_dir=relay.data_dir).database_path
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT COUNT(*) FROM messages WHERE via = ?", (via,)).fetchone()
    return int(row[0])


@contextlib.contextmanager
def fakes() -> Iterator[tuple[FakeBotApi, SinkServer]]:
    with FakeBotApi() as api:
        api.add_bot(BOT_TOKEN, "bench_bot")
        sink = SinkServer(servers.free_port()).start()
        try:
            yield api, sink
        finally:
            sink.stop()


def median(rounds: list[Round], field: Callable[[Round], float]) -> float:
    return statistics.median(field(r) for r in rounds[1:])  # the warm-up is not counted


def noise(*sides: list[Round]) -> str:
    return noisy(r.others for side in sides for r in side[1:])  # the warm-ups not counted


async def run() -> list[Row]:
    log(
        f"apps: {CLIENTS} clients, {CONVERSATIONS} conversations a side;"
        f" inbound {ROUNDS} rounds of {CONVERSATIONS * PER_ROUND} messages,"
        f" outbound {REPLY_ROUNDS} rounds of {CONVERSATIONS} replies; first rounds warm up"
    )
    inbound: dict[str, list[Round]] = {"telegram": [], "widget": []}
    outbound: dict[str, list[Round]] = {"telegram": [], "email": []}
    with fakes() as (api, sink):
        settings = {
            **SETTINGS,
            "PORCH_TELEGRAM_API_URL": api.url,
            "PORCH_SMTP_URL": sink.url,
        }
        async with (
            servers.relay(settings=settings) as relay,
            httpx.AsyncClient(
                base_url=relay.http_url,
                trust_env=False,
                timeout=HTTP_TIMEOUT,
                limits=httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS),
            ) as http,
        ):
            telegram = await Telegram.connect(relay, api)
            widget = Widget(relay, sink)
            await telegram.start(http)
            await widget.start(http)
            count = CONVERSATIONS * PER_ROUND
            for n in range(ROUNDS):
                updates = telegram.updates(f"t{n}", PER_ROUND)
                send = functools.partial(post_all, http, updates, OK)
                inbound["telegram"].append(await measure(relay, f"telegram in r{n}", count, send))
                messages = widget.messages(f"w{n}", PER_ROUND)
                send = functools.partial(post_all, http, messages, CREATED)
                inbound["widget"].append(await measure(relay, f"widget in r{n}", count, send))
            expected = CONVERSATIONS * (1 + ROUNDS * PER_ROUND)
            for via in ("telegram", "widget"):
                if stored(relay, via) != expected:
                    raise RuntimeError(
                        f"{stored(relay, via)} {via} messages stored, not {expected}"
                    )
            if telegram.delivered() or widget.delivered():
                raise RuntimeError("something was delivered before the owner replied")
            for n in range(REPLY_ROUNDS):
                outbound["telegram"].append(
                    await replies(http, relay, f"tg-r{n}", telegram.threads, telegram.delivered)
                )
                outbound["email"].append(
                    await replies(http, relay, f"mail-r{n}", widget.threads, widget.delivered)
                )
            total = REPLY_ROUNDS * CONVERSATIONS
            if telegram.delivered() != total or widget.delivered() != total:
                raise RuntimeError(
                    f"expected {total} deliveries a side, got {telegram.delivered()}"
                    f" sendMessage and {widget.delivered()} emails"
                )

    tg_in, widget_in = inbound["telegram"], inbound["widget"]
    tg_out, email_out = outbound["telegram"], outbound["email"]
    return [
        Row(
            "telegram webhook ingest (msg/s)",
            median(tg_in, lambda r: r.rate),
            "msg/s",
            median(widget_in, lambda r: r.rate),
            at_least_ratio(0.5, "widget POST /v1/thread/messages"),
            noise(tg_in, widget_in),
        ),
        Row(
            "  relay CPU per message, webhook (µs)",
            median(tg_in, lambda r: r.relay_us),
            "µs",
            median(widget_in, lambda r: r.relay_us),
        ),
        Row(
            "telegram replies delivered (msg/s)",
            median(tg_out, lambda r: r.rate),
            "msg/s",
            median(email_out, lambda r: r.rate),
            at_least_ratio(1, "email to a confirmed address"),
            noise(tg_out, email_out),
        ),
        Row(
            "  relay CPU per reply, telegram (µs)",
            median(tg_out, lambda r: r.relay_us),
            "µs",
            median(email_out, lambda r: r.relay_us),
        ),
    ]
