"""Where the bytes of photos and files live (relay/attachments/blobs.py,
relay/store/blobs.py): with PostgreSQL, in the database, each relay caching them in its
own data dir, so that a file uploaded to one relay downloads from any; with SQLite, in
the data dir. Never a byte served that is not the file's; abandoned uploads go."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, start_thread

POSTGRES_ONLY = pytest.mark.parametrize("engine", ["postgres"], indirect=True)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
# Two and a half parts of 1 MiB: the last part is a short one.
BIG_TEXT = b"".join(b"line %07d of the big file\n" % i for i in range(110_000))[: 5 * 2**19]
OLD = "2020-01-01T00:00:00.000Z"
WAIT = 20.0  # seconds for the purge a relay runs at start-up


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached(relay: RunningRelay, digest: str) -> Path:
    return relay.config.data_dir / "blobs" / digest[:2] / digest


def stored(relay: RunningRelay, digest: str) -> tuple[int, int]:
    """PostgreSQL's rows of a blob: (blobs, blob_parts)."""
    with relay.db() as db:
        rows = db.execute("SELECT COUNT(*) FROM blobs WHERE digest = ?", (digest,)).fetchone()[0]
        parts = db.execute(
            "SELECT COUNT(*) FROM blob_parts WHERE digest = ?", (digest,)
        ).fetchone()[0]
    return rows, parts


def on(relay: RunningRelay, url: str) -> str:
    """A download link another relay made, asked of `relay` (one database: one link)."""
    return relay.url + url[url.index("/v1/attachments/") :]


async def upload(relay: RunningRelay, token: str, name: str, data: bytes) -> httpx.Response:
    async with relay.client() as client:
        return await client.post(
            "/v1/thread/attachments", files={"file": (name, data)}, headers=bearer(token)
        )


async def uploaded(relay: RunningRelay, token: str, name: str, data: bytes) -> dict[str, Any]:
    answer = await upload(relay, token, name, data)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def visitor(relay: RunningRelay, body: str = "Hello") -> str:
    async with relay.client() as client:
        return str((await start_thread(client, body))["token"])


async def download(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as anyone:
        return await anyone.get(url, headers=headers)


def corrupt(path: Path) -> None:
    """Change a byte in place: same size, same inode."""
    with path.open("r+b") as file:
        first = file.read(1)
        file.seek(0)
        file.write(bytes([first[0] ^ 0x01]))


@POSTGRES_ONLY
async def test_a_file_uploaded_to_one_relay_downloads_from_another(
    make_relay: Callable[..., RunningRelay], tmp_path: Path
) -> None:
    a = make_relay(data_dir=tmp_path / "a")
    b = make_relay(data_dir=tmp_path / "b")  # another machine: a disk of its own
    sent = await uploaded(a, await visitor(a), "big.txt", BIG_TEXT)
    digest = sha(BIG_TEXT)
    assert stored(a, digest) == (1, 3)  # one row, three parts of at most 1 MiB
    assert not cached(b, digest).exists()

    got = await download(on(b, sent["url"]))
    assert got.status_code == 200 and got.content == BIG_TEXT
    assert cached(b, digest).read_bytes() == BIG_TEXT  # b keeps a copy to serve next time
    ranged = await download(on(b, sent["url"]), range="bytes=1048570-1048585")
    assert ranged.status_code == 206 and ranged.content == BIG_TEXT[1048570:1048586]


@POSTGRES_ONLY
async def test_erasing_on_one_relay_removes_the_file_for_both(
    make_relay: Callable[..., RunningRelay], tmp_path: Path
) -> None:
    a = make_relay(data_dir=tmp_path / "a")
    b = make_relay(data_dir=tmp_path / "b")
    ann = await visitor(a, "Ann here")
    notes = b"only Ann wrote this\n"
    files = [await uploaded(a, ann, "a.pdf", PDF), await uploaded(a, ann, "n.txt", notes)]
    for sent in files:
        assert (await download(on(b, sent["url"]))).status_code == 200
    pdf, text = sha(PDF), sha(notes)
    assert cached(b, pdf).exists() and cached(b, text).exists()

    async with a.client() as client:
        assert (await client.delete("/v1/thread", headers=bearer(ann))).status_code == 204
    assert stored(a, pdf) == stored(a, text) == (0, 0)  # gone from PostgreSQL
    assert not cached(a, pdf).exists()  # and at once from the erasing relay's disk
    assert (await download(on(b, files[0]["url"]))).status_code == 404
    # Relay b's copies go the next time anything asks for them...
    assert await b.call(b.services.blobs.local_path(pdf)) is None
    assert not cached(b, pdf).exists()
    # ... or with its daily sweep of copies PostgreSQL no longer has.
    assert cached(b, text).exists()
    assert await b.call(b.services.blobs.tidy(0)) == 1
    assert not cached(b, text).exists()


@POSTGRES_ONLY
async def test_a_cache_copy_whose_bytes_changed_is_fetched_again(
    make_relay: Callable[..., RunningRelay], tmp_path: Path
) -> None:
    a = make_relay(data_dir=tmp_path / "a")
    b = make_relay(data_dir=tmp_path / "b")
    sent = await uploaded(a, await visitor(a), "a.pdf", PDF)
    assert (await download(on(b, sent["url"]))).content == PDF
    copy = cached(b, sha(PDF))
    corrupt(copy)
    assert copy.read_bytes() != PDF
    got = await download(on(b, sent["url"]))
    assert got.status_code == 200 and got.content == PDF
    assert copy.read_bytes() == PDF


async def test_with_sqlite_a_file_whose_bytes_changed_is_not_served(relay: RunningRelay) -> None:
    """The data dir is the only copy: it stays for the operator to look at."""
    sent = await uploaded(relay, await visitor(relay), "a.pdf", PDF)
    path = cached(relay, sha(PDF))
    assert (await download(sent["url"])).content == PDF
    corrupt(path)
    assert (await download(sent["url"])).status_code == 404
    assert path.exists()


@POSTGRES_ONLY
async def test_a_crash_between_the_parts_and_the_blob_row_leaves_nothing(
    make_relay: Callable[..., RunningRelay], tmp_path: Path, pg_url: str
) -> None:
    a = make_relay(data_dir=tmp_path / "a")
    b = make_relay(data_dir=tmp_path / "b")
    ann = await visitor(a)
    notes = b"cut off before its commit\n" * 1000
    digest = sha(notes)
    admin = await asyncpg.connect(pg_url)
    try:
        # The row waits behind a lock; the relay's connection dies there, as in a crash.
        holding = admin.transaction()
        await holding.start()
        await admin.execute("LOCK TABLE blobs IN EXCLUSIVE MODE")
        sending = asyncio.create_task(upload(a, ann, "notes.txt", notes))
        pid = await waiting_on_blobs(admin)
        assert await admin.fetchval(  # its parts are written, uncommitted
            "SELECT COUNT(*) FROM pg_locks WHERE pid = $1 AND granted"
            " AND relation = 'blob_parts'::regclass AND mode = 'RowExclusiveLock'",
            pid,
        )
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await holding.rollback()
        answer = await sending
    finally:
        await admin.close()
    assert answer.status_code == 503 and answer.json()["error"] == "store_unavailable"
    assert stored(a, digest) == (0, 0)
    with a.db() as db:
        assert db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0] == 0
    assert await b.call(b.services.blobs.local_path(digest)) is None
    # What the uploading relay had on its disk is not served, and goes when asked for.
    assert cached(a, digest).exists()
    assert await a.call(a.services.blobs.local_path(digest)) is None
    assert not cached(a, digest).exists()

    again = await uploaded(a, ann, "notes.txt", notes)  # the pool connects again
    assert (await download(on(b, again["url"]))).content == notes


