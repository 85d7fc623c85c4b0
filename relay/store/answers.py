"""The owner's answers (relay/answers) and their full-text search: SQLite FTS5 with BM25
column weights, PostgreSQL a weighted tsvector. Both index the search terms the caller
made (relay/answers/words.py), so they search the very same words. Mixed into Store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from relay.models import Answer, utc_now
from relay.store.engine import Engine, StoreEvent
from relay.store.pg_connection import dialect
from relay.store.rows import Db, Row, new_id

# Every column but PostgreSQL's tsvector (`search`), which nothing reads back.
COLUMNS = "id, site_id, language, question, alternatives, answer, created_at, updated_at"

# Column weights: the question counts most, other phrasings next, the answer's own
# words a little ("do you deliver?" is answered by "we deliver within 10 km").
CANDIDATES = (
    "SELECT a.id, a.site_id, a.language, a.question, a.alternatives, a.answer, a.created_at,"
    " a.updated_at FROM answers_fts JOIN answers a ON a.num = answers_fts.rowid"
    " WHERE answers_fts MATCH ? AND a.site_id = ? AND a.language = ?"
    " ORDER BY bm25(answers_fts, 3.0, 2.0, 0.5) LIMIT ?"
)
CANDIDATES_PG = (
    "SELECT a.id, a.site_id, a.language, a.question, a.alternatives, a.answer, a.created_at,"
    " a.updated_at FROM answers a, to_tsquery('simple', ?) q"
    " WHERE a.search @@ q AND a.site_id = ? AND a.language = ?"
    " ORDER BY ts_rank(a.search, q) DESC, a.num LIMIT ?"
)


@dataclass(frozen=True)
class Terms:
    """An answer's search terms, made by relay/answers/words.py."""

    question: str
    alternatives: str
    answer: str


