"""The statements of a conversation, run inside a transaction of the store's writer by
the one write path (relay.conversations). Plain functions of a connection."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from relay.errors import Conflict, TooLarge, UnprocessableRequest
from relay.models import Attached, Author, Message, Thread, ThreadStatus, Via
from relay.sites.settings import MAX_MESSAGE_MB, MB
from relay.store.planned import NewMessage, take_planned
from relay.store.rows import Db, attached_to_json, message_from_row, thread_from_row


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
    attachments: tuple[Attached, ...] = (),
    answer: str | None = None,
) -> Inserted | None:
    """Insert into an existing thread, or None if there is no such thread or it already
    has this client_id. One statement: this is the hot path (the thread's last seq, read
    cursor and the visitor's last visit follow by trigger; the thread's status comes
    back with the seq, so an open thread costs no second statement). `attachments`
    come from claim_attachments, in the same transaction; `answer` names the owner's
    answer an automatic message sends."""
    # Inserted already with its batch's, at the batch's time (relay/store/planned.py),
    # or now.
    plan = NewMessage(thread_id, author, body, via, client_id)
    taken, row = take_planned(db, plan) if not attachments and answer is None else (False, None)
    if taken:
        return _inserted(plan, row, row[3] if row else now)
    # The status subquery names the thread by its parameter (?8), not by the new row's
    # thread_id: SQLite (3.40) plans a subquery correlated with a RETURNING row as a
    # SCAN of every thread, ~3 ms a message with 50,000 threads (tests/bench/store_size.py).
    row = db.execute(
        "INSERT INTO messages (thread_id, site_id, author, body, via, client_id, created_at,"
        " attachments, answer_id) SELECT id, site_id, ?1, ?2, ?3, ?4, ?5, ?6, ?7 FROM threads"
        " WHERE id = ?8"
        " ON CONFLICT (thread_id, client_id) DO NOTHING"
        " RETURNING seq, site_id, (SELECT status FROM threads WHERE id = ?8)",
        (
            author.value,
            body,
            via.value,
            client_id,
            now,
            attached_to_json(attachments),
            answer,
            thread_id,
        ),
    ).fetchone()
    inserted = _inserted(plan, row, now, attachments, answer)
    if inserted is not None and attachments:
        marked = db.execute(
            f"UPDATE attachments SET message_seq = ? WHERE message_seq IS NULL"
            f" AND id IN ({', '.join('?' * len(attachments))})",
            (inserted.message.seq, *(a.id for a in attachments)),
        ).rowcount
        if marked != len(attachments):  # another relay's message took one meanwhile
            raise Conflict("an attachment was sent with another message")
    return inserted


def _inserted(
    plan: NewMessage,
    row: Any,
    now: str,
    attachments: tuple[Attached, ...] = (),
    answer: str | None = None,
) -> Inserted | None:
    """From a row (seq, site, the thread's status), or None if nothing was inserted."""
    if row is None:
        return None
    p = plan
    message = Message(
        row[0], p.thread_id, p.author, p.body, p.via, p.client_id, now, attachments, answer
    )
    return Inserted(message, row[1], row[2] == ThreadStatus.CLOSED.value)


def claim_attachments(
    db: Db, thread_id: str, author: Author, ids: Sequence[str]
) -> tuple[Attached, ...]:
    """The uploads `ids` name, in that order, if each is this author's, in this thread,
    and not yet sent; else nothing is written and the request is refused."""
    if not ids:
        return ()
    rows = db.execute(
        f"SELECT id, name, type, size, uploader, message_seq FROM attachments"
        f" WHERE thread_id = ? AND id IN ({', '.join('?' * len(ids))})",
        (thread_id, *ids),
    ).fetchall()
    found = {row["id"]: row for row in rows}
    for attachment_id in ids:
        row = found.get(attachment_id)
        if row is None or row["uploader"] != author.value:
            raise UnprocessableRequest(
                f"no attachment {attachment_id!r} uploaded by this {author.value} here",
                reason="unknown_attachment",
            )
        if row["message_seq"] is not None:
            raise Conflict(f"attachment {attachment_id!r} was sent with another message")
    total = sum(found[i]["size"] for i in ids)
    site = db.execute(
        "SELECT settings FROM sites WHERE id = (SELECT site_id FROM threads WHERE id = ?)",
        (thread_id,),
    ).fetchone()
    most = MAX_MESSAGE_MB.of(json.loads(site[0]) if site else {})
    if total > most * MB:
        raise TooLarge(
            f"the files of one message may total {most} MB here, not {total / MB:.1f} MB",
            reason="message_too_large",
        )
    return tuple(Attached(i, found[i]["name"], found[i]["type"], found[i]["size"]) for i in ids)


def thread_by_id(db: Db, thread_id: str) -> Thread | None:
    row = db.execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchone()
    return thread_from_row(row) if row else None


def message_by_client_id(db: Db, thread_id: str, client_id: str) -> Message | None:
    row = db.execute(
        "SELECT * FROM messages WHERE thread_id = ? AND client_id = ?", (thread_id, client_id)
    ).fetchone()
    return message_from_row(row) if row else None
