"""The store's side of continuity across devices: resume links (emailed, single use)
and signing a visitor out everywhere. Mixed into Store."""

from __future__ import annotations

import json

from relay.errors import InvalidToken, RateLimited
from relay.models import SignedOut, Thread, utc_now
from relay.store.engine import Engine, StoreEvent, WriteOp
from relay.store.outbox_rows import (
    UNCONFIRMED_WINDOW,
    DeliveryKind,
    DeliveryQueued,
    is_suppressed,
    release_unconfirmed,
    unconfirmed_refusal,
)
from relay.store.rows import Db, thread_from_row
from relay.tokens import ResumeClaim


class ContinuityStore(Engine):
    async def request_resume_link(self, thread: Thread, epoch: int, email: str, page: str) -> None:
        """Queue an email with a link that opens this thread on another device, asked
        with a token of `epoch` (a sign-out everywhere committed first refuses it).

        An address the visitor has not confirmed is capped (outbox_rows.py); opening
        the link confirms it.
        """

        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            still_signed_in(db, thread.visitor, epoch)
            if is_suppressed(db, email):
                raise RateLimited("this address asked us not to write to it", retry_after=3600)
            # Asking again while the link still waits to go joins it: its day is its own.
            waiting = db.execute(
                "SELECT id FROM outbox WHERE kind = ? AND thread_id = ? AND recipient = ?"
                " AND status IN ('pending', 'sending')",
                (DeliveryKind.RESUME, thread.id, email),
            ).fetchone()
            refusal = unconfirmed_refusal(db, thread.visitor, email, waiting[0] if waiting else 0)
            if refusal is not None:
                raise RateLimited(
                    f"{refusal}: open that email's link first (it confirms the address), "
                    "or ask again tomorrow",
                    retry_after=int(UNCONFIRMED_WINDOW),
                )
            db.execute(  # a new address is unconfirmed until a link sent to it is opened
                "UPDATE visitors SET email = ?, email_verified_at = CASE WHEN"
                " lower(email) = ? THEN email_verified_at END WHERE id = ?",
                (email, email, thread.visitor),
            )
            now = utc_now()
            db.execute(
                "INSERT INTO outbox (kind, thread_id, recipient, not_before, payload,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (channel, kind, thread_id, recipient) WHERE status = 'pending'"
                " DO UPDATE SET payload = excluded.payload",
                (DeliveryKind.RESUME, thread.id, email, now, json.dumps({"page": page}), now, now),
            )
            return None, [DeliveryQueued("email")]

        await self.write(op)

    async def use_resume(self, claim: ResumeClaim) -> tuple[Thread, int]:
        """Spend a resume link: (the thread, the visitor's token epoch). The address it
        was sent to is confirmed by this: only its owner could open the link."""
        visitor, site, email = claim.visitor, claim.site, claim.email

        def op(db: Db) -> tuple[tuple[Thread, int], list[StoreEvent]]:
            used = db.execute(
                "INSERT INTO resume_uses (jti, used_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (claim.jti, utc_now()),
            )
            if used.rowcount == 0:
                raise InvalidToken("this link was already used: ask for a new one", reason="used")
            row = db.execute(
                "SELECT t.*, v.token_epoch FROM threads t JOIN visitors v ON v.id = t.visitor_id"
                " WHERE t.visitor_id = ? AND t.site_id = ?"
                " ORDER BY t.status = 'open' DESC, t.created_at DESC LIMIT 1",
                (visitor, site),
            ).fetchone()
            if row is None:
                raise InvalidToken("this conversation no longer exists", reason="invalid")
            if row["token_epoch"] != claim.epoch:
                raise InvalidToken(
                    "this link stopped working when the conversation was signed out on "
                    "every device: ask for a new one",
                    reason="revoked",
                )
            db.execute(
                "UPDATE visitors SET email = ?, email_verified_at = ? WHERE id = ?"
                " AND (email IS NULL OR lower(email) = ?)",
                (email, utc_now(), visitor, email),
            )
            release_unconfirmed(db, address=email)
            return (thread_from_row(row), row["token_epoch"]), []

        return await self.write(op)

    async def identify(
        self, site: str, user_id: str, anonymous: str | None, name: str | None
    ) -> tuple[Thread, int, str] | None:
        """Bind to a verified user: (their thread, token epoch, visitor id), or None when
        nothing is stored yet. An anonymous visitor's earlier thread is merged in."""
        return await self.write(identify_op(site, user_id, anonymous, name))

    async def email_confirmed(self, visitor: str) -> bool:
        """Whether the visitor's address is one they proved they read (they opened a link
        we sent to it): the widget then stops offering to take one."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT email IS NOT NULL AND email_verified_at IS NOT NULL FROM visitors"
                " WHERE id = ?",
                (visitor,),
            ).fetchone()
        )
        return bool(row and row[0])

    async def confirm_email_by_reply(self, thread: str, address: str) -> bool:
        """The visitor answered, from `address`, an email whose reply address only that
        mailbox was sent: as good a proof as opening a link. False when `address` is no
        longer the visitor's."""

        def op(db: Db) -> tuple[bool, list[StoreEvent]]:
            confirmed = db.execute(
                "UPDATE visitors SET email_verified_at = COALESCE(email_verified_at, ?)"
                " WHERE id = (SELECT visitor_id FROM threads WHERE id = ?) AND lower(email) = ?",
                (utc_now(), thread, address.lower()),
            )
            if confirmed.rowcount:
                release_unconfirmed(db, address=address.lower())
            return confirmed.rowcount > 0, []

        return await self.write(op)

    async def set_name(self, visitor: str, name: str) -> None:
        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute("UPDATE visitors SET name = ? WHERE id = ?", (name, visitor))
            return None, []

        await self.write(op)

    async def sign_out_everywhere(self, thread: Thread) -> int:
        """Every token issued so far stops working, over HTTP and on open sockets, and so
        does every way back in by email: resume links sent carry the old epoch, emails
        not yet sent (links, replies with a link) are cancelled (one being sent now is
        not tried again if it fails), and the address left for replies is forgotten:
        whoever held a token may have typed it. So are the devices that took pushes
        (they tell of the conversation, wherever they are)."""

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            epoch = db.execute(
                "UPDATE visitors SET token_epoch = token_epoch + 1 WHERE id = ?"
                " RETURNING token_epoch",
                (thread.visitor,),
            ).fetchone()[0]
            db.execute(
                "UPDATE outbox SET status = 'cancelled', last_error = ?, updated_at = ?"
                " WHERE kind IN (?, ?) AND status IN ('pending', 'sending')"
                " AND thread_id IN (SELECT id FROM threads WHERE visitor_id = ?)",
                ("signed out everywhere", utc_now(), DeliveryKind.RESUME, DeliveryKind.VISITOR)
                + (thread.visitor,),
            )
            db.execute(
                "UPDATE visitors SET email = NULL, email_verified_at = NULL WHERE id = ?",
                (thread.visitor,),
            )
            db.execute("DELETE FROM push_subscriptions WHERE visitor_id = ?", (thread.visitor,))
            return epoch, [SignedOut(thread.site, thread.id, epoch)]

        return await self.write(op)


