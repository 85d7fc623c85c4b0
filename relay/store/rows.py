"""Turning rows into records, new ids, and what a connection offers the store's SQL."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from relay.models import Attached, Author, Message, Site, Thread, ThreadStatus, Via

# A row of either engine (sqlite3.Row, asyncpg.Record): by column name or position.
Row = Any


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    """A sqlite3.Connection, or a PgConnection running the same statements."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...


def new_id(prefix: str) -> str:
    """Unguessable (96 random bits) and URL-safe, with a prefix a person can read."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


def site_from_row(row: Row) -> Site:
    return Site(
        id=row["id"],
        name=row["name"],
        owner_emails=tuple(json.loads(row["owner_emails"])),
        origins=tuple(json.loads(row["origins"])),
        settings=json.loads(row["settings"]),
        created_at=row["created_at"],
    )


def sites_of_owner(db: Db, address: str) -> list[Site]:
    """Every site this address answers for (it is in the site's owner_emails)."""
    rows = db.execute(
        "SELECT * FROM sites s WHERE EXISTS (SELECT 1 FROM json_each(s.owner_emails)"
        " WHERE lower(value) = ?) ORDER BY name, id",
        (address.lower(),),
    )
    return [site_from_row(row) for row in rows]


def thread_from_row(row: Row) -> Thread:
    return Thread(
        id=row["id"],
        site=row["site_id"],
        visitor=row["visitor_id"],
        status=ThreadStatus(row["status"]),
        page=row["page"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_seq=row["last_seq"],
        owner_read_seq=row["owner_read_seq"],
        visitor_read_seq=row["visitor_read_seq"],
    )


def message_from_row(row: Row) -> Message:
    return Message(
        seq=row["seq"],
        thread=row["thread_id"],
        author=Author(row["author"]),
        body=row["body"],
        via=Via(row["via"]),
        client_id=row["client_id"],
        created_at=row["created_at"],
        attachments=attached_from_json(row["attachments"]),
        answer=row["answer_id"],
    )


def attached_to_json(attachments: tuple[Attached, ...]) -> str | None:
    return json.dumps([a.to_json() for a in attachments]) if attachments else None


def attached_from_json(text: str | None) -> tuple[Attached, ...]:
    return tuple(Attached(**item) for item in json.loads(text)) if text else ()
