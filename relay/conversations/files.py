"""Keeping a photo or file for a conversation, whoever sent it and however it came (an
upload from the widget or the inbox, an email's attachment, an app's media): judged
from its bytes, an image re-encoded without metadata, stored as a blob, and its row
added to the thread, unsent until a message carries it (Conversations.post)."""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath

from relay.attachments.blobs import Blobs
from relay.attachments.intake import take
from relay.attachments.kinds import allowed_in
from relay.attachments.uploads import clean_name
from relay.errors import TooLarge
from relay.models import Author, Thread
from relay.sites.settings import FILE_TYPES, MAX_FILE_MB, MB
from relay.store import Store
from relay.store.attachments import Attachment
from relay.store.rows import new_id


class Files:
    def __init__(self, store: Store, blobs: Blobs) -> None:
        self.store = store
        self.blobs = blobs
        # A 12-megapixel photo takes ~150 MB to re-encode: one at a time per relay.
        self.decoding = asyncio.Semaphore(1)

    async def scratch(self) -> Path:
        """A new file to receive bytes into; pass it to keep(), or remove it."""
        return await asyncio.to_thread(self.blobs.local.new_scratch)

    async def path(self, digest: str) -> Path | None:
        """A file on this relay's disk with a kept file's bytes (e.g. to send it on to a
        messaging app), or None if it is gone."""
        return await self.blobs.local_path(digest)

    async def limit(self, site_id: str) -> int:
        """The site's largest file, in bytes (its max_file_mb)."""
        site = await self.store.get_site(site_id)
        return MAX_FILE_MB.of(site if site else {}) * MB

    async def keep(self, scratch: Path, name: str, thread: Thread, uploader: Author) -> Attachment:
        """The file at `scratch` (consumed, whatever happens) kept for `thread`.
        TooLarge past the site's max_file_mb, UnsupportedType for a kind the relay (or
        the site's file_types) does not take, UnprocessableRequest for an image it cannot read."""
        try:
            site = await self.store.get_site(thread.site)
            limit = MAX_FILE_MB.of(site if site else {}) * MB
            allowed = allowed_in(FILE_TYPES.of(site if site else {}))
            size = (await asyncio.to_thread(scratch.stat)).st_size
            if size > limit:
                raise TooLarge(
                    f"{name!r} is {size / MB:.1f} MB; this site takes files up to {limit // MB} MB",
                    reason="too_large",
                )
            async with self.decoding:
                kind, digest, size = await asyncio.to_thread(
                    take, scratch, self.blobs.local, allowed
                )
        finally:
            await asyncio.to_thread(scratch.unlink, missing_ok=True)
        await self.blobs.share(digest)  # before any row names it: every relay can serve it
        return await self.store.add_attachment(
            Attachment(
                new_id("a"),
                thread.site,
                thread.id,
                uploader.value,
                digest,
                named_as(name, kind.extension),
                kind.mime,
                size,
            )
        )


def named_as(name: str, extension: str) -> str:
    """The sender's name with the extension of what it really is (a PNG named cake.pdf
    downloads as cake.png), cleaned here for every channel: no path, no control or
    direction characters, short (an app's file name is the sender's to choose)."""
    stem = PurePosixPath(clean_name(name)).stem or "file"
    return f"{stem}.{extension}"
