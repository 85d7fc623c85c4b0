"""Attacks through uploads and downloads (relay/web/attachments.py): files that would run
in a browser or on a desktop (HTML, SVG, executables, polyglots) refused with nothing kept,
names that try to be paths or headers, another page's origin, and download links that
are altered, expired, or used to reach another attachment."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from tests.support import BETA_ORIGIN, SECRET, RunningRelay, start_thread
from tests.test_attachments import PDF, stored, upload


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("photo.png", b"<!doctype html><script>alert(document.cookie)</script>"),
        ("logo.png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        ("run.pdf", b"\x7fELF\x02\x01\x01" + bytes(64)),
        ("cake.gif", b"GIF89a<script>alert(1)</script>" + bytes(32)),
    ],
)
async def test_a_type_the_relay_does_not_take_is_refused_and_nothing_kept(
    relay: RunningRelay, name: str, data: bytes
) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "Hello")
        sent = await upload(client, "/v1/thread/attachments", name, data, started["token"])
    assert sent.status_code in (415, 422), sent.text
    assert stored(relay) == (0, [])


async def test_a_tampered_or_expired_link_finds_nothing(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "Hello")
        sent = await upload(client, "/v1/thread/attachments", "n.txt", b"notes\n", started["token"])
        url = sent.json()["url"]
        token = url.split("/v1/attachments/")[1].split("/")[0]
        tampered = url.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
        assert (await client.get(tampered)).status_code == 404

        class TwoHoursAgo(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - 2 * 3600

        old = URLSafeTimedSerializer(SECRET, salt="attachment", signer=TwoHoursAgo)
        expired = url.replace(token, old.dumps(sent.json()["id"]))
        answer = await client.get(expired)
        assert answer.status_code == 404 and "expired" in answer.json()["message"]
        assert (await client.get(url)).status_code == 200  # the fresh link still works


@pytest.mark.parametrize(
    "name",
    ["../../../etc/passwd", "..\\..\\boot.ini", 'a"; filename="evil.html', "x\r\nSet-Cookie: a=b"],
)
async def test_a_name_is_never_a_path_nor_a_header(relay: RunningRelay, name: str) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "Hello")
        sent = await upload(client, "/v1/thread/attachments", name, PDF, started["token"])
        assert sent.status_code == 201, sent.text
        kept = sent.json()["name"]
        got = await client.get(sent.json()["url"])
    assert "/" not in kept and "\\" not in kept and '"' not in kept and "\r" not in kept
    assert kept.endswith(".pdf")  # the extension of what it is
    assert got.status_code == 200 and "set-cookie" not in got.headers
    assert got.headers["content-disposition"].startswith("attachment")
    _, files = stored(relay)
    root = relay.config.data_dir / "blobs"
    assert files and all(root in path.parents for path in files)


async def test_an_upload_from_another_sites_page_is_refused(relay: RunningRelay) -> None:
    async with relay.client() as client:
        started = await start_thread(client, "Hello")
    async with relay.client(origin=BETA_ORIGIN) as elsewhere:
        sent = await upload(elsewhere, "/v1/thread/attachments", "a.pdf", PDF, started["token"])
    assert sent.status_code == 403
    assert stored(relay) == (0, [])


async def test_one_link_never_opens_another_attachment(relay: RunningRelay) -> None:
    async with relay.client() as client:
        ann = await start_thread(client, "Ann")
        bob = await start_thread(client, "Bob")
        mine = await upload(
            client, "/v1/thread/attachments", "a.txt", b"Ann's notes\n", ann["token"]
        )
        theirs = await upload(
            client, "/v1/thread/attachments", "b.txt", b"Bob's notes\n", bob["token"]
        )
        # Bob's link with Ann's file name, and Ann's token pasted onto Bob's id: neither works.
        bob_url = theirs.json()["url"]
        renamed = bob_url.rsplit("/", 1)[0] + "/a.txt"
        assert (await client.get(renamed)).content == b"Bob's notes\n"  # the name is decoration
        ann_token = mine.json()["url"].split("/v1/attachments/")[1].split("/")[0]
        forged = await client.get(
            f"/v1/attachments/{ann_token[:-8]}{theirs.json()['id'][:8]}/b.txt"
        )
        assert forged.status_code == 404