async def waiting_on_blobs(admin: asyncpg.Connection) -> int:
    """The process of the connection waiting for the lock on `blobs`."""
    deadline = time.monotonic() + WAIT
    while True:
        pid = await admin.fetchval(
            "SELECT pid FROM pg_locks WHERE NOT granted AND relation = 'blobs'::regclass"
        )
        if pid is not None:
            return int(pid)
        assert time.monotonic() < deadline, "no upload came to wait for the blobs row"
        await asyncio.sleep(0.02)  # another process's lock: nothing to await


@BOTH_ENGINES
async def test_the_daily_purge_removes_uploads_never_sent_after_a_day(
    make_relay: Callable[..., RunningRelay],
) -> None:
    relay = make_relay()
    ann = await visitor(relay)
    notes = b"a file Ann chose, then did not send\n"
    abandoned = await uploaded(relay, ann, "n.txt", notes)
    sent = await uploaded(relay, ann, "a.pdf", PDF)
    again = await uploaded(relay, ann, "b.pdf", PDF)  # the same bytes, never sent
    async with relay.client() as client:
        message = await client.post(
            "/v1/thread/messages",
            headers=bearer(ann),
            json={"body": "", "client_id": "c1", "attachments": [sent["id"]]},
        )
        assert message.status_code == 201, message.text
    recent = await uploaded(relay, ann, "r.txt", b"chosen a minute ago\n")
    with relay.db() as db:  # all but the last a day old, their blobs too
        db.execute("UPDATE attachments SET created_at = ? WHERE id <> ?", (OLD, recent["id"]))
        if relay.config.database_url:
            db.execute("UPDATE blobs SET created_at = ?", (OLD,))
    for data in (notes, PDF):
        os.utime(cached(relay, sha(data)), (0, 0))
    relay.stop()

    relay = make_relay()  # the purge runs at start-up, then daily
    # The rows go first, then the files no row names.
    await eventually(lambda: not cached(relay, sha(notes)).exists())
    assert attachment_ids(relay) == {sent["id"], recent["id"]}
    assert abandoned["id"] not in attachment_ids(relay) and again["id"] not in attachment_ids(relay)
    if relay.config.database_url:
        assert stored(relay, sha(notes)) == (0, 0)
    async with relay.client() as client:  # the sent PDF, the same bytes, stays
        history = (await client.get("/v1/thread", headers=bearer(ann))).json()
    [link] = [a["url"] for m in history["messages"] for a in m.get("attachments", [])]
    assert (await download(link)).content == PDF


def attachment_ids(relay: RunningRelay) -> set[str]:
    with relay.db() as db:
        return {row[0] for row in db.execute("SELECT id FROM attachments")}


async def eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "the purge did not run"
        await asyncio.sleep(0.05)  # a background task of the relay: nothing to await
