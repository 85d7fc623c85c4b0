"""`porch backup` while the relay takes messages: the copy is one consistent snapshot,
holds everything acknowledged before it started, verifies, and a relay serves it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from relay.config import Config
from relay.store import backup as backup_module
from relay.store.backup import backup
from tests.support import (
    ALPHA,
    ALPHA_ORIGIN,
    PorchProcess,
    RunningRelay,
    add_site,
    bearer,
    free_port,
    porch_command,
    porch_env,
    relay_env,
    start_thread,
)

FRAMES_PER_MINUTE = Config.ws_frames_per_minute  # a live socket's frames a minute, by default
VISITORS = 5
ACKED_BEFORE_BACKUP = 300  # the copy starts well into steady traffic
SUMMARY = re.compile(r"^Copied .+ to .+: (\d+) threads, (\d+) messages, [\d.]+ [KMG]?B")
NO_LIMITS = {
    "visitor_messages_per_minute": "100000",
    "ip_messages_per_minute": "100000",
    "threads_per_ip_per_hour": "100000",
}


def porch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*porch_command(), *args], env=env, capture_output=True, text=True, timeout=60
    )


def rows(path: Path, sql: str) -> list[Any]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


async def history(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    """Every message of the visitor's thread, following the pages."""
    messages: list[dict[str, Any]] = []
    while True:
        since = messages[-1]["seq"] if messages else 0
        response = await client.get(f"/v1/thread?since={since}", headers=bearer(token))
        assert response.status_code == 200, response.text
        messages += response.json()["messages"]
        if not response.json()["more"]:
            return messages


async def test_backup_under_load_is_a_verified_snapshot_a_relay_can_serve(
    tmp_path: Path,
) -> None:
    env = porch_env(tmp_path / "live", **NO_LIMITS)
    add_site(env)
    dest = tmp_path / "backups" / "porch-backup.sqlite3"
    dest.parent.mkdir()
    port = free_port()
    relay = await PorchProcess.start(env, port)
    acked: dict[str, int] = {}  # client_id -> seq, only what the relay acknowledged
    tokens: list[str] = []
    stop = asyncio.Event()
    enough = asyncio.Event()

    async def visitor(token: str, v: int) -> None:
        i = 0
        while not stop.is_set():
            # A socket may carry FRAMES_PER_MINUTE frames a minute: on a slow machine the
            # backup takes longer than that, so each socket sends fewer, then a new one.
            async with connect(f"ws://127.0.0.1:{port}/v1/live", origin=ALPHA_ORIGIN) as ws:
                await ws.send(json.dumps({"type": "hello", "token": token}))
                for _ in range(FRAMES_PER_MINUTE - 10):
                    if stop.is_set():
                        break
                    client_id = f"v{v}-{i}"
                    await ws.send(
                        json.dumps({"type": "send", "body": client_id, "client_id": client_id})
                    )
                    while (frame := json.loads(await ws.recv()))["type"] != "ack":
                        pass
                    acked[frame["client_id"]] = frame["seq"]
                    if len(acked) >= ACKED_BEFORE_BACKUP:
                        enough.set()
                    i += 1

    try:
        async with httpx.AsyncClient(
            base_url=relay.url, headers={"origin": ALPHA_ORIGIN}, timeout=10
        ) as client:
            for v in range(VISITORS):
                response = await client.post(
                    "/v1/sites/alpha/threads", json={"body": "start", "client_id": f"v{v}-start"}
                )
                assert response.status_code == 201, response.text
                tokens.append(response.json()["token"])
                acked[f"v{v}-start"] = response.json()["message"]["seq"]
            sending = asyncio.gather(*(visitor(token, v) for v, token in enumerate(tokens)))
            await asyncio.wait_for(enough.wait(), timeout=30)
            acked_before = dict(acked)
            process = await asyncio.create_subprocess_exec(
                *porch_command(),
                "backup",
                str(dest),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), timeout=60)
            acked_during = len(acked) - len(acked_before)
            stop.set()
            await sending
    finally:
        await relay.stop()

    assert process.returncode == 0, err.decode()
    assert acked_during > 0, "the relay should have kept acknowledging during the backup"
    summary = SUMMARY.match(out.decode())
    assert summary, out.decode()
    assert rows(dest, "PRAGMA integrity_check") == [("ok",)]
    copied = dict(rows(dest, "SELECT client_id, seq FROM messages"))
    missing = [cid for cid, seq in acked_before.items() if copied.get(cid) != seq]
    assert not missing, f"{len(missing)} messages acked before the backup are not in it"
    # It says what it copied, and it copied one snapshot: seq is given in commit order,
    # so the copy holds exactly the live messages up to its last one, no gap.
    assert int(summary[1]) == rows(dest, "SELECT COUNT(*) FROM threads")[0][0] == VISITORS
    assert int(summary[2]) == len(copied)
    last = max(copied.values())
    live = tmp_path / "live" / "porch.sqlite3"
    assert sorted(copied.values()) == [
        seq for (seq,) in rows(live, f"SELECT seq FROM messages WHERE seq <= {last} ORDER BY seq")
    ]

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(dest, restored / "porch.sqlite3")
    relay = await PorchProcess.start(porch_env(restored), free_port())
    try:
        async with httpx.AsyncClient(
            base_url=relay.url, headers={"origin": ALPHA_ORIGIN}, timeout=10
        ) as client:
            served = {m["client_id"]: m["seq"] for t in tokens for m in await history(client, t)}
    finally:
        await relay.stop()
    assert served == copied


