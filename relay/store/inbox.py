"""The store's side of the owner's inbox: owners and their preferences, inbox sessions,
single-use sign-in links, the thread list with full-text search, closing threads.
Mixed into Store."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass

from relay.errors import InvalidToken
from relay.models import (
    Owner,
    OwnerSession,
    Site,
    ThreadStatus,
    ThreadSummary,
    utc_now,
)
from relay.store.engine import Engine, StoreEvent
from relay.store.pg_connection import dialect
from relay.store.rows import Db, Row, message_from_row, new_id, sites_of_owner, thread_from_row

INBOX_PAGE = 200  # threads in one list answer; the next ones come with `before`
SESSION_DAYS = 90  # an inbox session unused this long ends (its cookie lasts as long)
REPLY_SAMPLE_DAYS = 30  # the typical reply time looks this far back
REPLY_SAMPLE_ROWS = 2000
# A thread as the inbox lists it: with its visitor and how many of their messages
# no owner has read. Callers add the WHERE.
SUMMARY = (
    "SELECT t.*, v.name AS visitor_name, v.email AS visitor_email,"
    " v.created_at AS visitor_first_seen, v.language AS visitor_language,"
    " (SELECT COUNT(*) FROM messages m WHERE m.thread_id = t.id"
    "   AND m.seq > t.owner_read_seq AND m.author = 'visitor') AS unread"
    " FROM threads t JOIN visitors v ON v.id = t.visitor_id"
)
# Words, in any script; everything else (quotes, operators, stars) is dropped so a
# search box never reaches FTS5's query syntax.
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ThreadPage:
    """One page of the thread list, and where the next one starts: the (updated_at, id)
    of this page's last thread, or None when no thread comes after it."""

    threads: list[ThreadSummary]
    next: tuple[str, str] | None


def fold(text: str | None) -> str | None:
    """Lower case without accents, as FTS5's remove_diacritics does: "Élodie" → "elodie".
    Registered on the store's connections as the SQL function fold()."""
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def fts_query(text: str) -> str | None:
    """Every word, as a prefix ("cro" finds "croissant"), all required; None if no word."""
    words = WORD.findall(text)[:16]
    return " ".join(f'"{word}"*' for word in words) if words else None


def tsquery(text: str) -> str | None:
    """fts_query() for PostgreSQL: every folded word a prefix, all required."""
    words = [fold(word) for word in WORD.findall(text)[:16]]
    return " & ".join(f"'{word}':*" for word in words if word) or None


# Thread id → its latest message matching the search (FTS5; PostgreSQL full-text).
MESSAGE_SEARCH = (
    "SELECT m.thread_id, MAX(m.seq) FROM messages_fts"
    " JOIN messages m ON m.seq = messages_fts.rowid"
    " WHERE messages_fts MATCH ? AND m.site_id IN (SELECT value FROM json_each(?))"
    " GROUP BY m.thread_id"
)
MESSAGE_SEARCH_PG = (
    "SELECT m.thread_id, MAX(m.seq) FROM messages m"
    " WHERE to_tsvector('simple', fold(m.body)) @@ to_tsquery('simple', ?)"
    " AND m.site_id IN (SELECT value FROM json_each(?))"
    " GROUP BY m.thread_id"
)


