"""Web Push's rows (relay/push): the installation's secrets (its VAPID key), the
devices that take pushes, a visitor's or an owner's, and claiming a push delivery (its
outbox row, queued by relay/conversations/notify.py). Mixed into Store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from relay.catalogue import language_or_default
from relay.models import Author, Message, PushSubscription, Site, Thread, utc_now
from relay.store.contacts import PUSH
from relay.store.digest import owner_language
from relay.store.engine import Engine, StoreEvent
from relay.store.outbox_rows import DeliveryKind, OutboxItem, cancel, claim, later
from relay.store.rows import Db, Row, message_from_row, new_id, site_from_row, thread_from_row

COLUMNS = (
    "id, site_id, endpoint, p256dh, auth, visitor_id, owner_email, session_id, user_agent,"
    " created_at"
)

# The same device subscribing again (one row per endpoint) takes the new keys and
# holder. It keeps its id and age only if it stays with the same holder: a shared
# browser passing to another visitor is a new subscription, not theirs to revoke.
# COALESCE: `IS` compares NULLs on SQLite only; PostgreSQL spells it otherwise.
SAME_HOLDER = (
    "(push_subscriptions.site_id = excluded.site_id"
    " AND COALESCE(push_subscriptions.visitor_id, '') = COALESCE(excluded.visitor_id, '')"
    " AND COALESCE(push_subscriptions.owner_email, '') = COALESCE(excluded.owner_email, ''))"
)
UPSERT = (
    f"INSERT INTO push_subscriptions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (endpoint) DO UPDATE SET"
    f" id = CASE WHEN {SAME_HOLDER} THEN push_subscriptions.id ELSE excluded.id END,"
    f" created_at = CASE WHEN {SAME_HOLDER} THEN push_subscriptions.created_at"
    " ELSE excluded.created_at END,"
    " site_id = excluded.site_id, p256dh = excluded.p256dh, auth = excluded.auth,"
    " visitor_id = excluded.visitor_id, owner_email = excluded.owner_email,"
    " session_id = excluded.session_id, user_agent = excluded.user_agent"
    f" RETURNING {COLUMNS}"
)


@dataclass(frozen=True)
class PushJob:
    """One push, read in the transaction that claims it."""

    item: OutboxItem
    device: PushSubscription
    site: Site
    thread: Thread
    visitor_name: str | None
    new: list[Message]  # what it tells of, oldest first
    language: str  # the recipient's

    @property
    def upto_seq(self) -> int:
        return self.new[-1].seq


class PushStore(Engine):
    async def installation_secret(self, name: str, make: Callable[[], str]) -> str:
        """The installation's secret `name`; made with `make` and kept on first need.
        Whatever the database holds is returned: relays racing to make it end up with
        the one that was stored first."""

        def read(db: Db) -> str | None:
            row = db.execute(
                "SELECT value FROM installation_secrets WHERE name = ?", (name,)
            ).fetchone()
            return str(row[0]) if row else None

        found = await self._read(read)
        if found is not None:
            return found
        made = make()

        def op(db: Db) -> tuple[str, list[StoreEvent]]:
            db.execute(
                "INSERT INTO installation_secrets (name, value, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, made, utc_now()),
            )
            kept = read(db)
            assert kept is not None  # inserted, or there already
            return kept, []

        return await self.write(op)

    async def add_push_subscription(self, sub: PushSubscription) -> PushSubscription:
        """Keep a device; the same endpoint again replaces keys and holder (see UPSERT)."""

        def op(db: Db) -> tuple[PushSubscription, list[StoreEvent]]:
            owner = sub.owner_email.lower() if sub.owner_email is not None else None
            row = db.execute(
                UPSERT,
                (
                    sub.id or new_id("push"),
                    sub.site_id,
                    sub.endpoint,
                    sub.p256dh,
                    sub.auth,
                    sub.visitor_id,
                    owner,
                    sub.session_id,
                    sub.user_agent,
                    sub.created_at or utc_now(),
                ),
            ).fetchone()
            return subscription_from_row(row), []

        return await self.write(op)

    async def push_subscription(self, subscription_id: str) -> PushSubscription | None:
        row = await self._read(
            lambda db: db.execute(
                f"SELECT {COLUMNS} FROM push_subscriptions WHERE id = ?", (subscription_id,)
            ).fetchone()
        )
        return subscription_from_row(row) if row else None

    async def remove_push_subscription(self, subscription_id: str) -> bool:
        return await self._delete("id = ?", (subscription_id,)) > 0

    async def remove_push_endpoint(self, endpoint: str) -> bool:
        """Forget a device its push service says is gone (404, 410)."""
        return await self._delete("endpoint = ?", (endpoint,)) > 0

    async def remove_session_push_subscriptions(self, session_ids: Iterable[str]) -> int:
        """Forget the devices subscribed in these inbox sessions (signed out): how many."""
        ids = json.dumps(list(session_ids))
        return await self._delete("session_id IN (SELECT value FROM json_each(?))", (ids,))

    async def remove_owner_push_subscriptions(self, owner_email: str) -> int:
        """Forget every device of this owner ("sign out everywhere"): how many."""
        return await self._delete("owner_email = ?", (owner_email.lower(),))

    async def visitor_push_subscriptions(self, visitor_id: str) -> list[PushSubscription]:
        return await self._select("visitor_id = ?", (visitor_id,))

    async def owner_push_subscriptions(
        self, site_id: str, owner_email: str | None = None
    ) -> list[PushSubscription]:
        """The devices of the site's owners (or of that one of them), oldest first.
        Who owns the site is read from the site now: an address taken off its owners
        stops being told, wherever its devices were subscribed."""
        owners = (
            "owner_email IN (SELECT lower(value) FROM sites s, json_each(s.owner_emails)"
            " WHERE s.id = ?)"
        )
        if owner_email is None:
            return await self._select(owners, (site_id,))
        return await self._select(f"{owners} AND owner_email = ?", (site_id, owner_email.lower()))

    async def prepare_push(self, item: OutboxItem) -> PushJob | None:
        """Claim a due push and gather what it tells; None (the row cancelled) when the
        device or the conversation is gone, or everything was seen meanwhile."""
        assert item.thread is not None

        def op(db: Db) -> tuple[PushJob | None, list[StoreEvent]]:
            status = db.execute(  # locks the row: a second relay then sees it claimed
                "UPDATE outbox SET status = status WHERE id = ? RETURNING status", (item.id,)
            ).fetchone()
            if status is None or status[0] != "pending":
                return None, []
            job, refusal = _push_job(db, item)
            if job is None:
                cancel(db, item.id, refusal)
                return None, []
            claim(db, item.id)
            return job, []

        return await self.write(op)

    async def postpone_owner_email(self, thread: str, owner: str, seconds: float) -> int:
        """The owner's phone was told of `thread`: their pending email about it waits
        until `seconds` from now (it still goes if they have not read it by then)."""

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            moved = db.execute(
                "UPDATE outbox SET not_before = ?, updated_at = ? WHERE channel = 'email'"
                " AND kind = ? AND thread_id = ? AND recipient = ? AND status = 'pending'"
                " AND not_before < ?",
                (later(seconds), utc_now(), DeliveryKind.OWNER, thread, owner, later(seconds)),
            ).rowcount
            return moved, []

        return await self.write(op)

    async def push_device_gone(self, item: OutboxItem, reason: str) -> None:
        """The push service says the device is no more (404, 410): forget it, and the
        delivery is cancelled (not a failure anyone must look at)."""

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute("DELETE FROM push_subscriptions WHERE id = ?", (item.recipient,))
            cancel(db, item.id, reason)
            return None, []

        await self.write(op)

    async def _select(self, where: str, parameters: tuple[str, ...]) -> list[PushSubscription]:
        rows = await self._read(
            lambda db: db.execute(
                f"SELECT {COLUMNS} FROM push_subscriptions WHERE {where} ORDER BY created_at, id",
                parameters,
            ).fetchall()
        )
        return [subscription_from_row(row) for row in rows]

    async def _delete(self, where: str, parameters: tuple[str, ...]) -> int:
        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            return db.execute(
                f"DELETE FROM push_subscriptions WHERE {where}", parameters
            ).rowcount, []

        return await self.write(op)


def subscription_from_row(row: Row) -> PushSubscription:
    return PushSubscription(
        id=row["id"],
        site_id=row["site_id"],
        endpoint=row["endpoint"],
        p256dh=row["p256dh"],
        auth=row["auth"],
        visitor_id=row["visitor_id"],
        owner_email=row["owner_email"],
        session_id=row["session_id"],
        user_agent=row["user_agent"],
        created_at=row["created_at"],
    )


def _push_job(db: Db, item: OutboxItem) -> tuple[PushJob | None, str]:
    """The push `item` is, or why it must not go out now."""
    row = db.execute(
        f"SELECT {COLUMNS} FROM push_subscriptions WHERE id = ?", (item.recipient,)
    ).fetchone()
    if row is None:
        return None, "the device no longer takes pushes"
    device = subscription_from_row(row)
    row = db.execute(
        "SELECT t.*, v.name AS visitor_name, v.language AS visitor_language FROM threads t"
        " JOIN visitors v ON v.id = t.visitor_id WHERE t.id = ?",
        (item.thread,),
    ).fetchone()
    if row is None:
        return None, "the conversation was deleted"
    thread = thread_from_row(row)
    site = site_from_row(db.execute("SELECT * FROM sites WHERE id = ?", (thread.site,)).fetchone())
    owner = item.kind == DeliveryKind.OWNER
    if owner and device.owner_email not in {e.lower() for e in site.owner_emails}:
        return None, "no longer an owner of the site"
    if not owner and device.visitor_id != thread.visitor:
        return None, "not this conversation's visitor"
    read = thread.owner_read_seq if owner else thread.visitor_read_seq
    last_sent = db.execute(
        "SELECT MAX(upto_seq) FROM outbox WHERE channel = ? AND kind = ? AND thread_id = ?"
        " AND recipient = ? AND status = 'sent'",
        (PUSH, item.kind, item.thread, item.recipient),
    ).fetchone()[0]
    author = Author.VISITOR if owner else Author.OWNER
    new = [
        message_from_row(r)
        for r in db.execute(
            "SELECT * FROM messages WHERE thread_id = ? AND author = ? AND seq > ? ORDER BY seq",
            (thread.id, author.value, max(last_sent or 0, read)),
        )
    ]
    if not new:
        return None, "already seen"
    if device.owner_email is not None:
        chosen = owner_language(db, device.owner_email)
    else:
        chosen = row["visitor_language"]
    language = language_or_default(chosen or site.settings.get("language"))
    return PushJob(item, device, site, thread, row["visitor_name"], new, language), ""