def test_the_copy_is_the_snapshot_it_started_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another connection commits between every two steps of the copy. The backup API
    would restart the copy at each commit (forever); pinned to one read transaction,
    it finishes, without the rows written meanwhile."""
    add_site(porch_env(tmp_path))
    source = tmp_path / "porch.sqlite3"
    writer = sqlite3.connect(source, isolation_level=None)
    writer.execute("CREATE TABLE filler (body TEXT)")
    writer.executemany("INSERT INTO filler VALUES (?)", [("x" * 2000,)] * 200)
    monkeypatch.setattr(backup_module, "PAGES_PER_STEP", 1)
    monkeypatch.setattr(backup_module, "PAUSE_BETWEEN_STEPS", 0)
    steps = 0

    def write_between_steps(status: int, remaining: int, total: int) -> None:
        nonlocal steps
        steps += 1
        assert steps <= 2 * total, "the copy keeps starting over"
        writer.execute("INSERT INTO filler VALUES ('written during the copy')")

    dest = tmp_path / "copy.sqlite3"
    try:
        copied = backup(source, dest, progress=write_between_steps)
    finally:
        writer.close()
    assert steps > 100  # the copy really went page by page, a commit between each
    assert rows(dest, "SELECT COUNT(*) FROM filler") == [(200,)]
    assert rows(source, "SELECT COUNT(*) FROM filler") == [(200 + steps,)]
    assert rows(dest, "PRAGMA journal_mode") == [("delete",)]  # one file, no -wal beside it
    assert (copied.threads, copied.messages) == (0, 0)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    env = porch_env(tmp_path / "data")
    add_site(env)
    dest = tmp_path / "porch-backup.sqlite3"
    dest.write_text("an older backup")
    refused = porch("backup", str(dest), env=env)
    assert refused.returncode == 2
    assert refused.stderr == f"porch: {dest} already exists (--force replaces it)\n"
    assert dest.read_text() == "an older backup"
    forced = porch("backup", str(dest), "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert rows(dest, "SELECT id FROM sites") == [(ALPHA.id,)]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def unwritable_directory(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        directory = tmp_path / "read-only"
        directory.mkdir(mode=0o555)
        return directory
    return Path("/sys")  # root may write anywhere, but sysfs refuses new files to all


@pytest.mark.parametrize(
    ("dest", "expected"),
    [
        ("no-such-dir/porch.sqlite3", "the directory {tmp}/no-such-dir does not exist"),
        ("a-file/porch.sqlite3", "the directory {tmp}/a-file does not exist"),
        (".", "{tmp} is a directory: name the backup file"),
        ("data/porch.sqlite3", "is the database itself"),
        ("UNWRITABLE/porch.sqlite3", "cannot write in UNWRITABLE"),
    ],
)
def test_bad_destination_is_one_line_and_exit_2(tmp_path: Path, dest: str, expected: str) -> None:
    env = porch_env(tmp_path / "data")
    add_site(env)
    (tmp_path / "a-file").write_text("")
    unwritable = str(unwritable_directory(tmp_path))
    dest = dest.replace("UNWRITABLE", unwritable)
    result = porch("backup", str(tmp_path / dest), env=env)
    assert result.returncode == 2, result.stderr
    expected = expected.format(tmp=tmp_path).replace("UNWRITABLE", unwritable)
    assert result.stderr.startswith("porch: ") and expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_missing_database_is_named(tmp_path: Path) -> None:
    env = porch_env(tmp_path / "nothing-here")
    result = porch("backup", str(tmp_path / "copy.sqlite3"), env=env)
    assert result.returncode == 2
    assert result.stderr == (
        f"porch: no database at {tmp_path}/nothing-here/porch.sqlite3 (--data-dir or --database)\n"
    )
    assert not (tmp_path / "nothing-here").exists()  # nothing created by looking
    assert not (tmp_path / "copy.sqlite3").exists()


def test_postgresql_is_pointed_to_pg_dump(tmp_path: Path) -> None:
    env = porch_env(tmp_path, database_url="postgresql://porch@127.0.0.1:5432/porch")
    result = porch("backup", str(tmp_path / "copy.sqlite3"), env=env)
    assert result.returncode == 2
    assert "PORCH_DATABASE_URL" in result.stderr and "pg_dump -Fc" in result.stderr


# -- the photos and files: DEST.blobs/ -------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def blob_names(directory: Path) -> set[str]:
    return {p.name for p in directory.rglob("*") if p.is_file()}


async def files_of(relay: RunningRelay, token: str) -> dict[str, bytes]:
    """Every file of the visitor's thread, by name, downloaded from `relay`."""
    async with relay.client() as client:
        thread = (await client.get("/v1/thread", headers=bearer(token))).json()
        return {
            a["name"]: (await client.get(a["url"])).content
            for m in thread["messages"]
            for a in m.get("attachments", [])
        }