def identify_op(
    site: str, user_id: str, anonymous: str | None, name: str | None
) -> WriteOp[tuple[Thread, int, str] | None]:
    """The write op of ContinuityStore.identify (kept flat for reading)."""

    def op(db: Db) -> tuple[tuple[Thread, int, str] | None, list[StoreEvent]]:
        known = db.execute(
            "SELECT id, token_epoch FROM visitors WHERE site_id = ? AND external_id = ?",
            (site, user_id),
        ).fetchone()
        if known is None:
            if anonymous is None:
                return None, []  # nothing stored yet: the first message will carry the id
            db.execute(
                "UPDATE visitors SET external_id = ?, name = COALESCE(?, name)"
                " WHERE id = ? AND site_id = ?",
                (user_id, name, anonymous, site),
            )
            thread, epoch = _latest_thread(db, anonymous)
            return (thread, epoch, anonymous), []
        visitor, epoch = known["id"], known["token_epoch"]
        target, _ = _latest_thread(db, visitor)
        if anonymous is not None and anonymous != visitor:
            # Merge what was written before login: messages move thread, keeping their
            # seq (so their order), and the anonymous visitor is erased. A client_id the
            # user's thread already has (a UUID sent from both) is dropped, not doubled.
            anonymous_threads = "SELECT id FROM threads WHERE visitor_id = ? AND site_id = ?"
            db.execute(
                f"UPDATE messages SET client_id = NULL WHERE thread_id IN ({anonymous_threads})"
                " AND client_id IN (SELECT client_id FROM messages WHERE thread_id = ?"
                " AND client_id IS NOT NULL)",
                (anonymous, site, target.id),
            )
            db.execute(
                "UPDATE unconfirmed_sends SET visitor_id = ? WHERE visitor_id = ?",
                (visitor, anonymous),
            )
            moved = db.execute(
                f"UPDATE messages SET thread_id = ? WHERE thread_id IN ({anonymous_threads})",
                (target.id, anonymous, site),
            ).rowcount
            db.execute(  # their files go with them (erasing the visitor would take them)
                f"UPDATE attachments SET thread_id = ? WHERE thread_id IN ({anonymous_threads})",
                (target.id, anonymous, site),
            )
            db.execute("DELETE FROM visitors WHERE id = ? AND site_id = ?", (anonymous, site))
            if moved:
                db.execute(
                    "UPDATE threads SET last_seq = (SELECT MAX(seq) FROM messages"
                    " WHERE thread_id = ?1), updated_at = ?2 WHERE id = ?1",
                    (target.id, utc_now()),
                )
            target, _ = _latest_thread(db, visitor)
        if name:
            db.execute("UPDATE visitors SET name = ? WHERE id = ?", (name, visitor))
        return (target, epoch, visitor), []

    return op


def _latest_thread(db: Db, visitor: str) -> tuple[Thread, int]:
    row = db.execute(
        "SELECT t.*, v.token_epoch FROM threads t JOIN visitors v ON v.id = t.visitor_id"
        " WHERE t.visitor_id = ? ORDER BY t.status = 'open' DESC, t.created_at DESC LIMIT 1",
        (visitor,),
    ).fetchone()
    return thread_from_row(row), row["token_epoch"]


def still_signed_in(db: Db, visitor: str, epoch: int) -> None:
    """Inside a write asked for with a visitor token: refuse it if the visitor signed out
    everywhere after the token was checked (the two writes raced)."""
    row = db.execute("SELECT token_epoch FROM visitors WHERE id = ?", (visitor,)).fetchone()
    if row is None or row[0] != epoch:
        raise InvalidToken("this conversation was signed out on every device")
