"""The statements of a conversation, run inside a transaction of the store's writer by
the one write path (relay.conversations). Plain functions of a connection."""

from __future__ import annotations

from typing import NamedTuple

from relay.models import Author, Message, Thread, ThreadStatus, Via
from relay.store.rows import Db, message_from_row, thread_from_row


class Inserted(NamedTuple):
    message: Message
    site: str
    was_closed: bool  # the thread, when the message came (a visitor's reopens it)


def insert_message(
    db: Db,
    thread_id: str,
    author: Author,
    body: str,
    via: Via,
    client_id: str | None,
    now: str,
) -> Inserted | None:
    """Insert into an existing thread, or None if there is no such thread or it already
    has this client_id. One statement: this is the hot path (the thread's last seq, read
    cursor and the visitor's last visit follow by trigger; the thread's status comes
    back with the seq, so an open thread costs no second statement)."""
    row = db.execute(
        "INSERT INTO messages (thread_id, site_id, author, body, via, client_id, created_at)"
        " SELECT id, site_id, ?, ?, ?, ?, ? FROM threads WHERE id = ?"
        " ON CONFLICT (thread_id, client_id) DO NOTHING"
        " RETURNING seq, site_id, (SELECT status FROM threads WHERE id = thread_id)",
        (author.value, body, via.value, client_id, now, thread_id),
    ).fetchone()
    if row is None:
        return None
    message = Message(row[0], thread_id, author, body, via, client_id, now)
    return Inserted(message, row[1], row[2] == ThreadStatus.CLOSED.value)


def thread_by_id(db: Db, thread_id: str) -> Thread | None:
    row = db.execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchone()
    return thread_from_row(row) if row else None


def message_by_client_id(db: Db, thread_id: str, client_id: str) -> Message | None:
    row = db.execute(
        "SELECT * FROM messages WHERE thread_id = ? AND client_id = ?", (thread_id, client_id)
    ).fetchone()
    return message_from_row(row) if row else None