async def send_files(relay: RunningRelay, token: str, files: dict[str, bytes]) -> None:
    async with relay.client() as client:
        ids = []
        for name, data in files.items():
            sent = await client.post(
                "/v1/thread/attachments", files={"file": (name, data)}, headers=bearer(token)
            )
            assert sent.status_code == 201, sent.text
            ids.append(sent.json()["id"])
        message = await client.post(
            "/v1/thread/messages",
            headers=bearer(token),
            json={"body": "", "client_id": f"files-{ids[0]}", "attachments": ids},
        )
        assert message.status_code == 201, message.text


async def test_the_files_come_along_and_a_restore_serves_them(
    make_relay: Callable[..., RunningRelay], tmp_path: Path
) -> None:
    live = make_relay(data_dir=tmp_path / "live")
    async with live.client() as client:
        ann = (await start_thread(client, "Ann here"))["token"]
        bob = (await start_thread(client, "Bob here"))["token"]
    await send_files(live, ann, {"order.pdf": PDF, "notes.txt": b"two baguettes\n"})
    await send_files(live, bob, {"bob.txt": b"one croissant\n"})
    dest = tmp_path / "backups" / "porch.sqlite3"
    dest.parent.mkdir()

    made = porch("backup", str(dest), env=relay_env(live))
    assert made.returncode == 0, made.stderr
    assert "3 files (" in made.stdout and f"in {dest}.blobs" in made.stdout
    copies = Path(f"{dest}.blobs")
    digests = {d for (d,) in rows(dest, "SELECT digest FROM attachments")}
    assert blob_names(copies) == digests and len(digests) == 3
    for digest in digests:  # the same layout; on one file system, the same file
        original = live.config.data_dir / "blobs" / digest[:2] / digest
        assert (copies / digest[:2] / digest).stat().st_ino == original.stat().st_ino

    # Ann is erased; the next backup over this one no longer holds her files.
    async with live.client() as client:
        assert (await client.delete("/v1/thread", headers=bearer(ann))).status_code == 204
    again = porch("backup", str(dest), "--force", env=relay_env(live))
    assert again.returncode == 0, again.stderr
    assert blob_names(copies) == {d for (d,) in rows(dest, "SELECT digest FROM attachments")}
    assert len(blob_names(copies)) == 1
    live.stop()

    restored = tmp_path / "restored"  # the restore: both put back in a fresh data dir
    restored.mkdir()
    shutil.copy(dest, restored / "porch.sqlite3")
    shutil.copytree(copies, restored / "blobs")
    relay = make_relay(data_dir=restored)
    assert await files_of(relay, bob) == {"bob.txt": b"one croissant\n"}


async def test_a_backup_cut_off_while_copying_files_leaves_no_database(
    make_relay: Callable[..., RunningRelay], tmp_path: Path
) -> None:
    live = make_relay(data_dir=tmp_path / "live")
    async with live.client() as client:
        ann = (await start_thread(client, "Ann here"))["token"]
    await send_files(live, ann, {"order.pdf": PDF})
    dest = tmp_path / "porch.sqlite3"
    digest = hashlib.sha256(PDF).hexdigest()
    block(Path(f"{dest}.blobs") / digest[:2])  # the file's directory cannot be made

    failed = porch("backup", str(dest), env=relay_env(live))
    assert failed.returncode == 1 and "cannot write the files" in failed.stderr
    assert not dest.exists()  # no database naming a file the backup does not have
    assert temporary_files(tmp_path) == []


def block(directory: Path) -> None:
    directory.parent.mkdir()
    directory.write_text("not a directory")


def temporary_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def other_file_system(tmp_path: Path) -> Path:
    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) to copy to")
    return other


async def test_files_are_copied_and_checked_across_file_systems(
    make_relay: Callable[..., RunningRelay], tmp_path: Path
) -> None:
    other = other_file_system(tmp_path)
    live = make_relay(data_dir=tmp_path / "live")
    async with live.client() as client:
        ann = (await start_thread(client, "Ann here"))["token"]
    notes = b"two baguettes\n"
    await send_files(live, ann, {"order.pdf": PDF, "notes.txt": notes})
    pdf, damaged = hashlib.sha256(PDF).hexdigest(), hashlib.sha256(notes).hexdigest()
    # A file of the live data dir whose bytes changed on disk is not copied as good.
    (live.config.data_dir / "blobs" / damaged[:2] / damaged).write_bytes(b"two croissants\n")
    with tempfile.TemporaryDirectory(dir=other) as elsewhere:
        dest = Path(elsewhere) / "porch.sqlite3"
        made = porch("backup", str(dest), env=relay_env(live))
        assert made.returncode == 0, made.stderr
        copies = Path(f"{dest}.blobs")
        assert blob_names(copies) == {pdf}
        assert (copies / pdf[:2] / pdf).read_bytes() == PDF
        assert "1 files (" in made.stdout
        assert "Note: 1 file(s)" in made.stdout and damaged in made.stdout