class InboxStore(Engine):
    # -- owners ----------------------------------------------------------------------

    async def owner_sites(self, email: str) -> list[Site]:
        """Every site this address answers for."""
        return await self._read(lambda db: sites_of_owner(db, email))

    async def get_owner(self, email: str) -> Owner:
        """Preferences; the defaults for an address that never saved any."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT * FROM owners WHERE email = ?", (email.lower(),)
            ).fetchone()
        )
        if row is None:
            return Owner(email=email.lower())
        return Owner(
            email=row["email"],
            name=row["name"],
            language=row["language"],
            notify=row["notify"],
            aliases=tuple(json.loads(row["aliases"])),
        )

    async def save_owner(self, owner: Owner) -> Owner:
        def op(db: Db) -> tuple[Owner, list[StoreEvent]]:
            db.execute(
                "INSERT INTO owners (email, name, language, notify, aliases, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET"
                " name = excluded.name, language = excluded.language,"
                " notify = excluded.notify, aliases = excluded.aliases",
                (
                    owner.email,
                    owner.name,
                    owner.language,
                    owner.notify,
                    json.dumps(list(owner.aliases)),
                    utc_now(),
                ),
            )
            return owner, []

        return await self.write(op)

    # -- sessions ----------------------------------------------------------------------

    async def start_session(self, email: str, jti: str, user_agent: str | None) -> OwnerSession:
        """Use a sign-in link (once) and open a session for its owner."""

        def op(db: Db) -> tuple[OwnerSession, list[StoreEvent]]:
            now = utc_now()
            used = db.execute(
                "INSERT INTO login_uses (jti, used_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (jti, now),
            )
            if used.rowcount == 0:
                raise InvalidToken(
                    "this sign-in link was already used: each link works once; ask for a new one",
                    reason="used",
                )
            session = OwnerSession(new_id("s"), email.lower(), (user_agent or "")[:300], now, now)
            db.execute(
                "INSERT INTO owner_sessions (id, email, user_agent, created_at, last_seen_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (session.id, session.email, session.user_agent, now, now),
            )
            return session, []

        return await self.write(op)

    async def get_session(self, session_id: str) -> OwnerSession | None:
        """A live session: not revoked, used within SESSION_DAYS."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT * FROM owner_sessions WHERE id = ? AND revoked_at IS NULL"
                " AND last_seen_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
                (session_id, f"-{SESSION_DAYS} days"),
            ).fetchone()
        )
        return _session(row) if row else None

    async def touch_session(self, session_id: str) -> None:
        def op(db: Db) -> tuple[None, list[StoreEvent]]:
            db.execute(
                "UPDATE owner_sessions SET last_seen_at = ? WHERE id = ?", (utc_now(), session_id)
            )
            return None, []

        await self.write(op)

    async def list_sessions(self, email: str) -> list[OwnerSession]:
        rows = await self._read(
            lambda db: db.execute(
                "SELECT * FROM owner_sessions WHERE email = ? AND revoked_at IS NULL"
                " ORDER BY last_seen_at DESC",
                (email.lower(),),
            ).fetchall()
        )
        return [_session(row) for row in rows]

    async def revoke_sessions(self, email: str, session_id: str | None = None) -> list[str]:
        """Revoke one of this owner's sessions, or all of them; the ids revoked."""

        def op(db: Db) -> tuple[list[str], list[StoreEvent]]:
            rows = db.execute(
                "UPDATE owner_sessions SET revoked_at = ? WHERE email = ? AND revoked_at IS NULL"
                " AND (CAST(?3 AS TEXT) IS NULL OR id = ?3) RETURNING id",
                (utc_now(), email.lower(), session_id),
            ).fetchall()
            return [row[0] for row in rows], []

        return await self.write(op)

    # -- the thread list -----------------------------------------------------------------

    async def inbox_threads(
        self,
        sites: list[str],
        status: ThreadStatus | None,
        search: str | None,
        before: tuple[str, str] | None = None,
    ) -> ThreadPage:
        """Newest activity first (by updated_at, then id), INBOX_PAGE at a time; `before`
        is the previous page's `next`. `search` matches message text (accents folded,
        word prefixes) or the visitor's name or email."""

        if search is not None and search.strip():
            await self.catch_up_search()
        after_updated_at, after_id = before if before is not None else (None, None)

        def query(db: Db) -> ThreadPage:
            site_list = json.dumps(sites)
            matches: dict[str, int | None] | None = None
            if search is not None and search.strip():
                matches = _search(db, site_list, search.strip())
            # One row more than a page: whether it comes tells whether a next page does.
            rows = db.execute(
                SUMMARY + " WHERE t.site_id IN (SELECT value FROM json_each(?1))"
                " AND (CAST(?2 AS TEXT) IS NULL OR t.status = ?2)"
                " AND (CAST(?3 AS TEXT) IS NULL OR t.id IN (SELECT value FROM json_each(?3)))"
                " AND (CAST(?5 AS TEXT) IS NULL OR t.updated_at < ?5"
                "   OR (t.updated_at = ?5 AND t.id > ?6))"
                " ORDER BY t.updated_at DESC, t.id LIMIT ?4",
                (
                    site_list,
                    status.value if status else None,
                    json.dumps(list(matches)) if matches is not None else None,
                    INBOX_PAGE + 1,
                    after_updated_at,
                    after_id,
                ),
            ).fetchall()
            page = rows[:INBOX_PAGE]
            last = page[-1] if len(rows) > INBOX_PAGE else None
            hits = _hit_texts(db, matches or {}, [row["id"] for row in page], search or "")
            return ThreadPage(
                [_summary(db, row, hits.get(row["id"])) for row in page],
                (last["updated_at"], last["id"]) if last is not None else None,
            )

        return await self._read(query)

    async def inbox_thread(self, thread_id: str) -> ThreadSummary | None:
        def query(db: Db) -> ThreadSummary | None:
            row = db.execute(SUMMARY + " WHERE t.id = ?", (thread_id,)).fetchone()
            return _summary(db, row, None) if row else None

        return await self._read(query)

    async def last_seq(self) -> int:
        row = await self._read(lambda db: db.execute("SELECT MAX(seq) FROM messages").fetchone())
        return int(row[0] or 0)

    async def reply_delay_rows(self, site_id: str) -> list[tuple[str, str, str]]:
        """(thread, author, created_at) of the site's recent visitor and owner messages,
        by thread then seq: what the typical reply time is measured from."""
        rows = await self._read(
            lambda db: db.execute(
                "SELECT thread_id, author, created_at FROM ("
                "  SELECT * FROM messages WHERE site_id = ? AND author != 'system'"
                "  AND created_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)"
                "  ORDER BY seq DESC LIMIT ?) AS recent"
                " ORDER BY thread_id, seq",
                (site_id, f"-{REPLY_SAMPLE_DAYS} days", REPLY_SAMPLE_ROWS),
            ).fetchall()
        )
        return [(row[0], row[1], row[2]) for row in rows]


