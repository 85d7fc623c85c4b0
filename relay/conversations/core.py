"""The one write path of a conversation. Every edge (the visitor API and socket, the
owner API, the inbox, a channel's inbound step) authenticates and parses, then calls
Conversations; nothing else writes a message, a read cursor or a thread's status.

A message is written with everything it brings about in one transaction of the
store's writer: a closed thread reopens when the visitor writes again, an automatic
reply outside business hours, the deliveries the notification policy asks for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from relay.answers.automatic import AutomaticAnswers
from relay.answers.matching import Scored
from relay.conversations.away import AwayReplies
from relay.conversations.notify import NotificationPolicy
from relay.errors import NotFound
from relay.models import (
    Author,
    Message,
    MessageAdded,
    ReadMoved,
    Started,
    StatusChanged,
    Thread,
    ThreadStatus,
    Via,
    utc_now,
)
from relay.store import Store
from relay.store.engine import StoreEvent
from relay.store.messages import (
    Inserted,
    claim_attachments,
    insert_message,
    message_by_client_id,
    thread_by_id,
)
from relay.store.planned import NewMessage, Planned
from relay.store.rows import Db, new_id, thread_from_row

# Shortest client_id that makes starting a conversation idempotent: 16 characters of
# a UUID are 64 random bits, beyond guessing.
MIN_START_CLIENT_ID = 16
READ_CURSORS = {Author.VISITOR: "visitor_read_seq", Author.OWNER: "owner_read_seq"}


@dataclass(frozen=True)
class Actor:
    """Who writes, and through which channel: `via` is a registered channel name."""

    author: Author
    via: Via


class Conversations:
    def __init__(
        self,
        store: Store,
        *,
        notify: NotificationPolicy | None = None,  # None: no channel can tell anyone
        away: AwayReplies | None = None,  # None: no automatic replies
        answers: AutomaticAnswers | None = None,  # None: no automatic answers
    ) -> None:
        self.store = store
        self.notify = notify
        self.away = away
        self.answers = answers

    async def start(
        self,
        site_id: str,
        *,
        body: str,
        client_id: str | None,
        name: str | None,
        page: str | None,
        external_id: str | None = None,
        language: str | None = None,
        via: Via = Via.WIDGET,
        then: Callable[[Db, Started], None] | None = None,
    ) -> Started:
        """Visitor + thread + first message in one transaction. The same (site,
        client_id) again returns what the first request created; a signed-in user
        (`external_id`) who already has a thread writes in it. `then`: more to write in
        the same transaction once a new thread exists (a channel binds its chat to it);
        raising there undoes the start."""
        # Replaying a start hands out the thread's token, so only a client_id nobody
        # can guess (the widget's are UUIDs) makes a start idempotent. A channel's start
        # (a chat, an email) derives its client_id from the provider's message id, which
        # others may know: it is never replayable (the channel's own records make its
        # redeliveries harmless), or the widget's start could open or pre-empt it.
        replayable = (
            client_id
            if via is Via.WIDGET and client_id and len(client_id) >= MIN_START_CLIENT_ID
            else None
        )
        visitor = Actor(Author.VISITOR, via)
        automatic = await self.answers.for_site(site_id, language, body) if self.answers else None

        def op(db: Db) -> tuple[Started, list[StoreEvent]]:
            if replayable is not None:
                row = db.execute(
                    "SELECT * FROM threads WHERE site_id = ? AND start_client_id = ?",
                    (site_id, replayable),
                ).fetchone()
                if row is not None:
                    thread = thread_from_row(row)
                    first = message_by_client_id(db, thread.id, replayable)
                    assert first is not None
                    return Started(thread.visitor, thread, first, created=False), []
            if not db.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone():
                raise NotFound(f"no site {site_id!r}")
            if external_id is not None:  # a signed-in user: their one thread, if they have it
                known = db.execute(
                    "SELECT id, token_epoch FROM visitors WHERE site_id = ? AND external_id = ?",
                    (site_id, external_id),
                ).fetchone()
                if known is not None:
                    return self._continue(
                        db, known["id"], known["token_epoch"], visitor, body, client_id, automatic
                    )
            now = utc_now()
            visitor_id, thread_id = new_id("v"), new_id("t")
            db.execute(
                "INSERT INTO visitors (id, site_id, name, external_id, language, created_at,"
                " last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (visitor_id, site_id, name, external_id, language, now, now),
            )
            db.execute(
                "INSERT INTO threads (id, site_id, visitor_id, page, start_client_id,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (thread_id, site_id, visitor_id, page, replayable, now, now),
            )
            inserted = insert_message(db, thread_id, visitor.author, body, via, client_id, now)
            assert inserted is not None
            new_thread = thread_by_id(db, thread_id)
            assert new_thread is not None
            started = Started(visitor_id, new_thread, inserted.message, created=True)
            if then is not None:
                then(db, started)
            return started, self._after_insert(db, inserted, automatic)

        return await self.store.write(op)

    async def post(
        self,
        thread_id: str,
        actor: Actor,
        body: str,
        client_id: str | None,
        attachments: Sequence[str] = (),
        site: str | None = None,
    ) -> tuple[Message, bool]:
        """Store a message; (message, created). A known client_id returns the stored one.
        `attachments`: ids of this author's uploads to the thread, sent with it. `site`:
        the thread's, when the caller has it (the automatic answer's check is then free
        for a site without answers)."""
        automatic = (
            await self.answers.for_thread(thread_id, body, site)
            if self.answers is not None and actor.author is Author.VISITOR
            else None
        )

        def op(db: Db) -> tuple[tuple[Message, bool], list[StoreEvent]]:
            if attachments and client_id:  # a retry: its uploads are already taken, by it
                existing = message_by_client_id(db, thread_id, client_id)
                if existing is not None:
                    return (existing, False), []
            attached = claim_attachments(db, thread_id, actor.author, attachments)
            inserted = insert_message(
                db, thread_id, actor.author, body, actor.via, client_id, utc_now(), attached
            )
            if inserted is not None:
                return (inserted.message, True), self._after_insert(db, inserted, automatic)
            existing = message_by_client_id(db, thread_id, client_id) if client_id else None
            if existing is None:
                raise NotFound(f"no thread {thread_id!r}")
            return (existing, False), []

        if attachments:
            return await self.store.write(op)
        # Its first statement is that insert: on PostgreSQL, one with its batch's others.
        message = NewMessage(thread_id, actor.author, body, actor.via, client_id)
        return await self.store.write(Planned(op, message))

    async def mark_read(self, thread_id: str, reader: Author, seq: int) -> int:
        """Move a read cursor forward (never back, never past the last message)."""
        column = READ_CURSORS[reader]

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            thread = thread_by_id(db, thread_id)
            if thread is None:
                raise NotFound(f"no thread {thread_id!r}")
            current = getattr(thread, column)
            target = max(current, min(seq, thread.last_seq))
            # Only forward, in the UPDATE itself: another relay may have moved it since.
            moved = db.execute(
                f"UPDATE threads SET {column} = ? WHERE id = ? AND {column} < ?",
                (target, thread_id, target),
            )
            if moved.rowcount == 0:  # already there, or further
                row = db.execute(f"SELECT {column} FROM threads WHERE id = ?", (thread_id,))
                return int(row.fetchone()[0]), []
            return target, [ReadMoved(thread.site, thread_id, reader, target)]

        return await self.store.write(op)

    async def set_status(self, thread_id: str, status: ThreadStatus) -> Thread:
        def op(db: Db) -> tuple[Thread, list[StoreEvent]]:
            row = db.execute(
                "UPDATE threads SET status = ?1 WHERE id = ?2 AND status != ?1 RETURNING *",
                (status.value, thread_id),
            ).fetchone()
            if row is not None:
                thread = thread_from_row(row)
                return thread, [StatusChanged(thread.site, thread.id, status)]
            current = thread_by_id(db, thread_id)
            if current is None:
                raise NotFound(f"no thread {thread_id!r}")
            return current, []

        return await self.store.write(op)

    def site_changed(self, site: str) -> None:
        """A site's settings changed in this process: automatic replies read them again."""
        if self.away is not None:
            self.away.forget(site)

    # -- inside the writer's transaction -------------------------------------------

    def _continue(
        self,
        db: Db,
        visitor: str,
        epoch: int,
        actor: Actor,
        body: str,
        client_id: str | None,
        automatic: Scored | None,
    ) -> tuple[Started, list[StoreEvent]]:
        """A start by a user who already has a thread (another device): add to it."""
        thread_row = db.execute(
            "SELECT * FROM threads WHERE visitor_id = ?"
            " ORDER BY status = 'open' DESC, created_at DESC LIMIT 1",
            (visitor,),
        ).fetchone()
        thread = thread_from_row(thread_row)
        existing = message_by_client_id(db, thread.id, client_id) if client_id else None
        if existing is not None:
            return Started(visitor, thread, existing, created=False, epoch=epoch), []
        inserted = insert_message(
            db, thread.id, actor.author, body, actor.via, client_id, utc_now()
        )
        assert inserted is not None
        thread = thread_by_id(db, thread.id) or thread
        events = self._after_insert(db, inserted, automatic)
        return Started(visitor, thread, inserted.message, created=True, epoch=epoch), events

    def _after_insert(
        self, db: Db, inserted: Inserted, automatic: Scored | None = None
    ) -> list[StoreEvent]:
        """The new message's event, then what it brings about, in its own transaction:
        a visitor's reopens a closed thread and may get the owner's answer (`automatic`,
        once per thread) or, outside hours, the away reply."""
        message, site, was_closed = inserted
        events: list[StoreEvent] = [MessageAdded(site, message)]
        if message.author is Author.VISITOR:
            if was_closed:
                db.execute("UPDATE threads SET status = 'open' WHERE id = ?", (message.thread,))
                events.append(StatusChanged(site, message.thread, ThreadStatus.OPEN))
            answered = automatic is not None and self._answer(db, message, site, automatic, events)
            away = (
                self.away.reply_for(db, message, site)
                if self.away is not None and not answered
                else None
            )
            if away is not None:
                # Sent back on the channel the visitor wrote from, as the relay (system).
                reply = insert_message(
                    db,
                    message.thread,
                    Author.SYSTEM,
                    away.body,
                    message.via,
                    away.client_id,
                    utc_now(),
                )
                if reply is not None:  # None: this closed period was answered already
                    events.append(MessageAdded(site, reply.message))
                    if self.notify is not None:
                        events += self.notify.after_message(db, reply.message, site)
        if self.notify is not None:
            events += self.notify.after_message(db, message, site)
        return events

    def _answer(
        self, db: Db, message: Message, site: str, found: Scored, events: list[StoreEvent]
    ) -> bool:
        """Post the owner's answer as the relay (system), on the visitor's channel; False
        if this thread already got that answer (its client_id)."""
        answer = found.answer
        reply = insert_message(
            db,
            message.thread,
            Author.SYSTEM,
            answer.answer,
            message.via,
            f"answer:{answer.id}",
            utc_now(),
            answer=answer.id,
        )
        if reply is None:
            return False
        events.append(MessageAdded(site, reply.message))
        if self.notify is not None:
            events += self.notify.after_message(db, reply.message, site)
        return True
