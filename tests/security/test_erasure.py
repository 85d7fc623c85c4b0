"""Erased words must not stay readable in the database's files.

A visitor writes words nobody else uses; the owner answers with more; search indexes
them. After each way of erasing (the visitor's DELETE, `porch visitor delete`, the
retention purge) every byte of the SQLite database and its WAL is searched for them,
while the relay runs and after it stops. On PostgreSQL the relay vacuums what it
erased from (README: Privacy)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import (
    RunningRelay,
    bearer,
    make_idle,
    porch_command,
    relay_env,
    start_relay,
    start_thread,
)

POLL = 0.05  # seconds between looks at what no event announces
WAIT = 10.0  # seconds: the relay's own work takes a fraction of one


def marker() -> str:
    return "zqx" + uuid.uuid4().hex[:12]  # a word no message, name or key contains


def files_of(relay: RunningRelay) -> list[Path]:
    path = relay.config.database_path
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()]


def found_in_files(relay: RunningRelay, words: list[str]) -> list[str]:
    """The words (and the files) whose bytes are in the database's files, any case."""
    found = []
    for path in files_of(relay):
        data = path.read_bytes().lower()
        found += [f"{word} in {path.name}" for word in words if word.encode() in data]
    return found


async def conversation(relay: RunningRelay, words: list[str]) -> dict[str, object]:
    """Words in a visitor's messages, name and address, and in the owner's reply; all
    indexed for search before this returns."""
    async with relay.client() as client:
        started = await start_thread(client, f"My order {words[0]} please", name=words[1])
        token = bearer(started["token"])  # type: ignore[arg-type]
        await client.post("/v1/thread/messages", headers=token, json={"body": f"{words[2]}!"})
        contact = {"email": f"{words[3]}@example.com"}
        assert (await client.post("/v1/thread/contact", headers=token, json=contact)).is_success
        thread = started["thread"]["id"]  # type: ignore[index]
        reply = await client.post(
            f"/v1/owner/threads/{thread}/messages",
            headers=bearer(relay.owner_token()),
            json={"body": f"Ready with {words[4]}"},
        )
        assert reply.status_code == 201
    last = reply.json()["seq"]
    if relay.config.database_url is None:  # SQLite indexes in batches after commits
        await wait_for(lambda: indexed_upto(relay) >= last, "the messages to be indexed")
    return started


def indexed_upto(relay: RunningRelay) -> int:
    with relay.db() as db:
        return int(db.execute("SELECT seq FROM search_indexed").fetchone()[0])


async def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT} s waiting for {what}")
        await asyncio.sleep(POLL)


def porch(relay: RunningRelay, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*porch_command(), *args], env=relay_env(relay), capture_output=True, text=True, timeout=60
    )


async def test_a_visitor_erasing_their_data_leaves_no_word_on_disk(relay: RunningRelay) -> None:
    words = [marker() for _ in range(5)]
    kept = marker()  # another visitor's conversation stays, and stays searchable
    started = await conversation(relay, words)
    await conversation(relay, [kept, marker(), marker(), marker(), marker()])
    assert found_in_files(relay, words)  # the search finds what it looks for
    async with relay.client() as client:
        erased = await client.delete("/v1/thread", headers=bearer(started["token"]))  # type: ignore[arg-type]
    assert erased.status_code == 204
    assert found_in_files(relay, words) == []
    with relay.db() as db:  # the index still works for the rest
        hits = db.execute(
            "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH ?", (kept,)
        ).fetchone()[0]
    assert hits == 1
    relay.stop()
    assert found_in_files(relay, words) == []


