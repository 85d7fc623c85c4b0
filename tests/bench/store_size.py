"""Store size: the relay's CPU per message with 1,000,000 messages stored versus 10,000.

A message's cost must not grow with what the store already holds (issue 20: a status
subquery that scanned every thread, a visitor's thread found by scanning them all).
Two relays run side by side on SQLite, identical but for their store, seeded before
they start: SIZES messages in conversations of PER_THREAD over SITES sites (the bench
site among them), each conversation's owner notified once by email, all indexed for
search. Then the same load on each, rounds alternating: visitors of new conversations
send over the live socket (throughput.py's client, an owner socket counting arrivals),
then over HTTP (`POST /v1/thread/messages`, where every request finds the visitor's
thread). Email is on (an SMTP sink in this process) with owners' notifications queued,
never due during the run: each message queues or joins one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import random
import sqlite3
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from relay.config import Config
from tests.bench import clients, servers, throughput
from tests.bench.harness import Machine, Row, Target, log, noisy
from tests.mail.smtp_sink import SinkServer
from tests.support import bearer

SIZES = (10_000, 1_000_000)  # messages stored: the baseline, then ours
SITES = 100
PER_THREAD = 20  # messages per conversation: 1M messages are 50,000 conversations
VOCABULARY = 5_000  # words the seeded messages are made of (the search index's terms)
PER_SOCKET = 100  # messages per visitor socket in a socket round
HTTP_PER_VISITOR = 6  # messages per visitor in an HTTP round
HTTP_CLIENTS = 16
ROUNDS = 4  # each kind, each relay: the first warms up and is not counted
HTTP_TIMEOUT = 30.0  # seconds; a loaded 2-core machine answers in well under one
CREATED = 201
# Flat: the large store may cost a tenth more per message, no more.
FLAT = Target(at_most=True, value=1.1, of_ratio=True, text="≤ 1.1× 10k")
SETTINGS = {
    "PORCH_REPLY_DOMAIN": "bench.example",
    "PORCH_OWNER_NOTIFY_DELAY": "3600",  # queued, never due during the run
}


def seed(path: Path, count: int) -> None:
    """`count` messages written with plain sqlite3 into the schema the relay migrated, in
    one transaction (the bookkeeping trigger keeps the threads' cursors right), then
    indexed for search as the relay would have."""
    rnd = random.Random(count)
    sites = [servers.SITE, *(f"site-{n}" for n in range(1, SITES))]
    threads = max(1, count // PER_THREAD)
    words = [
        "".join(rnd.choices("abcdefghijklmnopqrstuvwxyz", k=rnd.randint(3, 9)))
        for _ in range(VOCABULARY)
    ]
    phrases = [" ".join(rnd.choices(words, k=5)) for _ in range(VOCABULARY)]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    # A second a message (a year is 31M): one timestamp string per thousand suffices.
    stamps = [_stamp(start + timedelta(seconds=n * 1000)) for n in range(count // 1000 + 1)]
    thread_ids = [_id(rnd, "t") for _ in range(threads)]
    visitor_ids = [_id(rnd, "v") for _ in range(threads)]

    def messages() -> Iterator[tuple[str, ...]]:
        for n in range(count):
            t = rnd.randrange(threads)
            author = "owner" if n % 3 == 2 else "visitor"
            body = f"{phrases[rnd.randrange(VOCABULARY)]} {phrases[rnd.randrange(VOCABULARY)]}"
            yield (
                thread_ids[t],
                sites[t % SITES],
                author,
                body,
                "widget",
                f"s{n}",
                stamps[n // 1000],
            )

    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA cache_size = -262144")  # 256 MiB, for this one write only
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO sites (id, name, owner_emails, origins, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (site, site, f'["owner@{site}.example"]', f'["https://{site}.example"]', stamps[0])
                for site in sites[1:]
            ],
        )
        db.executemany(
            "INSERT INTO visitors (id, site_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
            [(v, sites[i % SITES], stamps[0], stamps[0]) for i, v in enumerate(visitor_ids)],
        )
        db.executemany(
            "INSERT INTO threads (id, site_id, visitor_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (t, sites[i % SITES], visitor_ids[i], stamps[0], stamps[0])
                for i, t in enumerate(thread_ids)
            ],
        )
        # Row by row, the bookkeeping trigger and two indexes would triple the time: they
        # are set aside and made again from their own SQL, the threads' cursors set once.
        aside = db.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'messages' AND sql IS NOT NULL"
            " AND (type = 'trigger' AND name = 'messages_bookkeeping'"
            " OR type = 'index' AND name IN ('messages_thread_seq', 'messages_site_seq'))"
        ).fetchall()
        assert len(aside) == 3, "the schema changed: look at what seed() sets aside"
        for name in (
            "TRIGGER messages_bookkeeping",
            "INDEX messages_thread_seq",
            "INDEX messages_site_seq",
        ):
            db.execute(f"DROP {name}")
        db.executemany(
            "INSERT INTO messages (thread_id, site_id, author, body, via, client_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            messages(),
        )
        for (sql,) in aside:
            db.execute(sql)
        db.execute(
            "UPDATE threads SET last_seq = m.seq, owner_read_seq = m.seq,"
            " visitor_read_seq = m.seq, updated_at = m.created_at FROM"
            " (SELECT thread_id, MAX(seq) AS seq, MAX(created_at) AS created_at FROM messages"
            " GROUP BY thread_id) AS m WHERE m.thread_id = threads.id"
        )
        db.execute(
            "INSERT INTO outbox (kind, thread_id, recipient, not_before, status, upto_seq,"
            " created_at, updated_at) SELECT 'owner_notify', t.id, 'owner@' || t.site_id"
            " || '.example', t.updated_at, 'sent', t.last_seq, t.updated_at, t.updated_at"
            " FROM threads t"
        )
        db.execute("INSERT INTO messages_fts (rowid, body) SELECT seq, body FROM messages")
        db.execute("UPDATE search_indexed SET seq = (SELECT MAX(seq) FROM messages)")
        db.execute("COMMIT")


def _id(rnd: random.Random, prefix: str) -> str:
    """Like relay.store.rows.new_id (96 bits, URL-safe), from a seeded generator."""
    return f"{prefix}_{base64.urlsafe_b64encode(rnd.randbytes(12)).decode()}"


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def seeded(count: int, data_dir: Path) -> None:
    began = time.perf_counter()
    path = Config(data_dir=data_dir).database_path
    await asyncio.to_thread(seed, path, count)
    log(f"  seeded {count:,} messages in {time.perf_counter() - began:.1f} s")


class Side:
    """One relay and its load: visitors on sockets (throughput.RelaySide), then over HTTP."""

    def __init__(self, name: str, relay: servers.Relay, sockets: throughput.RelaySide) -> None:
        self.name = name
        self.relay = relay
        self.sockets = sockets
        self.socket_us: list[float] = []
        self.http_us: list[float] = []
        self.others: list[float] = []

    async def socket_round(self, n: int) -> None:
        result = await self.sockets.round(f"{self.name} r{n}", PER_SOCKET)
        self.socket_us.append(result.server_us)
        self.others.append(result.others)

    async def http_round(self, n: int, http: httpx.AsyncClient) -> None:
        tokens = self.sockets.tokens
        count = len(tokens) * HTTP_PER_VISITOR
        url = f"{self.relay.http_url}/v1/thread/messages"

        async def post(token: str, client_id: str) -> None:
            body = {"body": f"over HTTP {client_id}", "client_id": client_id}
            response = await http.post(url, json=body, headers=bearer(token))
            if response.status_code != CREATED:
                raise RuntimeError(f"posting: {response.status_code} {response.text}")

        jobs = [
            functools.partial(post, token, f"h{n}-{i}-{k}")
            for k in range(HTTP_PER_VISITOR)
            for i, token in enumerate(tokens)
        ]
        machine = Machine(self.relay.pid)
        cpu = self.relay.cpu_seconds()
        began = time.perf_counter()
        self.sockets.tally.expect(count)
        await clients.bounded(HTTP_CLIENTS, jobs)
        await (
            self.sockets.delivered()
        )  # the owner socket has them all: the next round's count starts clean
        elapsed = time.perf_counter() - began
        us = (self.relay.cpu_seconds() - cpu) / count * 1e6
        self.http_us.append(us)
        self.others.append(machine.others())
        log(
            f"    {self.name} http r{n}: {count} in {elapsed:.2f} s; server CPU per message"
            f" {us:.0f} µs; others {self.others[-1]:.0%}"
        )


async def run() -> list[Row]:
    small, large = SIZES
    log(
        f"store size: {small:,} vs {large:,} messages stored ({SITES} sites,"
        f" {PER_THREAD} a conversation); {throughput.SOCKETS} sockets x {PER_SOCKET}"
        f" and {HTTP_PER_VISITOR} HTTP posts each, {ROUNDS} rounds a side, the first a warm-up"
    )
    sink = SinkServer(servers.free_port()).start()
    try:
        settings = {**SETTINGS, "PORCH_SMTP_URL": sink.url}
        async with (
            servers.relay(settings=settings, prepare=functools.partial(seeded, small)) as few,
            servers.relay(settings=settings, prepare=functools.partial(seeded, large)) as many,
            httpx.AsyncClient(
                trust_env=False,
                timeout=HTTP_TIMEOUT,
                limits=httpx.Limits(
                    max_connections=HTTP_CLIENTS, max_keepalive_connections=HTTP_CLIENTS
                ),
            ) as http,
        ):
            sides = [
                Side(f"{small // 1000}k", few, await throughput.RelaySide.open(few)),
                Side(f"{large // 1_000_000}M", many, await throughput.RelaySide.open(many)),
            ]
            try:
                for n in range(ROUNDS):
                    for side in sides:
                        await side.socket_round(n)
                        await side.http_round(n, http)
            finally:
                for side in sides:
                    await side.sockets.close()
    finally:
        sink.stop()
    base, ours = sides
    note = noisy([*base.others[2:], *ours.others[2:]])  # the warm-ups not counted

    def counted(values: list[float]) -> float:
        return statistics.median(values[1:])

    return [
        Row(
            "store size: CPU per message, 1M vs 10k (µs)",
            counted(ours.socket_us),
            "µs",
            counted(base.socket_us),
            FLAT,
            note,
        ),
        Row(
            "  same, over HTTP (µs)",
            counted(ours.http_us),
            "µs",
            counted(base.http_us),
            FLAT,
            note,
        ),
    ]
