"""Finding the owner's answer for what a visitor writes: for `porch answers ask`, for
suggestions while they type, and for the automatic answer to a message they sent.

A site's answers in one language become a Collection (matching.py) once per change of
the answers or of the site's synonyms, checked by a cheap version read, so each question
costs one full-text query."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from relay.answers.intent import needs_a_person, small_talk
from relay.answers.matching import Collection, Scored, decide, rank, suggestions
from relay.sites.settings import SYNONYMS
from relay.store import Store

CANDIDATES = 10  # from the full-text index, to score
# Seconds a site's answers revision and synonyms are trusted: an edit on another relay
# (or by the CLI) is seen this much later; this relay's own edits at once (changed()).
REVISION_TTL = 5.0


@dataclass(frozen=True)
class Revision:
    answers: int  # the store's answers_revision: 0 if the site never had one
    synonyms: tuple[str, ...]
    read_at: float


@dataclass(frozen=True)
class Found:
    """What the relay would do with a message, and why (`porch answers ask`)."""

    answer: Scored | None
    candidates: list[Scored]
    refused: str | None = None  # small_talk, complaint, personal: never answered

    def to_json(self) -> dict[str, Any]:
        best = self.candidates[0].score if self.candidates else 0.0
        return {
            "answered": self.answer is not None,
            "question": self.answer.answer.question if self.answer else None,
            "answer": self.answer.answer.answer if self.answer else None,
            "score": round(self.answer.score if self.answer else best, 3),
            "candidates": [c.to_json() for c in self.candidates],
            "refused": self.refused,
        }


@dataclass
class Finder:
    store: Store
    _collections: dict[tuple[str, str], tuple[Revision, Collection | None]] = field(
        default_factory=dict
    )
    _revisions: dict[str, Revision] = field(default_factory=dict)

    async def find(self, site: str, text: str, language: str) -> Found:
        """The answer to send for `text`, if one is sure; touches nothing."""
        if small_talk(text, language):
            return Found(None, [], "small_talk")
        scored = await self._scored(site, text, language)
        refused = needs_a_person(text, language)
        if refused:
            return Found(None, scored, refused)
        return Found(decide(scored), scored)

    async def suggest(self, site: str, text: str, language: str) -> list[Scored]:
        """Up to three answers that may be what the visitor is typing."""
        if small_talk(text, language):
            return []
        return suggestions(await self._scored(site, text, language))

    async def _scored(self, site: str, text: str, language: str) -> list[Scored]:
        collection = await self._collection(site, language)
        if collection is None:
            return []
        query = collection.query_terms(text)
        searched = collection.synonyms.expand(query)
        candidates = await self.store.answer_candidates(site, language, searched, CANDIDATES)
        return rank(collection, query, candidates)

    async def has_answers(self, site: str) -> bool:
        """Whether the site has ever had answers, read at most every REVISION_TTL
        seconds: a visitor's message to a site without any costs no query."""
        return (await self._revision(site)).answers > 0

    async def _revision(self, site: str) -> Revision:
        now = time.monotonic()
        known = self._revisions.get(site)
        if known is None or now - known.read_at > REVISION_TTL:
            answers = await self.store.answers_revision(site)
            settings = await self.store.get_site(site) if answers else None
            synonyms = tuple(SYNONYMS.of(settings)) if settings else ()
            known = Revision(answers, synonyms, now)
            self._revisions[site] = known
        return known

    def changed(self, site: str) -> None:
        """This relay changed the site's answers or synonyms: read them again at once."""
        self._revisions.pop(site, None)

    async def _collection(self, site: str, language: str) -> Collection | None:
        revision = await self._revision(site)
        if revision.answers == 0:
            return None  # never had an answer
        cached = self._collections.get((site, language))
        same = (revision.answers, revision.synonyms)
        if cached is not None and (cached[0].answers, cached[0].synonyms) == same:
            return cached[1]
        answers = await self.store.site_answers(site, language)
        collection = Collection(answers, language, revision.synonyms) if answers else None
        self._collections[(site, language)] = (revision, collection)
        return collection
