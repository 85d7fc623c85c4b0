"""A PostgreSQL write batch inserts its planned messages in one statement
(relay/store/planned.py): each op gets the row it would have inserted itself, a thread's
order holds (its seqs and its times), and an op that strays from its plan makes the
batch run again op by op."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from relay.conversations import Actor, Conversations
from relay.models import Author, Via, utc_now
from relay.store import Store, bridge
from relay.store.engine import BatchFailed, run_batch
from relay.store.messages import Inserted, insert_message
from relay.store.pg_connection import PgConnection
from relay.store.planned import NewMessage, Planned, insert_planned
from relay.store.postgres import PostgresStore
from relay.store.rows import Db
from tests.pg import BOTH_ENGINES, connect

NOW = "2026-12-07T10:00:00.000000Z"
THREADS = ("t_a", "t_b", "t_c")


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[PgConnection]:
    """The relay's schema, a site, and an open thread per THREADS (t_c closed)."""
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    conn = PgConnection(await asyncpg.connect(pg_url))
    await conn.conn.execute(
        "INSERT INTO sites (id, name, owner_emails, origins, settings, created_at)"
        " VALUES ('alpha', 'Alpha', '[]', '[]', '{}', $1)",
        NOW,
    )
    for thread in THREADS:
        visitor = "v" + thread
        await conn.conn.execute(
            "INSERT INTO visitors (id, site_id, created_at, last_seen_at)"
            " VALUES ($1, 'alpha', $2, $2)",
            visitor,
            NOW,
        )
        await conn.conn.execute(
            "INSERT INTO threads (id, site_id, visitor_id, status, created_at, updated_at)"
            " VALUES ($1, 'alpha', $2, $3, $4, $4)",
            thread,
            visitor,
            "closed" if thread == "t_c" else "open",
            NOW,
        )
    yield conn
    await conn.conn.close()


def plan(thread: str, body: str, client_id: str | None = None) -> NewMessage:
    return NewMessage(thread, Author.VISITOR, body, Via.WIDGET, client_id)


def post(planned: NewMessage, then: str = "") -> Planned[Inserted | None]:
    """An op as Conversations.post makes one: its message first; `then`, an automatic
    reply in the same thread right after it."""

    def op(db: Db) -> tuple[Inserted | None, list[Any]]:
        p = planned
        now = utc_now()
        inserted = insert_message(db, p.thread_id, p.author, p.body, p.via, p.client_id, now)
        if then:
            insert_message(db, p.thread_id, Author.SYSTEM, then, p.via, None, utc_now())
        return inserted, []

    return Planned(op, planned)


async def batch(db: PgConnection, ops: list[Any]) -> list[Any]:
    outcomes = await bridge.run(partial_batch, db, ops)
    assert all(ok for ok, _ in outcomes), outcomes
    return [value[0] for _, value in outcomes]


def partial_batch(db: Db, ops: list[Any]) -> Any:
    return run_batch(db, ops, isolated=False, ahead=insert_planned)


async def stored(db: PgConnection) -> list[tuple[int, str, str, str]]:
    rows = await db.conn.fetch("SELECT seq, thread_id, author, body FROM messages ORDER BY seq")
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_batch_inserts_its_planned_messages_as_each_op_would(db: PgConnection) -> None:
    before = utc_now()
    results = await batch(
        db, [post(plan("t_a", "first")), post(plan("t_b", "second", "c1")), post(plan("t_c", "x"))]
    )
    assert [(r.message.seq, r.message.thread, r.site, r.was_closed) for r in results] == [
        (1, "t_a", "alpha", False),
        (2, "t_b", "alpha", False),
        (3, "t_c", "alpha", True),  # closed when it came: the caller reopens it
    ]
    assert results[1].message.client_id == "c1"
    # Stamped with the batch's time, when it inserted them (each op's own would be later).
    times = await db.conn.fetch("SELECT created_at FROM messages ORDER BY seq")
    assert [r.message.created_at for r in results] == [row[0] for row in times]
    assert len({r.message.created_at for r in results}) == 1 and times[0][0] >= before
    assert await stored(db) == [
        (1, "t_a", "visitor", "first"),
        (2, "t_b", "visitor", "second"),
        (3, "t_c", "visitor", "x"),
    ]
    # The triggers ran for each row: the threads' last seq and the visitor's read cursor.
    threads = await db.conn.fetch("SELECT id, last_seq, visitor_read_seq FROM threads ORDER BY id")
    assert [tuple(row) for row in threads] == [("t_a", 1, 1), ("t_b", 2, 2), ("t_c", 3, 3)]


