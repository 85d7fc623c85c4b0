"""Attachments' rows (relay/attachments): what was uploaded to which thread, by whom,
named how, of which judged type, and the digest of its blob. Mixed into Store."""

from __future__ import annotations

from dataclasses import dataclass

from relay.attachments.blobs import Blobs
from relay.models import Attached, utc_now
from relay.store.engine import Engine, StoreEvent
from relay.store.outbox_rows import later
from relay.store.rows import Db, Row

SETTLE_SECONDS = 600.0  # a blob younger than this may await its row (an upload in flight)
# An upload no message carried after a day was abandoned (a closed tab, a changed mind):
# the daily purge removes it.
UNSENT_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Attachment:
    id: str
    site: str
    thread: str
    uploader: str  # "visitor" or "owner"
    digest: str
    name: str
    type: str
    size: int
    created_at: str = ""
    message_seq: int | None = None

    @property
    def attached(self) -> Attached:
        return Attached(self.id, self.name, self.type, self.size)


class AttachmentStore(Engine):
    async def add_attachment(self, attachment: Attachment) -> Attachment:
        def op(db: Db) -> tuple[Attachment, list[StoreEvent]]:
            now = utc_now()
            db.execute(
                "INSERT INTO attachments (id, site_id, thread_id, uploader, digest, name, type,"
                " size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    attachment.id,
                    attachment.site,
                    attachment.thread,
                    attachment.uploader,
                    attachment.digest,
                    attachment.name,
                    attachment.type,
                    attachment.size,
                    now,
                ),
            )
            row = db.execute("SELECT * FROM attachments WHERE id = ?", (attachment.id,))
            return _from_row(row.fetchone()), []

        return await self.write(op)

    async def attachment(self, attachment_id: str) -> Attachment | None:
        row = await self._read(
            lambda db: db.execute(
                "SELECT * FROM attachments WHERE id = ?", (attachment_id,)
            ).fetchone()
        )
        return _from_row(row) if row else None

    async def visitor_digests(self, visitor: str) -> set[str]:
        """The blobs of a visitor's conversations (asked before erasing them)."""
        rows = await self._read(
            lambda db: db.execute(
                "SELECT DISTINCT a.digest FROM attachments a JOIN threads t"
                " ON t.id = a.thread_id WHERE t.visitor_id = ?",
                (visitor,),
            ).fetchall()
        )
        return {row[0] for row in rows}

    async def purge_unsent(self) -> int:
        """Remove uploads older than UNSENT_SECONDS that no message carries; how many.
        Their blobs go with the next forget_unused_blobs, unless another row names them."""

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            gone = db.execute(
                "DELETE FROM attachments WHERE message_seq IS NULL AND created_at < ?",
                (later(-UNSENT_SECONDS),),
            )
            return gone.rowcount, []

        removed: int = await self.write(op)
        return removed

    async def forget_unused_blobs(self, blobs: Blobs, digests: set[str] | None = None) -> int:
        """Remove the blobs no attachment names any more: `digests` (a visitor's, just
        erased), else every blob that has settled, and this relay's copies of blobs gone
        elsewhere. How many went."""
        tidied = 0 if digests is not None else await blobs.tidy(SETTLE_SECONDS)
        candidates = digests if digests is not None else await blobs.settled(SETTLE_SECONDS)
        if not candidates:
            return tidied

        def used(db: Db) -> set[str]:
            found: set[str] = set()
            for digest in candidates:
                row = db.execute("SELECT 1 FROM attachments WHERE digest = ? LIMIT 1", (digest,))
                if row.fetchone() is not None:
                    found.add(digest)
            return found

        unused = candidates - await self._read(used)
        for digest in unused:
            await blobs.forget(digest)
        return tidied + len(unused)


def _from_row(row: Row) -> Attachment:
    return Attachment(
        row["id"],
        row["site_id"],
        row["thread_id"],
        row["uploader"],
        row["digest"],
        row["name"],
        row["type"],
        row["size"],
        row["created_at"],
        row["message_seq"],
    )