def _search(db: Db, site_list: str, text: str) -> dict[str, int | None]:
    """Thread id → its latest matching message (None: the visitor's name or email matched)."""
    found: dict[str, int | None] = {}
    postgres = dialect(db) == "postgres"
    expression = tsquery(text) if postgres else fts_query(text)
    if expression is not None:
        for row in db.execute(
            MESSAGE_SEARCH_PG if postgres else MESSAGE_SEARCH, (expression, site_list)
        ):
            found[row[0]] = row[1]
    folded = fold(text) or ""
    pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    for row in db.execute(
        "SELECT t.id FROM threads t JOIN visitors v ON v.id = t.visitor_id"
        " WHERE t.site_id IN (SELECT value FROM json_each(?))"
        " AND (fold(v.name) LIKE ?2 ESCAPE '\\' OR fold(v.email) LIKE ?2 ESCAPE '\\')",
        (site_list, pattern),
    ):
        found.setdefault(row[0], None)
    return found


def _hit_texts(
    db: Db, matches: dict[str, int | None], threads: list[str], search: str
) -> dict[str, str]:
    """The matching text of each listed thread found by its messages. Cut and marked
    here, for one page only: FTS5's snippet() costs as much for every hit of a search."""
    seqs = {thread: matches[thread] for thread in threads if matches.get(thread) is not None}
    if not seqs:
        return {}
    bodies = dict(
        db.execute(
            "SELECT seq, body FROM messages"
            " WHERE seq IN (SELECT CAST(value AS INTEGER) FROM json_each(?))",
            (json.dumps(list(seqs.values())),),
        ).fetchall()
    )
    terms = [fold(word) or "" for word in WORD.findall(search)[:16]]
    return {thread: hit_text(bodies.get(seq, ""), terms) for thread, seq in seqs.items()}


def hit_text(body: str, terms: list[str], around: int = 6) -> str:
    """`body` cut to a dozen words around the first hit, each word starting with a term
    (accents and case folded, as the index compares) between U+0002 and U+0003."""
    words = list(WORD.finditer(body))
    hits = [i for i, w in enumerate(words) if any((fold(w[0]) or "").startswith(t) for t in terms)]
    if not words or not hits:
        return body[:120]
    first = max(0, hits[0] - around)
    last = min(len(words), first + 2 * around)
    start, end = words[first].start(), words[last - 1].end()
    marked, cursor = [], start
    for i in hits:
        if first <= i < last:
            marked += [body[cursor : words[i].start()], "\x02", words[i][0], "\x03"]
            cursor = words[i].end()
    marked.append(body[cursor:end])
    return ("…" if first else "") + "".join(marked) + ("…" if last < len(words) else "")


def _summary(db: Db, row: Row, match: str | None) -> ThreadSummary:
    last = db.execute("SELECT * FROM messages WHERE seq = ?", (row["last_seq"],)).fetchone()
    return ThreadSummary(
        thread=thread_from_row(row),
        visitor_name=row["visitor_name"],
        visitor_email=row["visitor_email"],
        last_message=message_from_row(last) if last else None,
        unread=row["unread"],
        visitor_first_seen=row["visitor_first_seen"],
        visitor_language=row["visitor_language"],
        match=match,
    )


def _session(row: Row) -> OwnerSession:
    return OwnerSession(
        row["id"], row["email"], row["user_agent"], row["created_at"], row["last_seen_at"]
    )