@pytest.mark.parametrize("how", ["porch visitor delete", "porch purge", "daily purge"])
async def test_owner_erasures_leave_no_word_on_disk(
    make_relay: Callable[..., RunningRelay], how: str
) -> None:
    relay = make_relay()
    words = [marker() for _ in range(5)]
    await conversation(relay, words)
    assert found_in_files(relay, words)
    if how == "porch visitor delete":
        result = porch(relay, "visitor", "delete", f"{words[3]}@example.com")
        assert result.returncode == 0, result.stderr
    elif how == "porch purge":
        make_idle(relay, days=30)
        result = porch(relay, "purge")
        assert result.returncode == 0 and "1 conversation(s) erased." in result.stdout
    else:  # what the relay runs by itself, at start-up and daily
        make_idle(relay, days=30)
        relay.stop()
        relay = start_relay(relay.config)  # the same database, its sites as they are
    try:
        await wait_for(lambda: relay.counts()["threads"] == 0, "the erasure")
        await wait_for(lambda: not found_in_files(relay, words), "the words to leave the files")
    finally:
        relay.stop()
    assert found_in_files(relay, words) == []


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
async def test_postgres_vacuums_and_rebuilds_the_search_index(relay: RunningRelay) -> None:
    """Deleted rows stay as dead versions until VACUUM, which the relay runs on the tables
    it erased from rather than wait for autovacuum; and a GIN index keeps every key it
    ever held, so the search index is rebuilt: its file holds the words before, not after."""
    words = [marker() for _ in range(5)]
    started = await conversation(relay, words)
    index_file = postgres_file(relay, "messages_search")
    if index_file is None:
        pytest.skip("the PostgreSQL server's files are not readable from here")
    before = index_file.read_bytes()
    assert any(word.encode() in before for word in (words[0], words[2], words[4]))

    def cleaned() -> bool:
        with relay.db() as db:
            vacuumed = db.execute(
                "SELECT last_vacuum FROM pg_stat_user_tables"
                " WHERE relname = 'messages' AND schemaname = current_schema()"
            ).fetchone()
        rebuilt = postgres_file(relay, "messages_search")
        return vacuumed[0] is not None and rebuilt is not None and rebuilt != index_file

    assert not cleaned()
    async with relay.client() as client:
        erased = await client.delete("/v1/thread", headers=bearer(started["token"]))  # type: ignore[arg-type]
    assert erased.status_code == 204
    await wait_for(cleaned, "VACUUM and the search index rebuilt after the erasure")
    rebuilt = postgres_file(relay, "messages_search")
    assert rebuilt is not None
    assert [word for word in words if word.encode() in rebuilt.read_bytes()] == []


def postgres_file(relay: RunningRelay, relation: str) -> Path | None:
    """The file of a relation, written out (CHECKPOINT), if this process can read it."""
    with relay.db() as db:
        db.execute("CHECKPOINT")
        data = db.execute("SELECT current_setting('data_directory')").fetchone()[0]
        path = Path(data) / db.execute("SELECT pg_relation_filepath(?)", (relation,)).fetchone()[0]
    try:
        path.read_bytes()
    except OSError:
        return None
    return path


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
async def test_postgres_rebuilds_once_at_a_time_and_drops_a_failed_copy(
    make_relay: Callable[..., RunningRelay], caplog: pytest.LogCaptureFixture
) -> None:
    """Two relays erasing at once would deadlock two rebuilds: they take turns. A rebuild
    that failed earlier (a timeout) left an invalid copy that every insert still
    updates, erased words included: it is dropped."""
    one, two = make_relay(), make_relay()
    with one.db() as db:  # what a failed REINDEX CONCURRENTLY leaves behind
        db.execute(
            "CREATE INDEX messages_search_ccnew ON messages"
            " USING gin (to_tsvector('simple', fold(body)))"
        )
        db.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid ="
            " (current_schema() || '.messages_search_ccnew')::regclass"
        )
    first = await conversation(one, [marker() for _ in range(5)])
    second = await conversation(two, [marker() for _ in range(5)])

    async def erase(relay: RunningRelay, started: dict[str, object]) -> int:
        async with relay.client() as client:
            response = await client.delete("/v1/thread", headers=bearer(started["token"]))  # type: ignore[arg-type]
        return response.status_code

    before = postgres_file(one, "messages_search")
    assert await asyncio.gather(erase(one, first), erase(two, second)) == [204, 204]

    def indexes() -> list[tuple[str, bool]]:
        with one.db() as db:
            return [
                (row[0], bool(row[1]))
                for row in db.execute(
                    "SELECT c.relname, i.indisvalid FROM pg_index i"
                    " JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE c.relname LIKE 'messages_search%'"
                    " AND c.relnamespace = current_schema()::regnamespace"
                )
            ]

    await wait_for(
        lambda: (
            indexes() == [("messages_search", True)]
            and postgres_file(one, "messages_search") != before
        ),
        "one valid search index, rebuilt",
    )
    for relay in (one, two):
        relay.stop()  # each waits for its own clean-up
    failed = [r.getMessage() for r in caplog.records if "erasure failed" in r.getMessage()]
    assert failed == []
