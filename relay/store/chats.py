"""Messaging apps' rows: a site's accounts on them (app_channels), its customers' chats
there, each bound to the customer's one thread (chats), the single-use codes that bind a
widget thread to a chat (link_codes), and the app deliveries in the outbox.

A chat is a visitor's contact on its channel: relay.store.contacts lists it, and the
notification policy sends an owner's reply to the chat the customer last wrote from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from relay.errors import Conflict
from relay.models import Author, Message, Site, utc_now
from relay.store.contacts import Contact, chat_recipient, visitor_contacts
from relay.store.engine import Engine, StoreEvent
from relay.store.outbox_rows import (
    TO_OWNERS,
    DeliveryKind,
    OutboxItem,
    cancel,
    claim,
    later,
    queue_delivery,
)
from relay.store.rows import Db, Row, message_from_row, site_from_row


@dataclass(frozen=True)
class AppChannel:
    """A site's account on a messaging app. `secrets` never leave the relay."""

    id: str
    site: str
    kind: str  # relay.models.Via: telegram, whatsapp, messenger
    account: str  # the bot's id, the phone-number id, the page id
    handle: str  # public: the bot's username, the phone number, the page
    secrets: dict[str, str] = field(repr=False)
    template: str | None = None  # WhatsApp: an approved template for outside the window
    created_at: str = ""

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "handle": self.handle}


@dataclass(frozen=True)
class Chat:
    channel: str  # an app_channels id
    address: str  # the chat at the provider: chat id, wa_id, page-scoped id
    visitor: str
    thread: str
    name: str | None
    from_seq: int  # replies after this seq go to the chat
    last_inbound_at: str  # when the customer last wrote from it

    @property
    def recipient(self) -> str:
        """How an outbox row names it."""
        return chat_recipient(self.channel, self.address)


@dataclass(frozen=True)
class ChatDelivery:
    """One app delivery, claimed: the replies to send, oldest first."""

    item: OutboxItem
    channel: AppChannel
    chat: Chat
    site: Site
    replies: list[Message]
    language: str | None  # the visitor's, else None (the site's)
    pieces_sent: int = 0  # of the first reply's pieces (texts, then files): how many the app has


