"""The store's side of the emails an owner gets about no single conversation: digests
(many conversations in one email) and inbox sign-in links. Mixed into Store;
every write is one transaction.

A digest leaves at the top of the hour or every morning, on the wall clock of the
site's time zone. Like every email it is gathered when it is sent, so messages that
come meanwhile join it; a sign-in link's token, too, is minted only when it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from relay.clock import Clock
from relay.models import Author, Message, NotifyMode, Site, Thread, utc_now
from relay.sites.availability import site_zone
from relay.store.engine import Engine, StoreEvent
from relay.store.outbox_rows import (
    DeliveryKind,
    DeliveryQueued,
    OutboxItem,
    cancel,
    claim,
    is_suppressed,
    issued_reply_tag,
    later,
    notify_mode,
    pending_row,
)
from relay.store.rows import Db, message_from_row, sites_of_owner, thread_from_row

DIGEST_MORNING = time(8, 0)  # daily digests leave at this time of the site's day
DIGEST_MODES = (NotifyMode.HOURLY, NotifyMode.DAILY)


@dataclass(frozen=True)
class DigestThread:
    """One conversation in a digest: what is new in it, and how to answer it."""

    thread: Thread
    site: Site
    visitor_name: str | None
    visitor_email: str | None
    new: list[Message]  # visitor messages the owner has neither read nor been sent
    tag: str  # this recipient's reply tag for the thread


@dataclass(frozen=True)
class DigestJob:
    item: OutboxItem
    language: str  # the owner's
    mode: str  # hourly or daily: said in the email
    threads: list[DigestThread]  # oldest news first

    @property
    def upto_seq(self) -> int:
        return max(thread.new[-1].seq for thread in self.threads)

    @property
    def message_count(self) -> int:
        return sum(len(thread.new) for thread in self.threads)


@dataclass(frozen=True)
class LoginJob:
    item: OutboxItem
    language: str
    upto_seq: None = None


def next_digest_at(mode: str, now: datetime, zone_name: str | None) -> datetime:
    """When a digest queued at `now` leaves (UTC): the next top of the hour ('hourly')
    or the next DIGEST_MORNING ('daily'), on the wall clock of zone `zone_name`."""
    zone = site_zone({"timezone": zone_name})
    if mode == NotifyMode.HOURLY:
        # Real minutes, each read on the wall clock: right across DST changes and in
        # zones offset by :30 or :45, where the local hour does not start at UTC's.
        moment = now.astimezone(UTC).replace(second=0, microsecond=0)
        while True:
            moment += timedelta(minutes=1)
            if moment.astimezone(zone).minute == 0:
                return moment
    if mode != NotifyMode.DAILY:
        raise ValueError(f"digests are 'hourly' or 'daily', not {mode!r}")
    day = now.astimezone(zone).date()
    moment = datetime.combine(day, DIGEST_MORNING, tzinfo=zone)
    if moment <= now:
        moment = datetime.combine(day + timedelta(days=1), DIGEST_MORNING, tzinfo=zone)
    return moment.astimezone(UTC)


def queue_digest(
    db: Db,
    clock: Clock,
    recipient: str,
    mode: str,
    zone: str | None,
    from_seq: int,
) -> None:
    """Queue the recipient's next digest, or join the pending one. If the pending one
    leaves later than this schedule says (the owner went from daily to hourly, or the
    sites are in different zones), it leaves at the earlier time. `from_seq`: the first
    message it is about; older unread ones are history, not news (an owner who only
    ever answered by email has many unread "thanks!")."""
    now = utc_now()
    moment = next_digest_at(mode, clock.now(), zone)
    db.execute(
        "INSERT INTO outbox (kind, thread_id, recipient, not_before, payload, created_at,"
        " updated_at) VALUES (?, NULL, ?, ?, json_object('from_seq', CAST(? AS INTEGER)), ?, ?)"
        " ON CONFLICT (kind, recipient) WHERE status = 'pending' AND kind = 'owner_digest'"
        " DO UPDATE SET not_before = MIN(outbox.not_before, excluded.not_before), payload ="
        " json_object('from_seq', MIN(CAST(outbox.payload ->> 'from_seq' AS INTEGER), ?4))",
        (DeliveryKind.DIGEST, recipient, later(clock.seconds_until(moment)), from_seq, now, now),
    )


class DigestStore(Engine):
    """Methods SQLiteStore gains for digests and sign-in links (it provides _write)."""

    async def prepare_digest(
        self, item: OutboxItem, tag_for: Callable[[str], str]
    ) -> DigestJob | None:
        """Claim a due digest and gather it: every visitor message on every site the
        recipient answers for, that they have neither read in the inbox nor been sent
        in an earlier digest. None (the row cancelled) if there is none, or if the
        recipient no longer wants digests. `tag_for(thread)`: the reply tag to issue
        for a thread the recipient has none for yet."""

        def op(db: Db) -> tuple[DigestJob | None, list[StoreEvent]]:
            pending = pending_row(db, item.id)
            if pending is None:
                return None, []
            sites = {site.id: site for site in sites_of_owner(db, item.recipient)}
            mode = notify_mode(db, item.recipient)
            # Back to one email per message: this last digest still goes (its messages
            # have no email of their own); turned off: nothing goes.
            refusal = _owner_refusal(db, item.recipient, bool(sites)) or (
                "the owner turned these emails off" if mode == NotifyMode.OFF else None
            )
            if refusal:
                cancel(db, item.id, refusal)
                return None, []
            last_sent = db.execute(
                "SELECT MAX(upto_seq) FROM outbox WHERE kind = ? AND recipient = ?"
                " AND status = 'sent'",
                (DeliveryKind.DIGEST, item.recipient),
            ).fetchone()[0]
            from_seq = json.loads(pending["payload"] or "{}").get("from_seq", 0)
            by_thread: dict[str, list[Message]] = {}
            # New: not read in the inbox, not in an earlier digest, not in an email of
            # its own (sent before the owner chose digests), not older than the news.
            for r in db.execute(
                "SELECT m.* FROM messages m JOIN threads t ON t.id = m.thread_id"
                " WHERE m.site_id IN (SELECT value FROM json_each(?1)) AND m.author = ?2"
                " AND m.seq >= ?4 AND m.seq > MAX(?3, t.owner_read_seq, COALESCE(("
                "   SELECT MAX(o.upto_seq) FROM outbox o WHERE o.kind = 'owner_notify'"
                "   AND o.thread_id = t.id AND o.recipient = ?5 AND o.status = 'sent'), 0))"
                " ORDER BY m.seq",
                (
                    json.dumps(list(sites)),
                    Author.VISITOR.value,
                    last_sent or 0,
                    from_seq,
                    item.recipient,
                ),
            ):
                message = message_from_row(r)
                by_thread.setdefault(message.thread, []).append(message)
            if not by_thread:
                cancel(db, item.id, "already seen")
                return None, []
            threads = []
            for thread_id, new in by_thread.items():
                row = db.execute(
                    "SELECT t.*, v.name AS visitor_name, v.email AS visitor_email FROM threads t"
                    " JOIN visitors v ON v.id = t.visitor_id WHERE t.id = ?",
                    (thread_id,),
                ).fetchone()
                thread = thread_from_row(row)
                tag = issued_reply_tag(db, thread_id, item.recipient, tag_for(thread_id))
                threads.append(
                    DigestThread(
                        thread,
                        sites[thread.site],
                        row["visitor_name"],
                        row["visitor_email"],
                        new,
                        tag,
                    )
                )
            claim(db, item.id)
            return DigestJob(item, owner_language(db, item.recipient) or "en", mode, threads), []

        return await self.write(op)

    async def queue_login_email(self, email: str, language: str | None) -> bool:
        """Queue an inbox sign-in link to `email`, now; True if queued, which happens
        only for an owner address of some site. `language`: of the email; None for the
        owner's own. One pending link per address: its token is minted when it is
        sent, so a second request adds nothing."""
        address = email.strip().lower()

        def op(db: Db) -> tuple[bool, list[StoreEvent]]:
            if not sites_of_owner(db, address) or is_suppressed(db, address):
                return False, []
            now = utc_now()
            db.execute(
                "INSERT INTO outbox (kind, thread_id, recipient, not_before, payload,"
                " created_at, updated_at) SELECT ?1, NULL, ?2, ?3, ?4, ?3, ?3"
                " WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE kind = ?1 AND recipient = ?2"
                " AND status = 'pending')",
                (DeliveryKind.LOGIN, address, now, json.dumps({"language": language})),
            )
            return True, [DeliveryQueued("email")]

        return await self.write(op)

    async def prepare_login(self, item: OutboxItem) -> LoginJob | None:
        """Claim a due sign-in email; None (cancelled) if the address is no longer an
        owner's. The link itself is made by the caller, at the last moment."""

        def op(db: Db) -> tuple[LoginJob | None, list[StoreEvent]]:
            row = pending_row(db, item.id)
            if row is None:
                return None, []
            refusal = _owner_refusal(db, item.recipient, bool(sites_of_owner(db, item.recipient)))
            if refusal:
                cancel(db, item.id, refusal)
                return None, []
            claim(db, item.id)
            language = json.loads(row["payload"] or "{}").get("language")
            return LoginJob(item, language or owner_language(db, item.recipient) or "en"), []

        return await self.write(op)


def _owner_refusal(db: Db, address: str, owns_a_site: bool) -> str | None:
    """Why an email for an owner (digest, sign-in link) must not go out now, or None:
    checked when it is sent, as owners change."""
    if is_suppressed(db, address):
        return "address suppressed"
    return None if owns_a_site else "no longer an owner address of any site"


def owner_language(db: Db, address: str) -> str | None:
    """The language an owner chose in the inbox, if any."""
    row = db.execute("SELECT language FROM owners WHERE email = ?", (address,)).fetchone()
    return str(row[0]) if row and row[0] else None
