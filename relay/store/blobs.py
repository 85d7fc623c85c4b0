"""The bytes of photos and files when several relays share PostgreSQL: the database
holds them, each relay's blobs/ directory is a cache (relay/attachments/blobs.py).

Why the database, not a file share or an S3-compatible store: it is already there and
already backed up (pg_dump carries the blobs with the rows that name them), a
self-hoster runs no other service and keeps no other credentials. Small businesses'
photos and PDFs weigh megabytes; PostgreSQL keeps them in 1 MiB parts (bytea), streamed
one part at a time, never a whole file in memory.

A blob is written in one transaction: its parts, then its `blobs` row. Readers look
for the row first, so the row is the commit point: a crash (or a lost connection) before
it leaves nothing anyone sees, and PostgreSQL rolls the parts back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import asyncpg

from relay.attachments.blobs import DIGEST, Blobs, LocalBlobs
from relay.errors import StoreUnavailable
from relay.models import utc_now
from relay.store.base import Store
from relay.store.postgres import COMMAND_TIMEOUT, CONNECT_TIMEOUT, PostgresStore, unreachable

log = logging.getLogger("porch.blobs")

PART = 1024 * 1024  # bytes per row of blob_parts: big enough that a file is few rows
# Connections of a relay for blobs, beside the store's: an upload or a first download
# holds one while its parts move; checking that a cached blob still exists is quick.
CONNECTIONS = 3


def blobs_for(store: Store, data_dir: Path) -> Blobs:
    """Where this relay keeps blobs: PostgreSQL (cached in the data dir) when the store
    is shared by several relays, else the data dir's blobs/."""
    local = LocalBlobs.of_data_dir(data_dir)
    if isinstance(store, PostgresStore):
        return SharedBlobs(store.url, local)
    return local


class BlobMismatch(Exception):
    """Bytes that do not hash to the digest they are stored under."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"the bytes of blob {digest} do not match its digest")
        self.digest = digest


class SharedBlobs:
    def __init__(self, url: str, local: LocalBlobs) -> None:
        self.url = url
        self._local = local
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._fetching: dict[str, asyncio.Lock] = {}  # one download per blob at a time

    @property
    def local(self) -> LocalBlobs:
        return self._local

    async def share(self, digest: str) -> None:
        async with self._connection() as conn:
            # Already there (the same photo sent before): it is made young again, so that
            # a sweep does not take it before the new row naming it is written.
            if await conn.fetchval("SELECT 1 FROM blobs WHERE digest = $1", digest):
                touched = await conn.execute(
                    "UPDATE blobs SET created_at = $2 WHERE digest = $1", digest, utc_now()
                )
                if touched == "UPDATE 1":
                    return
            await put_blob(conn, self._local.path(digest), digest)

    async def local_path(self, digest: str) -> Path | None:
        """PostgreSQL says whether the blob exists; the cache copy is served if its bytes
        are intact, else (missing, or changed on disk) fetched again first."""
        if not DIGEST.fullmatch(digest):
            return None
        async with self._connection() as conn:
            exists = await conn.fetchval("SELECT 1 FROM blobs WHERE digest = $1", digest)
        if not exists:  # forgotten, maybe by another relay: the cache copy goes too
            await self._local.forget(digest)
            return None
        path = self._local.path(digest)
        if await asyncio.to_thread(self._local.intact, digest):
            return path
        lock = self._fetching.setdefault(digest, asyncio.Lock())
        try:
            async with lock:
                if await asyncio.to_thread(self._local.intact, digest):
                    return path  # another request fetched it meanwhile
                return path if await self._fetch(digest) else None
        finally:
            if not lock.locked():
                self._fetching.pop(digest, None)

    async def _fetch(self, digest: str) -> bool:
        """Copy the blob from PostgreSQL into the cache, checking its bytes."""
        scratch = await asyncio.to_thread(self._local.new_scratch)
        hashed = hashlib.sha256()
        try:
            # One snapshot: the parts of the row it saw, even if forgotten meanwhile.
            async with (
                self._connection() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                size = await conn.fetchval("SELECT size FROM blobs WHERE digest = $1", digest)
                if size is None:
                    return False
                with scratch.open("wb") as out:
                    async for part in conn.cursor(
                        "SELECT data FROM blob_parts WHERE digest = $1 ORDER BY part",
                        digest,
                        prefetch=2,
                    ):
                        await asyncio.to_thread(_write, out, hashed, part[0])
                    written = out.tell()
            if hashed.hexdigest() != digest or written != size:
                log.error("blob %s in PostgreSQL does not match its digest: not served", digest)
                return False
            await asyncio.to_thread(self._local.keep, scratch)  # renamed into place
            return True
        finally:
            await asyncio.to_thread(scratch.unlink, missing_ok=True)

    async def forget(self, digest: str) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM blobs WHERE digest = $1", digest)
            await conn.execute("DELETE FROM blob_parts WHERE digest = $1", digest)
        await self._local.forget(digest)

    async def settled(self, min_age: float) -> set[str]:
        cutoff = datetime.now(UTC) - timedelta(seconds=min_age)
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT digest FROM blobs WHERE created_at < $1",
                cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            )
        return {row[0] for row in rows}

    async def tidy(self, min_age: float) -> int:
        """Cache copies of blobs PostgreSQL no longer has (forgotten by another relay,
        or an upload whose commit never came). Only settled ones: a younger file may be
        an upload of this relay on its way to PostgreSQL."""
        cached = await self._local.settled(min_age)
        if not cached:
            return 0
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT digest FROM blobs WHERE digest = ANY($1::text[])", sorted(cached)
            )
        gone = cached - {row[0] for row in rows}
        for digest in gone:
            await self._local.forget(digest)
        return len(gone)

    async def sweep_temporary(self) -> int:
        return await self._local.sweep_temporary()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A connection of the pool; a database that cannot be reached is 503."""
        try:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.url,
                        min_size=0,  # connected on first use
                        max_size=CONNECTIONS,
                        timeout=CONNECT_TIMEOUT,
                        command_timeout=COMMAND_TIMEOUT,
                    )
            async with self._pool.acquire(timeout=COMMAND_TIMEOUT) as conn:
                yield conn
        except Exception as error:
            if unreachable(error):
                raise StoreUnavailable() from error
            raise


async def put_blob(conn: Any, path: Path, digest: str) -> int:
    """Store the file at `path` in PostgreSQL as blob `digest`: its parts, then its row,
    in one transaction (a savepoint inside the caller's). Its size; BlobMismatch, and
    nothing stored, if the bytes do not hash to `digest`."""
    hashed = hashlib.sha256()
    size = 0
    async with conn.transaction():
        with path.open("rb") as file:
            part = 0
            while chunk := await asyncio.to_thread(_read, file, hashed):
                # Taken already: another relay stored the same bytes meanwhile.
                await conn.execute(
                    "INSERT INTO blob_parts (digest, part, data) VALUES ($1, $2, $3)"
                    " ON CONFLICT DO NOTHING",
                    digest,
                    part,
                    chunk,
                )
                part += 1
                size += len(chunk)
        if hashed.hexdigest() != digest:
            raise BlobMismatch(digest)
        await conn.execute(
            "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (digest) DO UPDATE SET created_at = EXCLUDED.created_at",
            digest,
            size,
            utc_now(),
        )
    return size


def _read(file: IO[bytes], hashed: Any) -> bytes:
    chunk = file.read(PART)
    hashed.update(chunk)
    return chunk


def _write(file: IO[bytes], hashed: Any, data: bytes) -> None:
    file.write(data)
    hashed.update(data)