# How far an app says a message went; `accepted`: the app's API took it (we record it).
RECEIPTS = {"accepted": 1, "sent": 2, "delivered": 3, "read": 4, "failed": 5}


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class ChatStore(Engine):
    # -- a site's accounts ----------------------------------------------------------

    async def add_app_channel(self, channel: AppChannel) -> AppChannel:
        def op(db: Db) -> tuple[AppChannel, list[StoreEvent]]:
            if not db.execute("SELECT 1 FROM sites WHERE id = ?", (channel.site,)).fetchone():
                raise Conflict(f"no site {channel.site!r}")
            taken = db.execute(
                "SELECT site_id FROM app_channels WHERE kind = ? AND account = ?",
                (channel.kind, channel.account),
            ).fetchone()
            if taken is not None:
                raise Conflict(
                    f"this {channel.kind} account already answers for site {taken[0]!r}:"
                    " remove it there first"
                )
            now = utc_now()
            db.execute(
                "INSERT INTO app_channels (id, site_id, kind, account, handle, secrets,"
                " template, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    channel.id,
                    channel.site,
                    channel.kind,
                    channel.account,
                    channel.handle,
                    json.dumps(channel.secrets),
                    channel.template,
                    now,
                ),
            )
            return _app_channel(db, channel.id) or channel, []

        return await self.write(op)

    async def app_channels(self, site: str) -> list[AppChannel]:
        rows = await self._read(
            lambda db: db.execute(
                "SELECT * FROM app_channels WHERE site_id = ? ORDER BY created_at, id", (site,)
            ).fetchall()
        )
        return [_channel_from_row(row) for row in rows]

    async def app_channel(self, channel_id: str) -> AppChannel | None:
        return await self._read(lambda db: _app_channel(db, channel_id))

    async def app_channel_of_account(self, kind: str, account: str) -> AppChannel | None:
        row = await self._read(
            lambda db: db.execute(
                "SELECT * FROM app_channels WHERE kind = ? AND account = ?", (kind, account)
            ).fetchone()
        )
        return _channel_from_row(row) if row else None

    async def remove_app_channel(self, site: str, channel_id: str) -> bool:
        """Its chats go with it (their threads and messages stay on the site)."""
        prefix = chat_recipient(channel_id, "")

        def op(db: Db) -> tuple[bool, list[StoreEvent]]:
            db.execute(
                "UPDATE outbox SET status = 'cancelled', last_error = 'the channel was removed',"
                " updated_at = ? WHERE status = 'pending' AND SUBSTR(recipient, 1, ?) = ?",
                (utc_now(), len(prefix), prefix),
            )
            gone = db.execute(
                "DELETE FROM app_channels WHERE id = ? AND site_id = ?", (channel_id, site)
            )
            return gone.rowcount > 0, []

        return await self.write(op)

    # -- chats ------------------------------------------------------------------------

    async def chat(self, channel_id: str, address: str) -> Chat | None:
        return await self._read(lambda db: find_chat(db, channel_id, address))

    async def has_message(self, thread: str, client_id: str) -> bool:
        """Whether `thread` has the message of this client_id (a start, redelivered)."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT 1 FROM messages WHERE thread_id = ? AND client_id = ?",
                (thread, client_id),
            ).fetchone()
        )
        return row is not None

    async def thread_chats(self, thread: str) -> list[tuple[Chat, AppChannel]]:
        def query(db: Db) -> list[tuple[Chat, AppChannel]]:
            rows = db.execute(
                "SELECT * FROM chats WHERE thread_id = ? ORDER BY last_inbound_at DESC", (thread,)
            ).fetchall()
            found = []
            for row in rows:
                channel = _app_channel(db, row["channel_id"])
                if channel is not None:
                    found.append((_chat_from_row(row), channel))
            return found

        return await self._read(query)

    async def thread_visitor_contacts(self, thread: str) -> list[Contact]:
        return await self._read(lambda db: visitor_contacts(db, thread))

    async def visitor_language(self, thread: str) -> str | None:
        row = await self._read(
            lambda db: db.execute(
                "SELECT v.language FROM visitors v JOIN threads t ON t.visitor_id = v.id"
                " WHERE t.id = ?",
                (thread,),
            ).fetchone()
        )
        return str(row[0]) if row and row[0] else None

    async def chat_heard(self, channel_id: str, address: str, name: str | None) -> None:
        """The customer wrote from this chat now: the app's reply window opens again."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "UPDATE chats SET last_inbound_at = ?, name = COALESCE(?, name)"
                " WHERE channel_id = ? AND address = ?",
                (utc_now(), name, channel_id, address),
            )
            return None, []

        await self.write(op)

    # -- continuing a widget thread in an app ---------------------------------------

    async def new_link_code(self, channel_id: str, thread: str, code: str, ttl: float) -> str:
        """Record a code for binding `thread` to a chat on this channel; its expiry."""
        expires_at = later(ttl)

        def op(db: Db) -> tuple[str, list[StoreEvent]]:
            db.execute("DELETE FROM link_codes WHERE expires_at < ?", (utc_now(),))
            db.execute(
                "INSERT INTO link_codes (code_hash, channel_id, thread_id, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (code_hash(code), channel_id, thread, expires_at),
            )
            return expires_at, []

        return await self.write(op)

    async def bind_chat(
        self, channel_id: str, address: str, code: str, name: str | None
    ) -> str | None:
        """Use a code: the chat now continues the code's thread; replies from now on go
        to it. None: no such code on this channel, used, expired, or the chat already
        continues another visitor's conversation — nothing changes."""

        def op(db: Db) -> tuple[str | None, list[StoreEvent]]:
            now = utc_now()
            code_row = db.execute(
                "SELECT thread_id, used_at, expires_at FROM link_codes"
                " WHERE code_hash = ? AND channel_id = ?",
                (code_hash(code), channel_id),
            ).fetchone()
            if code_row is None:
                return None, []
            chat = find_chat(db, channel_id, address)
            if code_row[1] is not None:
                # The app delivering the same message again (the relay died before it
                # answered): the chat it bound still continues that thread.
                bound = chat is not None and chat.thread == code_row[0]
                return (str(code_row[0]) if bound else None), []
            thread = db.execute(
                "SELECT visitor_id, last_seq FROM threads WHERE id = ?", (code_row[0],)
            ).fetchone()
            if code_row[2] <= now or thread is None:
                return None, []
            if chat is not None and chat.visitor != thread[0]:
                # Never moved by a link: whoever sent it would read what the chat writes.
                return None, []
            used = db.execute(
                "UPDATE link_codes SET used_at = ? WHERE code_hash = ? AND channel_id = ?"
                " AND used_at IS NULL RETURNING thread_id",
                (now, code_hash(code), channel_id),
            ).fetchone()
            if used is None:
                return None, []
            db.execute(
                "INSERT INTO chats (channel_id, address, visitor_id, thread_id, name, from_seq,"
                " last_inbound_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (channel_id, address) DO UPDATE SET visitor_id ="
                " excluded.visitor_id, thread_id = excluded.thread_id, from_seq ="
                " excluded.from_seq, last_inbound_at = excluded.last_inbound_at,"
                " name = COALESCE(excluded.name, chats.name)",
                (channel_id, address, thread[0], used[0], name, thread[1], now, now),
            )
            return str(used[0]), []

        return await self.write(op)

    # -- deliveries -------------------------------------------------------------------

    async def prepare_chat_delivery(self, item: OutboxItem) -> ChatDelivery | None:
        """Claim a due app delivery and gather the replies it carries: the owner's, and
        the relay's automatic ones sent on this app, after what the chat already got.
        None (the row cancelled) when there is nothing to send or nobody to send it to."""

        def op(db: Db) -> tuple[ChatDelivery | None, list[StoreEvent]]:
            status = db.execute(
                "UPDATE outbox SET status = status WHERE id = ? RETURNING status, payload",
                (item.id,),
            ).fetchone()
            if status is None or status[0] != "pending":
                return None, []
            channel_id, _, address = item.recipient.partition(":")
            channel = _app_channel(db, channel_id)
            chat = find_chat(db, channel_id, address)
            if channel is None or chat is None or chat.thread != item.thread:
                cancel(db, item.id, "the chat is no longer bound to this conversation")
                return None, []
            template = item.kind == DeliveryKind.TEMPLATE
            replies = [] if template else _unsent_replies(db, chat, channel)
            if not template and not replies:
                cancel(db, item.id, "nothing new to send")
                return None, []
            site = site_from_row(
                db.execute("SELECT * FROM sites WHERE id = ?", (channel.site,)).fetchone()
            )
            language = db.execute(
                "SELECT language FROM visitors WHERE id = ?", (chat.visitor,)
            ).fetchone()
            claim(db, item.id)
            # A retry after some pieces of a long reply went: the app has those.
            progress = json.loads(status[1]) if status[1] else {}
            resumed = bool(replies) and progress.get("seq") == replies[0].seq
            pieces = int(progress.get("pieces", 0)) if resumed else 0
            return ChatDelivery(
                item, channel, chat, site, replies, language and language[0], pieces
            ), []

        return await self.write(op)

    async def chat_progress(
        self, item: OutboxItem, seq: int | None, external_id: str | None
    ) -> None:
        """A reply of this delivery (or its template: seq None) is in the app: a retry
        starts after it."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "UPDATE outbox SET upto_seq = COALESCE(?, upto_seq), payload = NULL,"
                " external_id = COALESCE(?, external_id), receipt = 'accepted',"
                " updated_at = ? WHERE id = ?",
                (seq, external_id, utc_now(), item.id),
            )
            return None, []

        await self.write(op)

    async def chat_pieces(self, item: OutboxItem, seq: int, pieces: int) -> None:
        """The app has the first `pieces` of a reply (its text cut to the app's limit,
        then its files): a retry sends the rest."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "UPDATE outbox SET payload = ?, updated_at = ? WHERE id = ?",
                (json.dumps({"seq": seq, "pieces": pieces}), utc_now(), item.id),
            )
            return None, []

        await self.write(op)

    async def chat_receipt(
        self, channel_id: str, external_id: str, status: str, error: str | None
    ) -> bool:
        """What the provider says of a message this channel sent (sent, delivered, read,
        failed): another site's webhook cannot speak of ours. Apps deliver statuses out
        of order: a receipt never goes back (read stays read)."""
        prefix = chat_recipient(channel_id, "")

        def op(db: Db) -> tuple[bool, list[StoreEvent]]:
            row = db.execute(
                "SELECT id, receipt FROM outbox WHERE external_id = ?"
                " AND SUBSTR(recipient, 1, ?) = ?",
                (external_id, len(prefix), prefix),
            ).fetchone()
            if row is None or RECEIPTS.get(status, 0) <= RECEIPTS.get(row[1] or "", 0):
                return False, []
            failed = status == "failed"
            db.execute(
                "UPDATE outbox SET receipt = ?, status = CASE WHEN ? THEN 'failed' ELSE status"
                " END, last_error = COALESCE(?, last_error), updated_at = ? WHERE id = ?",
                (status, failed, error, utc_now(), row[0]),
            )
            return True, []

        return await self.write(op)

    async def queue_template(self, chat: Chat, kind: str) -> None:
        """Send the channel's approved template to the chat (its reply window closed)."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            return None, [
                queue_delivery(db, kind, DeliveryKind.TEMPLATE, chat.thread, chat.recipient, 0)
            ]

        await self.write(op)

    async def thread_deliveries(self, thread: str, limit: int = 20) -> list[dict[str, Any]]:
        """The latest deliveries to the customer of a thread, newest first: what the
        owner sees of their replies (queued, sent, delivered, read, failed and why)."""
        to_owners = tuple(kind.value for kind in TO_OWNERS)
        rows = await self._read(
            lambda db: db.execute(
                "SELECT id, channel, kind, status, receipt, last_error AS error, attempts,"
                " upto_seq, updated_at FROM outbox WHERE thread_id = ? AND channel <> 'push'"
                f" AND kind NOT IN ({', '.join('?' for _ in to_owners)})"
                " ORDER BY id DESC LIMIT ?",
                (thread, *to_owners, limit),
            ).fetchall()
        )
        return [dict(row) for row in rows]


# -- inside a caller's transaction --------------------------------------------------------


def find_chat(db: Db, channel_id: str, address: str) -> Chat | None:
    row = db.execute(
        "SELECT * FROM chats WHERE channel_id = ? AND address = ?", (channel_id, address)
    ).fetchone()
    return _chat_from_row(row) if row else None


def _unsent_replies(db: Db, chat: Chat, channel: AppChannel) -> list[Message]:
    """The owner's replies no chat of the thread has had (one that reached the customer
    on WhatsApp is not sent again when they move to Messenger; one that failed there
    is), and the relay's notes on this app this chat has not had."""
    sent_here = db.execute(
        "SELECT MAX(upto_seq) FROM outbox WHERE channel = ? AND thread_id = ? AND recipient = ?",
        (channel.kind, chat.thread, chat.recipient),
    ).fetchone()[0]
    sent_to_a_chat = db.execute(  # the thread's chats as recipients (chat_recipient's form)
        "SELECT MAX(upto_seq) FROM outbox WHERE thread_id = ? AND COALESCE(receipt, '') <> 'failed'"
        " AND recipient IN (SELECT channel_id || ':' || address FROM chats WHERE thread_id = ?)",
        (chat.thread, chat.thread),
    ).fetchone()[0]
    return [
        message_from_row(row)
        for row in db.execute(
            "SELECT * FROM messages WHERE thread_id = ? AND seq > ?"
            " AND ((author = ? AND seq > ?) OR (author = ? AND via = ?)) ORDER BY seq",
            (
                chat.thread,
                max(sent_here or 0, chat.from_seq),
                Author.OWNER.value,
                sent_to_a_chat or 0,
                Author.SYSTEM.value,
                channel.kind,
            ),
        )
    ]


