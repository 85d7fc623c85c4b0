"""A message's statements find their rows through indexes: none scans a table that grows
with the store (issue 20: CPU per message grew with the number of stored messages).

Every statement a real relay runs on SQLite while a conversation goes through its edges
(HTTP and the live socket, visitor and owner, email notifications queued) is recorded
on the store's own connections, then planned with EXPLAIN QUERY PLAN on the same file.
Not timed: a plan says how the cost grows, a stopwatch on this machine would not.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from relay.store.sqlite import SQLiteStore, _in_thread
from tests.mail.smtp_sink import SinkServer
from tests.support import RunningRelay, bearer, open_live, start_thread

# Tables with a row per message, thread or visitor (or per delivery): a full scan of one
# costs in proportion to everything ever said, on every message.
GROWING = {"messages", "threads", "visitors", "outbox", "attachments", "chats"}
# "SCAN messages", "SCAN t" (an alias), "SCAN m USING COVERING INDEX x": all read every row.
SCAN = re.compile(r"^SCAN (\w+)")
# `FROM threads t`, `JOIN visitors AS v`: which table an alias in a plan stands for.
ALIAS = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?", re.IGNORECASE)
PLANNED = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
# The relay's upkeep, which may run meanwhile: at start-up then daily, not per message.
UPKEEP = ("DELETE FROM attachments WHERE message_seq IS NULL",)  # store.purge_unsent


def table_scans(db: sqlite3.Connection, sql: str) -> list[str]:
    """The growing tables a statement reads whole, by its plan."""
    names: dict[str, str] = {}
    for table, alias in ALIAS.findall(sql):
        names[table.lower()] = table.lower()
        if alias and alias.upper() not in ("ON", "WHERE", "USING", "JOIN", "ORDER", "GROUP"):
            names[alias.lower()] = table.lower()
    scanned = []
    for row in db.execute("EXPLAIN QUERY PLAN " + sql):
        found = SCAN.match(row[3])
        if found and names.get(found.group(1).lower(), found.group(1).lower()) in GROWING:
            scanned.append(row[3])
    return scanned


async def record_statements(store: SQLiteStore, record: Callable[[str], Any] | None) -> None:
    """Hand every statement the store's connections run to `record` (None: stop)."""
    for conn in (store._writer, store._reader):
        assert conn is not None
        await _in_thread(conn, lambda db: db.set_trace_callback(record))


async def a_conversation(relay: RunningRelay) -> None:
    """A visitor and an owner talk through every edge a message takes."""
    async with relay.client() as client:
        started = await start_thread(client, "Do you deliver on Sundays?")
        token, thread = started["token"], started["thread"]["id"]
        posted = await client.post(
            "/v1/thread/messages",
            headers=bearer(token),
            json={"body": "To Lyon", "client_id": "http-1"},
        )
        assert posted.status_code == 201, posted.text
        history = await client.get("/v1/thread", headers=bearer(token))
        assert [m["body"] for m in history.json()["messages"]][-1] == "To Lyon"
    owner = await open_live(relay, relay.owner_token(), origin=None)
    visitor = await open_live(relay, token)
    await visitor.send(type="send", body="Around noon", client_id="ws-1")
    assert (await visitor.next("ack"))["client_id"] == "ws-1"
    await owner.send(type="send", thread=thread, body="Yes, we do", client_id="owner-1")
    assert (await owner.next("ack"))["client_id"] == "owner-1"
    reply = await visitor.next("message")
    assert reply["message"]["body"] == "Yes, we do"
    await visitor.send(type="read", seq=reply["message"]["seq"])
    await owner.send(type="read", thread=thread, seq=reply["message"]["seq"])
    await visitor.send(type="ping")  # answered after the read: the read was handled
    await owner.send(type="ping")
    assert (await visitor.next("pong"))["type"] == "pong"
    assert (await owner.next("pong"))["type"] == "pong"
    await visitor.ws.close()
    await owner.ws.close()


async def test_no_statement_of_a_message_scans_a_growing_table(
    make_relay: Callable[..., RunningRelay], sink: SinkServer
) -> None:
    # Email on (owners are notified), sent later: the deliveries are queued, not sent.
    relay = make_relay(
        smtp_url=sink.url,
        reply_domain="reply.example",
        owner_notify_delay=3600,
        visitor_notify_delay=3600,
    )
    store = relay.services.store
    assert isinstance(store, SQLiteStore)
    statements: list[str] = []
    await relay.call(record_statements(store, statements.append))
    try:
        await a_conversation(relay)
    finally:
        await relay.call(record_statements(store, None))
    planned = {
        s for s in statements if s.lstrip().upper().startswith(PLANNED) and not s.startswith(UPKEEP)
    }
    # The path was recorded: new messages, their queued emails, the visitor's thread.
    assert any(s.startswith("INSERT INTO messages") for s in planned)
    assert any(s.startswith("INSERT INTO outbox") for s in planned)
    assert any("FROM threads t JOIN visitors v" in s for s in planned)
    with sqlite3.connect(relay.config.database_path) as db:
        db.create_function("fold", 1, lambda text: text, deterministic=True)
        scans = {s: found for s in sorted(planned) if (found := table_scans(db, s))}
    assert scans == {}


def test_the_plan_reader_sees_scans_through_aliases() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE threads (id TEXT PRIMARY KEY, visitor_id TEXT)")
    db.execute("CREATE TABLE visitors (id TEXT PRIMARY KEY)")
    lookup = "SELECT t.* FROM threads t JOIN visitors v ON v.id = t.visitor_id WHERE v.id = 'x'"
    assert table_scans(db, lookup) == ["SCAN t"]
    db.execute("CREATE INDEX threads_visitor ON threads(visitor_id)")
    assert table_scans(db, lookup) == []
    assert table_scans(db, "SELECT * FROM threads WHERE id = 'x'") == []