class AnswerStore(Engine):
    async def replace_answers(
        self, site: str, answers: Sequence[tuple[Answer, Terms]], *, languages: set[str]
    ) -> int:
        """Make `answers` the site's whole list in these languages, in one transaction
        (an import: all or nothing). How many there are now. An answer whose question
        was there before keeps its id: a thread that got it does not get it again."""

        def op(db: Db) -> tuple[int, list[StoreEvent]]:
            known = {
                (row["language"], row["question"]): row["id"]
                for row in db.execute(
                    "SELECT id, language, question FROM answers WHERE site_id = ?", (site,)
                )
            }
            for language in languages:
                db.execute(
                    "DELETE FROM answers WHERE site_id = ? AND language = ?", (site, language)
                )
            for answer, terms in answers:
                again = known.pop((answer.language, answer.question), "")
                _insert(db, replace(answer, id=answer.id or again), terms)
            _changed(db, site)
            return len(answers), []

        return await self.write(op)

    async def add_answer(self, answer: Answer, terms: Terms) -> Answer:
        def op(db: Db) -> tuple[Answer, list[StoreEvent]]:
            _changed(db, answer.site)
            return _insert(db, answer, terms), []

        return await self.write(op)

    async def update_answer(self, answer: Answer, terms: Terms) -> Answer | None:
        """Change an answer's texts; None if the site has no such answer."""

        def op(db: Db) -> tuple[Answer | None, list[StoreEvent]]:
            row = db.execute(
                "UPDATE answers SET language = ?, question = ?, alternatives = ?, answer = ?,"
                " question_terms = ?, alternative_terms = ?, answer_terms = ?, updated_at = ?"
                f" WHERE id = ? AND site_id = ? RETURNING {COLUMNS}",
                (
                    answer.language,
                    answer.question,
                    json.dumps(list(answer.alternatives), ensure_ascii=False),
                    answer.answer,
                    terms.question,
                    terms.alternatives,
                    terms.answer,
                    utc_now(),
                    answer.id,
                    answer.site,
                ),
            ).fetchone()
            if row is not None:
                _changed(db, answer.site)
            return (answer_from_row(row) if row else None), []

        return await self.write(op)

    async def delete_answer(self, site: str, answer_id: str) -> bool:
        def op(db: Db) -> tuple[bool, list[StoreEvent]]:
            gone = db.execute(
                "DELETE FROM answers WHERE id = ? AND site_id = ?", (answer_id, site)
            ).rowcount
            if gone:
                _changed(db, site)
            return gone > 0, []

        return await self.write(op)

    async def site_answers(self, site: str, language: str | None = None) -> list[Answer]:
        """The site's answers (in one language), oldest first."""

        def read(db: Db) -> list[Row]:
            if language is None:
                sql = f"SELECT {COLUMNS} FROM answers WHERE site_id = ? ORDER BY num"
                return db.execute(sql, (site,)).fetchall()
            sql = f"SELECT {COLUMNS} FROM answers WHERE site_id = ? AND language = ? ORDER BY num"
            return db.execute(sql, (site, language)).fetchall()

        return [answer_from_row(row) for row in await self._read(read)]

    async def answers_revision(self, site: str) -> int:
        """Changes with every change to the site's answers: what a cache of them checks."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT revision FROM answer_revisions WHERE site_id = ?", (site,)
            ).fetchone()
        )
        return int(row[0]) if row else 0

    async def answer_candidates(
        self, site: str, language: str, terms: Sequence[str], limit: int
    ) -> list[Answer]:
        """The answers sharing any of `terms`, best ranked first (at most `limit`)."""
        unique = list(dict.fromkeys(term for term in terms if term.isalnum()))
        if not unique:
            return []

        def read(db: Db) -> list[Row]:
            if dialect(db) == "postgres":
                query = " | ".join(unique)
                return db.execute(CANDIDATES_PG, (query, site, language, limit)).fetchall()
            query = " OR ".join(f'"{term}"' for term in unique)
            return db.execute(CANDIDATES, (query, site, language, limit)).fetchall()

        return [answer_from_row(row) for row in await self._read(read)]

    async def answering_context(self, thread: str) -> tuple[str, str | None, str | None] | None:
        """(site, the visitor's language, when an owner last wrote in it) of a thread:
        what an automatic answer needs."""
        row = await self._read(
            lambda db: db.execute(
                "SELECT t.site_id, v.language, (SELECT MAX(created_at) FROM messages"
                " WHERE thread_id = t.id AND author = 'owner') FROM threads t"
                " JOIN visitors v ON v.id = t.visitor_id WHERE t.id = ?",
                (thread,),
            ).fetchone()
        )
        return (row[0], row[1], row[2]) if row else None

    async def answer(self, site: str, answer_id: str) -> Answer | None:
        row = await self._read(
            lambda db: db.execute(
                f"SELECT {COLUMNS} FROM answers WHERE id = ? AND site_id = ?", (answer_id, site)
            ).fetchone()
        )
        return answer_from_row(row) if row else None


def _changed(db: Db, site: str) -> None:
    db.execute(
        "INSERT INTO answer_revisions (site_id, revision) VALUES (?, 1)"
        " ON CONFLICT (site_id) DO UPDATE SET revision = answer_revisions.revision + 1",
        (site,),
    )


def _insert(db: Db, answer: Answer, terms: Terms) -> Answer:
    now = utc_now()
    row = db.execute(
        "INSERT INTO answers (id, site_id, language, question, alternatives, answer,"
        " question_terms, alternative_terms, answer_terms, created_at, updated_at)"
        f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}",
        (
            answer.id or new_id("ans"),
            answer.site,
            answer.language,
            answer.question,
            json.dumps(list(answer.alternatives), ensure_ascii=False),
            answer.answer,
            terms.question,
            terms.alternatives,
            terms.answer,
            answer.created_at or now,
            now,
        ),
    ).fetchone()
    return answer_from_row(row)


def answer_from_row(row: Row) -> Answer:
    return Answer(
        id=row["id"],
        site=row["site_id"],
        language=row["language"],
        question=row["question"],
        alternatives=tuple(json.loads(row["alternatives"])),
        answer=row["answer"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