def insert_chat(
    db: Db, channel_id: str, address: str, visitor: str, thread: str, name: str | None
) -> bool:
    """Bind a new chat to the thread just started for it; False if another message of
    the same chat bound it first (the caller rolls back and writes in that thread)."""
    now = utc_now()
    added = db.execute(
        "INSERT INTO chats (channel_id, address, visitor_id, thread_id, name, last_inbound_at,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, address)"
        " DO NOTHING RETURNING address",
        (channel_id, address, visitor, thread, name, now, now),
    ).fetchone()
    return added is not None


def _app_channel(db: Db, channel_id: str) -> AppChannel | None:
    row = db.execute("SELECT * FROM app_channels WHERE id = ?", (channel_id,)).fetchone()
    return _channel_from_row(row) if row else None


def _channel_from_row(row: Row) -> AppChannel:
    return AppChannel(
        row["id"],
        row["site_id"],
        row["kind"],
        row["account"],
        row["handle"],
        json.loads(row["secrets"]),
        row["template"],
        row["created_at"],
    )


def _chat_from_row(row: Row) -> Chat:
    return Chat(
        row["channel_id"],
        row["address"],
        row["visitor_id"],
        row["thread_id"],
        row["name"],
        row["from_seq"],
        row["last_inbound_at"],
    )
