"""Messages a write batch inserts in one statement, on PostgreSQL (relay/store/postgres.py).

On PostgreSQL each statement of a write op is a round trip of the process's one writer
connection; at a thousand visitor messages a second, those round trips are the writer's
queue, and the fan-out's p99. An op that says ahead which message it inserts first
(Planned) lets the batch insert the messages of its leading planned ops, one per thread,
in one INSERT ... SELECT FROM unnest; each op's own insert_message then takes its row
without a round trip.

Each row is the one its op would have inserted, in the same transaction, before anything
else the op does. What moves is only the order across threads (a message of thread B
may get its seq before thread A's automatic reply), and nothing an op does after its
insert reads another thread's messages. An op that does not take its row, or asks for
another than it planned, fails the batch, which then runs again one op at a time without
any of this (run_batch's isolated run). SQLite inserts each in its op: no round trip to
save.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from relay.models import Author, Via, utc_now
from relay.store.engine import StoreEvent, WriteOp
from relay.store.pg_connection import PgConnection
from relay.store.rows import Db

T = TypeVar("T")

# One statement for a batch's planned messages, kept in the order of its ops (seqs
# ascend with it). A thread that does not exist, or already has the client_id, gives
# no row, as insert_message's own statement would.
INSERT_PLANNED = (
    "INSERT INTO messages (thread_id, site_id, author, body, via, client_id, created_at,"
    " attachments, answer_id)"
    " SELECT t.id, t.site_id, p.author, p.body, p.via, p.client_id, ?::text, '[]', NULL"
    " FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[])"
    " WITH ORDINALITY AS p(thread_id, author, body, via, client_id, n)"
    " JOIN threads t ON t.id = p.thread_id ORDER BY p.n"
    " ON CONFLICT (thread_id, client_id) DO NOTHING"
    " RETURNING seq, thread_id, site_id,"
    " (SELECT status FROM threads s WHERE s.id = messages.thread_id)"
)


@dataclass(frozen=True)
class NewMessage:
    """What insert_message is called with first, files, answers and time aside: the
    batch stamps the messages it inserts with its own time, as each op would with its
    (a thread's messages keep their times in seq order)."""

    thread_id: str
    author: Author
    body: str
    via: Via
    client_id: str | None


@dataclass(frozen=True)
class Planned(Generic[T]):
    """A write op that starts by inserting `message` (and only then reads or writes
    anything else)."""

    op: WriteOp[T]
    message: NewMessage

    def __call__(self, db: Db) -> tuple[T, list[StoreEvent]]:
        return self.op(db)


def insert_planned(db: Db, ops: list[WriteOp[Any]]) -> Callable[[], None]:
    """Insert the messages of the leading planned ops, one per thread (a thread's second
    message waits for its op, after the first op's automatic replies); the check, once
    the ops have run, that each took its own."""
    leading: dict[str, NewMessage] = {}
    for op in ops:
        if not isinstance(op, Planned) or op.message.thread_id in leading:
            break
        leading[op.message.thread_id] = op.message
    if len(leading) < 2 or not isinstance(db, PgConnection):  # nothing saved
        return _nothing_left
    plans = list(leading.values())
    now = utc_now()
    rows = db.execute(
        INSERT_PLANNED,
        (
            now,
            [p.thread_id for p in plans],
            [p.author.value for p in plans],
            [p.body for p in plans],
            [p.via.value for p in plans],
            [p.client_id for p in plans],
        ),
    ).fetchall()
    by_thread = {row[1]: (row[0], row[2], row[3], now) for row in rows}
    for plan in plans:
        db.ahead[plan.thread_id] = (plan, by_thread.get(plan.thread_id))

    def each_taken() -> None:
        if db.ahead:
            left = sorted(db.ahead)
            db.ahead.clear()
            raise RuntimeError(f"planned messages not taken by their ops: {left}")

    return each_taken


def take_planned(db: Db, message: NewMessage) -> tuple[bool, Any]:
    """(True, the row insert_planned inserted for `message`: (seq, site, thread status,
    created_at), or None if none) if it did; (False, None) if the op is to insert it
    itself."""
    if not isinstance(db, PgConnection) or message.thread_id not in db.ahead:
        return False, None
    plan, row = db.ahead.pop(message.thread_id)
    if plan != message:
        raise RuntimeError(f"an op inserted another message than it planned in {plan.thread_id}")
    return True, row


def _nothing_left() -> None:
    pass
