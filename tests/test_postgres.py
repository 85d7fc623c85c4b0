"""PostgreSQL mode: the SQL bridge, several processes on one database (LISTEN/NOTIFY),
`porch migrate` and `porch copy-db`. The behaviour shared with SQLite is tested on
both engines by the modules marked BOTH_ENGINES (tests/pg.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from relay.conversations import Actor
from relay.conversations.presence import REMOTE_TTL, Presence
from relay.models import Author, Event, MessageAdded, Via
from relay.store import Listeners
from relay.store.pg_connection import translate
from relay.store.postgres import PostgresStore
from relay.tokens import Tokens
from tests.mail.conftest import mail_relay
from tests.mail.smtp_sink import SinkServer
from tests.pg import SERVER
from tests.support import (
    ALPHA,
    ALPHA_ORIGIN,
    SECRET,
    PorchProcess,
    RunningRelay,
    add_site,
    bearer,
    free_port,
    open_live,
    open_live_url,
    porch_command,
    porch_env,
    start_thread,
    talk,
)
from tests.test_backup import PDF, files_of, send_files
from tests.test_inbox_api import inbox, inbox_socket, next_frame


def test_translate_numbers_placeholders_as_sqlite_does() -> None:
    assert translate("SELECT ? , ?") == "SELECT $1 , $2"
    # An unnumbered ? takes one more than the largest number so far.
    assert translate("SELECT ?2, ?, ?1") == "SELECT $2, $3, $1"
    assert translate("SELECT '?' , \"a?\" , ?") == "SELECT '?' , \"a?\" , $1"
    assert translate("x IS ?3 AND y IS NOT ?") == (
        "x IS NOT DISTINCT FROM $3 AND y IS DISTINCT FROM $4"
    )
    assert translate("BEGIN IMMEDIATE") == "BEGIN"
    assert translate("UPDATE t SET a = NULL WHERE b IS NULL") == (
        "UPDATE t SET a = NULL WHERE b IS NULL"
    )


async def open_store(url: str) -> tuple[PostgresStore, list[Event]]:
    heard: list[Event] = []
    store = PostgresStore(url, Listeners(committed=heard.append))
    await store.open()
    await asyncio.wait_for(store.listening.wait(), 5)
    return store, heard


async def wait_for(condition: object, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def seqs_of(events: list[Event]) -> list[int]:
    return [e.message.seq for e in events if isinstance(e, MessageAdded)]


async def test_two_processes_get_commit_ordered_seqs_and_hear_everything(pg_url: str) -> None:
    """Two stores on one database stand for two relays: each hears every message of
    both, once, in seq order; seqs have no gap, so a resume cursor never skips one."""
    one, heard_one = await open_store(pg_url)
    two, heard_two = await open_store(pg_url)
    try:
        await one.add_site(ALPHA)
        started = await talk(one).start("alpha", body="hi", client_id=None, name=None, page=None)

        async def send(store: PostgresStore, i: int) -> int:
            message, _ = await talk(store).post(
                started.thread.id, Actor(Author.VISITOR, Via.WIDGET), f"m{i}", f"c{i}"
            )
            return message.seq

        seqs = await asyncio.gather(*(send((one, two)[i % 2], i) for i in range(300)))
        every = sorted([*seqs, started.message.seq])
        assert every == list(range(every[0], every[0] + 301))  # no gap, no double
        for heard in (heard_one, heard_two):
            await wait_for(lambda heard=heard: len(seqs_of(heard)) >= 301)
            assert seqs_of(heard) == every
    finally:
        await one.close()
        await two.close()


async def test_a_listener_that_lost_its_connection_catches_up(pg_url: str) -> None:
    one, heard = await open_store(pg_url)
    two, _ = await open_store(pg_url)
    try:
        await one.add_site(ALPHA)
        started = await talk(one).start("alpha", body="hi", client_id=None, name=None, page=None)
        listens = one.listens
        admin = await asyncpg.connect(SERVER)
        try:  # the listening connections of this test's stores drop (no one else's)
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query = 'LISTEN ' || quote_ident($1)",
                one.channel,
            )
        finally:
            await admin.close()
        sent = [
            (
                await talk(two).post(
                    started.thread.id, Actor(Author.OWNER, Via.INBOX), f"r{i}", None
                )
            )[0].seq
            for i in range(20)
        ]
        await wait_for(lambda: one.listens > listens)  # it listened again, by itself
        await wait_for(lambda: len(seqs_of(heard)) >= 21)
        assert seqs_of(heard) == [started.message.seq, *sent]
    finally:
        await one.close()
        await two.close()


async def test_search_folds_accents_on_postgresql(pg_url: str) -> None:
    store, _ = await open_store(pg_url)
    try:
        await store.add_site(ALPHA)
        await talk(store).start(
            "alpha", body="Une crème brûlée, s'il vous plaît", client_id=None, name="Zoé",
            page=None,
        )  # fmt: skip
        await talk(store).start("alpha", body="Bread", client_id=None, name=None, page=None)
        found = await store.inbox_threads(["alpha"], None, "creme brul")
        assert [s.last_message.body for s in found.threads if s.last_message] == [
            "Une crème brûlée, s'il vous plaît"
        ]
        assert len((await store.inbox_threads(["alpha"], None, "zoe")).threads) == 1
        assert (await store.inbox_threads(["alpha"], None, "'&|!:*")).threads == []
    finally:
        await store.close()


def porch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*porch_command(), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_migrate_applies_once_then_has_nothing_to_do(pg_url: str, tmp_path: Path) -> None:
    env = porch_env(tmp_path, database_url=pg_url)
    first = porch(env, "migrate")
    assert first.returncode == 0, first.stderr
    shipped = sorted(
        p.name for p in (Path(__file__).parents[1] / "relay/migrations/postgres").glob("*.sql")
    )
    assert len(shipped) >= 8
    assert first.stdout.split() == [word for name in shipped for word in ("applied", name)]
    again = porch(env, "migrate")
    assert (again.returncode, again.stdout.strip()) == (0, "The database is up to date.")


async def test_copy_db_moves_every_thread_and_seq(pg_url: str, tmp_path: Path) -> None:
    sqlite_env = porch_env(tmp_path / "old")
    add_site(sqlite_env)
    port = free_port()
    relay = await PorchProcess.start(sqlite_env, port)
    async with httpx.AsyncClient(
        base_url=relay.url, headers={"origin": ALPHA_ORIGIN}, timeout=10
    ) as client:
        visitors = [await start_thread(client, f"hello {i}") for i in range(3)]
        for i in range(5):
            sent = await client.post(
                "/v1/thread/messages",
                headers=bearer(visitors[0]["token"]),
                json={"body": f"more {i}", "client_id": f"m{i}"},
            )
            assert sent.status_code == 201, sent.text
        before = (await client.get("/v1/thread", headers=bearer(visitors[0]["token"]))).json()
    await relay.kill()

    copied = porch({}, "copy-db", str(tmp_path / "old" / "porch.sqlite3"), pg_url)
    assert copied.returncode == 0, copied.stderr
    assert "3 threads" in copied.stdout and "8 messages" in copied.stdout
    assert "last seq 8" in copied.stdout
    refused = porch({}, "copy-db", str(tmp_path / "old" / "porch.sqlite3"), pg_url)
    assert refused.returncode != 0 and "not empty" in refused.stderr

    pg_env = porch_env(tmp_path / "new", database_url=pg_url)
    relay = await PorchProcess.start(pg_env, free_port())
    try:
        async with httpx.AsyncClient(
            base_url=relay.url, headers={"origin": ALPHA_ORIGIN}, timeout=10
        ) as client:
            auth = bearer(visitors[0]["token"])  # the token issued before the move
            after = (await client.get("/v1/thread", headers=auth)).json()
            assert after == before
            sent = await client.post(
                "/v1/thread/messages", headers=auth, json={"body": "moved", "client_id": "x"}
            )
            assert sent.json()["seq"] == 9  # seqs go on after the copied ones
    finally:
        await relay.kill()


async def test_visitor_on_one_relay_owner_on_another_then_that_relay_dies(
    pg_url: str, tmp_path: Path
) -> None:
    env = porch_env(
        tmp_path,
        database_url=pg_url,
        visitor_messages_per_minute="1000",
        ip_messages_per_minute="1000",
    )
    add_site(env)
    a = await PorchProcess.start(env, free_port())
    b = await PorchProcess.start(env, free_port())
    owner_token = Tokens((SECRET,)).owner_token("alpha")
    try:
        async with httpx.AsyncClient(
            base_url=a.url, headers={"origin": ALPHA_ORIGIN}, timeout=10
        ) as client:
            started = await start_thread(client, "on relay A")
        ws_a = a.url.replace("http", "ws") + "/v1/live"
        ws_b = b.url.replace("http", "ws") + "/v1/live"
        visitor = await open_live_url(ws_a, started["token"])
        owner = await open_live_url(ws_b, owner_token, origin=None)
        assert [m["body"] for m in owner.replayed] == ["on relay A"]

        await visitor.send(type="send", body="visitor to owner", client_id="v1")
        frame = await owner.next("message")
        assert frame["message"]["body"] == "visitor to owner"  # A → B, through NOTIFY

        await owner.send(
            type="send", body="owner to visitor", client_id="o1", thread=started["thread"]["id"]
        )
        frame = await visitor.next("message")
        while frame["message"]["author"] != "owner":
            frame = await visitor.next("message")
        assert frame["message"]["body"] == "owner to visitor"  # B → A
        reply_seq = frame["message"]["seq"]
        ack = await owner.next("ack")  # the sending socket: the ack carries it, no copy
        assert ack["seq"] == reply_seq and ack["message"]["body"] == "owner to visitor"

        # The visitor keeps writing; the owner's relay dies in the middle of it.
        stream = [f"stream {i}" for i in range(40)]

        async def write() -> None:
            for i, body in enumerate(stream):
                await visitor.send(type="send", body=body, client_id=f"s{i}")
                await visitor.next("ack")

        writing = asyncio.create_task(write())
        heard: dict[int, str] = {}
        while len(heard) < 10:
            frame = (await owner.next("message"))["message"]
            heard[frame["seq"]] = frame["body"]
        await b.kill()
        owner = await open_live_url(ws_a, owner_token, since=max(heard), origin=None)
        heard.update({m["seq"]: m["body"] for m in owner.replayed})
        while len(heard) < len(stream):
            frame = (await owner.next("message"))["message"]
            heard[frame["seq"]] = frame["body"]
        await writing
        assert [heard[seq] for seq in sorted(heard)] == stream  # nothing missed, in order
        assert list(heard) == sorted(heard)  # and nothing came twice or out of order
        await visitor.ws.close()
        await owner.ws.close()
    finally:
        await a.kill()
        if b.process.returncode is None:
            await b.kill()


def test_a_bad_database_url_is_refused_with_its_name(tmp_path: Path) -> None:
    env = porch_env(tmp_path, database_url="mysql://db.example/porch")
    result = porch(env, "serve")
    assert result.returncode == 2
    assert "PORCH_DATABASE_URL" in result.stderr and "postgresql://host" in result.stderr
    unreachable = porch(
        porch_env(tmp_path, database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x"),
        "site",
        "list",
    )
    assert unreachable.returncode != 0 and "Traceback" not in unreachable.stderr
    assert "cannot open the database postgresql://127.0.0.1" in unreachable.stderr


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
async def test_presence_and_typing_cross_relays(make_relay: Callable[..., RunningRelay]) -> None:
    """The owner looks at the inbox through relay B; a visitor on relay A sees them
    online, and each sees the other typing."""
    a, b = make_relay(), make_relay()
    async with a.client() as client:
        started = await start_thread(client, "hello")
    visitor = await open_live(a, started["token"])
    assert visitor.ready["online"] is False
    async with inbox(b) as page, inbox_socket(page) as owner:
        assert await visitor.next("presence") == {"type": "presence", "online": True}
        await visitor.send(type="typing")
        assert (await next_frame(owner, "typing"))["author"] == "visitor"
        await owner.send(json.dumps({"type": "typing", "thread": started["thread"]["id"]}))
        assert (await visitor.next("typing"))["author"] == "owner"
        await owner.send(json.dumps({"type": "here", "here": False}))  # the tab is hidden
        assert await visitor.next("presence") == {"type": "presence", "online": False}
    await visitor.ws.close()


def test_presence_another_relay_stopped_reporting_is_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    presence = Presence()
    told: list[bool] = []
    with presence.listen("alpha", told.append):
        presence.heard("relay-b", "alpha", True)
        assert presence.online("alpha") and told == [True]
        now = time.monotonic()
        monkeypatch.setattr(time, "monotonic", lambda: now + REMOTE_TTL + 1)
        presence.expire()  # relay B died: it never said it left
        assert not presence.online("alpha") and told == [True, False]


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
async def test_two_relays_send_each_email_once(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    """Both relays run an outbox worker over one outbox: each email leaves once."""
    # Emails due a second later, written through both relays at once: both workers
    # wake for the same due rows.
    relays = [mail_relay(make_relay, sink, owner_notify_delay=1) for _ in range(2)]

    async def visitor(v: int) -> None:
        async with relays[v % 2].client() as client:
            started = await start_thread(client, f"visitor {v}")
            for i in range(2):
                sent = await client.post(
                    "/v1/thread/messages",
                    headers=bearer(started["token"]),
                    json={"body": f"more {i}", "client_id": f"{v}-{i}"},
                )
                assert sent.status_code == 201

    await asyncio.gather(*(visitor(v) for v in range(16)))

    def settled() -> bool:
        with relays[0].db() as db:
            return not db.execute(
                "SELECT 1 FROM outbox WHERE status IN ('pending', 'sending')"
            ).fetchall()

    await wait_for(settled, timeout=30)
    with relays[0].db() as db:
        sent_rows = db.execute("SELECT id FROM outbox WHERE status = 'sent'").fetchall()
    ids = []
    while not sink.sink.empty():
        ids.append((await sink.sink.next())["Message-ID"])
    assert len(ids) == len(set(ids)) == len(sent_rows) >= 16  # every thread told, once


async def test_installations_in_one_database_never_hear_each_other(pg_url: str) -> None:
    """NOTIFY is per database: a relay must not take another schema's seqs for its own
    (it would skip its own messages up to them)."""
    other_url = pg_url.replace("porch_test_", "porch_test_other_")
    other_schema = other_url.split("search_path=")[1].split("%2C")[0]
    admin = await asyncpg.connect(SERVER)
    await admin.execute(f"CREATE SCHEMA {other_schema}")
    mine, heard = await open_store(pg_url)
    other, _ = await open_store(other_url)
    try:
        await other.add_site(ALPHA)
        for i in range(30):
            await talk(other).start("alpha", body=f"o{i}", client_id=None, name=None, page=None)
        await mine.add_site(ALPHA)
        started = await talk(mine).start("alpha", body="mine", client_id=None, name=None, page=None)
        await wait_for(lambda: seqs_of(heard))
        assert seqs_of(heard) == [started.message.seq] == [1]
    finally:
        await mine.close()
        await other.close()
        await admin.execute(f"DROP SCHEMA {other_schema} CASCADE")
        await admin.close()


async def test_copy_db_carries_the_files_checked_against_their_digests(
    make_relay: Callable[..., RunningRelay], pg_url: str, tmp_path: Path
) -> None:
    old = make_relay(data_dir=tmp_path / "old")  # SQLite: the files are in its blobs/
    async with old.client() as client:
        token = (await start_thread(client, "Here is my order"))["token"]
    big = b"".join(b"line %07d\n" % i for i in range(150_000))  # 1.5 MB: two parts
    files = {"order.pdf": PDF, "big.txt": big}
    await send_files(old, token, files)
    old.stop()
    source = tmp_path / "old" / "porch.sqlite3"
    blobs = tmp_path / "old" / "blobs"
    pdf, text = hashlib.sha256(PDF).hexdigest(), hashlib.sha256(big).hexdigest()

    # Elsewhere (--blobs), one file lost and one whose bytes changed: refused, each named.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(blobs, elsewhere)
    (elsewhere / text[:2] / text).unlink()
    missing = porch({}, "copy-db", str(source), pg_url, "--blobs", str(elsewhere))
    assert missing.returncode == 1 and "nothing copied" in missing.stderr
    assert f"not in {elsewhere}: {text}" in missing.stderr
    (elsewhere / text[:2] / text).write_bytes(big.replace(b"line", b"LINE"))
    damaged = porch({}, "copy-db", str(source), pg_url, "--blobs", str(elsewhere))
    assert damaged.returncode == 1 and f"does not hold the bytes of blob {text}" in damaged.stderr
    with old.db() as db:  # nothing was written: the rows wait for the files
        assert db.execute("SELECT COUNT(*) FROM sites").fetchone()[0] > 0
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM sites") == 0
        assert await conn.fetchval("SELECT COUNT(*) FROM blob_parts") == 0
    finally:
        await conn.close()

    copied = porch({}, "copy-db", str(source), pg_url)  # from blobs/ beside the file
    assert copied.returncode == 0, copied.stderr
    assert "2 files (" in copied.stdout
    new = make_relay(data_dir=tmp_path / "new", database_url=pg_url)  # an empty cache
    assert await files_of(new, token) == files
    assert {p.name for p in (tmp_path / "new" / "blobs").rglob("*") if p.is_file()} == {pdf, text}