async def test_a_thread_keeps_its_order_and_a_known_client_id_inserts_nothing(
    db: PgConnection,
) -> None:
    await batch(db, [post(plan("t_b", "earlier", "dup"))])  # alone: inserted by its op
    results = await batch(
        db,
        [
            post(plan("t_a", "hello", "a1"), then="We are closed until 9."),
            post(plan("t_b", "again", "dup")),  # already there: no row, as alone
            post(plan("t_a", "still there?", "a2")),  # t_a's second: after its reply
            post(plan("t_nowhere", "lost")),  # no such thread: no row
        ],
    )
    assert results[1] is None and results[3] is None
    # The known client_id took seq 3 and left it unused, as its op alone would have: the
    # seq is drawn before the conflict is found. Seqs only ever ascend; gaps are allowed.
    assert await stored(db) == [
        (1, "t_b", "visitor", "earlier"),
        (2, "t_a", "visitor", "hello"),
        (4, "t_a", "system", "We are closed until 9."),
        (5, "t_a", "visitor", "still there?"),
    ]
    assert results[2].message.seq == 5


async def test_an_op_that_strays_from_its_plan_makes_the_batch_run_op_by_op(
    db: PgConnection,
) -> None:
    def other(db: Db) -> tuple[None, list[Any]]:
        insert_message(db, "t_b", Author.VISITOR, "not what it said", Via.WIDGET, None, NOW)
        return None, []

    def nothing(db: Db) -> tuple[None, list[Any]]:
        return None, []  # said it would insert, never did

    for stray in (Planned(other, plan("t_b", "planned")), Planned(nothing, plan("t_b", "p"))):
        with pytest.raises(BatchFailed) as failed:
            await bridge.run(partial_batch, db, [post(plan("t_a", "fine")), stray])
        assert "planned" in str(failed.value.__cause__)
        assert await stored(db) == []  # all rolled back, the isolated run is the store's
        assert not db.ahead


async def test_the_store_gives_each_concurrent_post_its_row_even_beside_a_stray(
    db: PgConnection, pg_url: str
) -> None:
    """Through the store's writer, however its batches fall: each op its own row, in
    each thread's order; a batch with an op that strays runs again op by op."""
    store = PostgresStore(pg_url)
    await store.open()

    def stray(db: Db) -> tuple[str, list[Any]]:
        insert_message(db, "t_c", Author.VISITOR, "stray", Via.WIDGET, None, NOW)
        return "stray", []

    try:
        ops: list[Any] = [post(plan(THREADS[n % 3], f"m{n}", f"c{n}")) for n in range(60)]
        ops.insert(30, Planned(stray, plan("t_c", "said otherwise")))
        results = await asyncio.gather(*(store.write(op) for op in ops))
    finally:
        await store.close()
    assert results[30] == "stray"
    posted = [r for r in results if r != "stray"]
    assert len({r.message.seq for r in posted}) == 60
    rows = await stored(db)
    assert len(rows) == 61
    for thread in THREADS:  # each thread's messages in the order they were sent
        bodies = [body for _, t, _, body in rows if t == thread and body != "stray"]
        assert bodies == [f"m{n}" for n in range(60) if THREADS[n % 3] == thread]
    assert {r.message.body: r.message.seq for r in posted} == {
        body: seq for seq, _, _, body in rows if body != "stray"
    }


@BOTH_ENGINES
async def test_a_thread_s_messages_keep_their_times_in_seq_order(store: Store) -> None:
    """A signed-in visitor writes from two devices at once: a start that continues their
    thread (stamped when its op runs) and a post in the widget (stamped when asked for),
    queued behind a busy writer in that order. The post gets the later seq and an
    earlier time; the thread's updated_at goes back to it."""
    talk = Conversations(store)
    visitor = Actor(Author.VISITOR, Via.WIDGET)
    first = await talk.start(
        "alpha", body="hello", client_id=None, name=None, page=None, external_id="u1"
    )
    thread = first.thread.id

    entered, release = threading.Event(), threading.Event()

    def busy(db: Db) -> tuple[None, list[Any]]:  # the writer, on an earlier batch
        entered.set()
        assert release.wait(10)
        return None, []

    earlier = asyncio.create_task(store.write(busy))
    assert await asyncio.to_thread(entered.wait, 10)

    async def open_the_writer() -> None:
        asked = utc_now()  # after the post took its time: both are queued by now
        while utc_now() <= asked:  # the clock's next millisecond (utc_now's precision)
            pass
        release.set()

    continued, (posted, _), _ = await asyncio.gather(
        talk.start(
            "alpha", body="other device", client_id=None, name=None, page=None, external_id="u1"
        ),
        talk.post(thread, visitor, "from the widget", None),
        open_the_writer(),
    )
    await earlier
    assert continued.thread.id == thread and continued.message.seq < posted.seq
    with connect(store) as db:
        rows = db.execute(
            "SELECT seq, body, created_at FROM messages WHERE thread_id = ? ORDER BY seq",
            (thread,),
        ).fetchall()
        updated_at = db.execute(
            "SELECT updated_at FROM threads WHERE id = ?", (thread,)
        ).fetchone()[0]
    times = [row["created_at"] for row in rows]
    assert times == sorted(times), [tuple(row) for row in rows]
    assert updated_at == max(times)  # the thread's last activity never goes back
