"""Where the bytes of attachments live, behind one interface (`Blobs`) for both
engines. Blobs are content-addressed: named by their SHA-256 (blobs/ab/abcdef…), so the
same photo sent twice is kept once and a name says nothing about its content.

With SQLite (one relay) the data dir's blobs/ is the store: `LocalBlobs`. With
PostgreSQL (several relays, maybe on several machines) the database holds the bytes and
each relay's blobs/ is a cache of them: `SharedBlobs` (relay/store/blobs.py). Either way
a new file lands on this relay's disk first (intake.take keeps it there), `share` makes
it every relay's, and readers ask for `local_path`, a file they can serve with Range.

A blob is written to a temporary file in the same directory tree, fsynced, then
renamed into place: a crash leaves either the whole blob or a stray temporary file
(swept by `sweep_temporary`), never a half-written blob under a real name.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

log = logging.getLogger("porch.blobs")

CHUNK = 64 * 1024
DIGEST = re.compile(r"[0-9a-f]{64}")
# Files found intact, by what their stat says (inode, size, mtime, ctime): a file is
# hashed again only once it changed. Any write moves ctime, which no one can set back.
VERIFIED_MEMO = 10_000


class Blobs(Protocol):
    """The bytes of photos and files, wherever the engine keeps them."""

    @property
    def local(self) -> LocalBlobs:
        """This relay's directory: new blobs land here (intake.take), readers read here."""
        ...

    async def share(self, digest: str) -> None:
        """Make a blob this relay just kept available to every relay; raises if it
        cannot (the upload fails, nothing names the blob)."""
        ...

    async def local_path(self, digest: str) -> Path | None:
        """A file on this relay's disk holding exactly the blob's bytes (fetched first if
        need be), or None: no such blob anywhere."""
        ...

    async def forget(self, digest: str) -> None:
        """Remove the blob everywhere (the caller checked that nothing names it)."""
        ...

    async def settled(self, min_age: float) -> set[str]:
        """Digests of blobs older than `min_age` seconds (younger ones may belong to an
        upload whose row is not written yet)."""
        ...

    async def tidy(self, min_age: float) -> int:
        """Drop what this relay holds of blobs that no longer exist; how many."""
        ...

    async def sweep_temporary(self) -> int:
        """Remove scratch files a crashed upload left; how many. At start-up only."""
        ...

    async def close(self) -> None: ...


class LocalBlobs:
    """Blobs in a directory. The plain methods block (intake.take calls them on a
    thread); the async ones are the Blobs interface."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scratch = root / "tmp"
        self._verified: dict[str, tuple[int, int, int, int]] = {}

    @classmethod
    def of_data_dir(cls, data_dir: Path) -> LocalBlobs:
        return cls(data_dir / "blobs")

    @property
    def local(self) -> LocalBlobs:
        return self

    def new_scratch(self) -> Path:
        """A fresh temporary path on the blobs' file system (renames stay atomic)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        return self.scratch / secrets.token_hex(16)

    def path(self, digest: str) -> Path:
        if not DIGEST.fullmatch(digest):
            raise ValueError(f"not a blob digest: {digest[:80]!r}")
        return self.root / digest[:2] / digest

    def keep(self, scratch: Path) -> tuple[str, int]:
        """Move a finished scratch file in; its (digest, size). Blocking: run in a thread."""
        digest, size = file_digest(scratch)
        with scratch.open("rb") as file:
            os.fsync(file.fileno())
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(scratch, final)  # the same bytes under the same name: harmless if it exists
        _fsync_dir(final.parent)
        return digest, size

    def read(self, digest: str) -> Iterator[bytes]:
        with self.path(digest).open("rb") as file:
            while chunk := file.read(CHUNK):
                yield chunk

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def intact(self, digest: str) -> bool:
        """Whether the blob is here with exactly its bytes. Blocking: run in a thread.
        Hashed once, then again only when the file changed (SHA-256 runs at about
        1 GB/s: a 25 MB file costs ~25 ms)."""
        path = self.path(digest)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        if self._verified.get(digest) == signature:
            return True
        if file_digest(path)[0] != digest:
            self._verified.pop(digest, None)
            log.error("the file %s does not hold the bytes it is named for", path)
            return False
        if len(self._verified) >= VERIFIED_MEMO:
            self._verified.clear()
        self._verified[digest] = signature
        return True

    # -- the Blobs interface: this directory is the store ---------------------------

    async def share(self, digest: str) -> None:
        """One relay: what is on its disk is everywhere already."""

    async def local_path(self, digest: str) -> Path | None:
        """Never a file whose bytes changed on disk: that one is the only copy, left
        for the operator to look at (logged), and downloads of it answer 404."""
        if not DIGEST.fullmatch(digest):
            return None
        return self.path(digest) if await asyncio.to_thread(self.intact, digest) else None

    async def forget(self, digest: str) -> None:
        self._verified.pop(digest, None)
        await asyncio.to_thread(self.path(digest).unlink, missing_ok=True)

    async def settled(self, min_age: float) -> set[str]:
        return await asyncio.to_thread(self._settled, min_age)

    def _settled(self, min_age: float) -> set[str]:
        if not self.root.is_dir():
            return set()
        oldest = time.time() - min_age
        return {
            path.name
            for path in self.root.glob("??/*")
            if DIGEST.fullmatch(path.name) and path.stat().st_mtime < oldest
        }

    async def tidy(self, min_age: float) -> int:
        """Nothing: every blob here is one the store has."""
        return 0

    async def sweep_temporary(self) -> int:
        return await asyncio.to_thread(self._sweep_temporary)

    def _sweep_temporary(self) -> int:
        if not self.scratch.is_dir():
            return 0
        stray = list(self.scratch.iterdir())
        for path in stray:
            path.unlink(missing_ok=True)
        return len(stray)

    async def close(self) -> None:
        """Nothing to close: files are opened per use."""


def file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
