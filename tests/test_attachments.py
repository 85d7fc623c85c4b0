"""Photos and files over HTTP (relay/web/attachments.py), on a real relay: uploads by the
visitor and the owner, streamed and capped by the site's limit, judged by their bytes;
downloads by signed, short-lived links that cannot run script in the relay's origin."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, start_thread

pytestmark = BOTH_ENGINES

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def png_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # GPS: where the photo was taken
    out = io.BytesIO()
    image.save(out, "PNG", exif=exif)
    return out.getvalue()


async def upload(
    client: httpx.AsyncClient, path: str, name: str, data: bytes, token: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        path,
        files={"file": (name, data, "application/octet-stream")},
        headers=bearer(token),
        **extra,
    )


def stored(relay: RunningRelay) -> tuple[int, list[Path]]:
    """Attachment rows, and blob files on disk (scratch files left behind count too)."""
    with relay.db() as db:
        rows = db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0]
    root = relay.config.data_dir / "blobs"
    return rows, sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_a_visitors_photo_is_kept_without_its_metadata_and_downloads_inert(
    relay: RunningRelay,
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "Here is the cake I want")
        sent = await upload(
            client, "/v1/thread/attachments", "cake.pdf", png_with_gps(), started["token"]
        )
        assert sent.status_code == 201, sent.text
        body = sent.json()
        assert set(body) == {"id", "name", "type", "size", "url"}
        # Judged by its bytes: a PNG named .pdf is a PNG, and is named so.
        assert (body["name"], body["type"]) == ("cake.png", "image/png")
        async with httpx.AsyncClient() as anyone:  # no Authorization header, no cookie
            got = await anyone.get(body["url"])
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith("inline")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]
    assert len(got.content) == body["size"]
    image = Image.open(io.BytesIO(got.content))
    assert image.size == (64, 48) and not image.getexif()  # no maker, no GPS


async def test_a_pdf_downloads_as_an_attachment_and_the_owner_uploads_too(
    relay: RunningRelay,
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "Price list?")
        thread = started["thread"]["id"]
        owner = relay.owner_token()
        sent = await upload(client, f"/v1/owner/threads/{thread}/attachments", "prices", PDF, owner)
        assert sent.status_code == 201, sent.text
        assert (sent.json()["name"], sent.json()["type"]) == ("prices.pdf", "application/pdf")
        got = await client.get(sent.json()["url"])
        assert got.status_code == 200 and got.content == PDF
        assert got.headers["content-disposition"].startswith("attachment")
        # Another site's owner token does not reach this thread.
        beta = relay.owner_token("beta")
        other = await upload(client, f"/v1/owner/threads/{thread}/attachments", "x", PDF, beta)
        assert other.status_code == 404


async def test_over_the_sites_limit_is_413_declared_or_streamed(
    make_relay: Callable[..., RunningRelay],
) -> None:
    relay = make_relay()
    with relay.db() as db:  # the site allows 1 MB per file
        db.execute("UPDATE sites SET settings = ? WHERE id = 'alpha'", ('{"max_file_mb": 1}',))
    relay.services.conversations.site_changed("alpha")
    big = b"a" * 1_200_000
    async with relay.client() as client:
        started = await start_thread(client, "Hello")
        declared = await upload(client, "/v1/thread/attachments", "big.txt", big, started["token"])
        assert declared.status_code == 413 and declared.json()["error"] == "too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            boundary = b"--porch"
            yield (
                boundary
                + b'\r\nContent-Disposition: form-data; name="file"; filename="b.txt"\r\n\r\n'
            )
            for _ in range(20):
                yield b"a" * 100_000
            yield b"\r\n" + boundary + b"--\r\n"

        streamed = await client.post(
            "/v1/thread/attachments",
            content=chunks(),
            headers={
                **bearer(started["token"]),
                "content-type": "multipart/form-data; boundary=porch",
            },
        )
        assert streamed.status_code == 413, streamed.text
    assert stored(relay) == (0, [])


async def test_malformed_uploads_are_refused(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "Hello")
        auth = bearer(started["token"])
        not_multipart = await client.post(
            "/v1/thread/attachments", json={"file": "x"}, headers=auth
        )
        assert not_multipart.status_code == 400
        no_file = await client.post(
            "/v1/thread/attachments", files={"other": ("a.txt", b"hi")}, headers=auth
        )
        assert no_file.status_code == 400
        two = await client.post(
            "/v1/thread/attachments",
            files=[("file", ("a.txt", b"one")), ("file", ("b.txt", b"two"))],
            headers=auth,
        )
        assert two.status_code == 400
        forged = await client.post(
            "/v1/thread/attachments", files={"file": ("a.txt", b"hi")}, headers=bearer("forged")
        )
        assert forged.status_code == 401
    assert stored(relay) == (0, [])


async def test_erasing_a_visitor_removes_their_files_but_not_anothers_same_bytes(
    relay: RunningRelay,
) -> None:
    async with relay.client() as client:
        ann = await start_thread(client, "Ann here")
        bob = await start_thread(client, "Bob here")
        mine = await upload(client, "/v1/thread/attachments", "a.pdf", PDF, ann["token"])
        notes = b"only Ann wrote this\n"
        only = await upload(client, "/v1/thread/attachments", "n.txt", notes, ann["token"])
        same = await upload(client, "/v1/thread/attachments", "b.pdf", PDF, bob["token"])
        assert {mine.status_code, only.status_code, same.status_code} == {201}
        _, files = stored(relay)
        assert len(files) == 2  # the same PDF twice is one blob
        erased = await client.delete("/v1/thread", headers=bearer(ann["token"]))
        assert erased.status_code == 204
        assert (await client.get(only.json()["url"])).status_code == 404
        assert (await client.get(same.json()["url"])).content == PDF  # Bob's stays
    rows, files = stored(relay)
    assert rows == 1 and len(files) == 1
    assert not any(notes in path.read_bytes() for path in files)


async def test_a_visitors_uploads_have_their_own_rate_limit(
    make_relay: Callable[..., RunningRelay],
) -> None:
    relay = make_relay(visitor_uploads_per_minute=2)
    async with relay.client() as client:
        started = await start_thread(client, "Three photos")
        token = started["token"]
        answers = [
            (await upload(client, "/v1/thread/attachments", f"{n}.pdf", PDF, token)).status_code
            for n in range(3)
        ]
        still = await client.post(  # messages are counted apart: the visitor can still write
            "/v1/thread/messages", json={"body": "and text"}, headers=bearer(token)
        )
    assert answers == [201, 201, 429]
    assert still.status_code == 201
