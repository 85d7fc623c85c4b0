"""How sure we are that an answer answers a message, from the database's candidates.

The engine's rank only picks candidates (it differs between FTS5's BM25 and
PostgreSQL's ts_rank); the decision is made here, the same on both, from what a careful
person would check:
- how much of one way of asking (the question or an alternative) the message says,
  each word weighted by how rare it is among the site's answers (IDF);
- how much of the message that answer explains (a message with much besides — a name,
  a date, an order — asks something else too);
- how far ahead of the next answer it is (two close answers: unsure, so silent).

The owner's synonyms (the site's `synonyms` setting) make the words of one group one term
on both sides, so "celiac" in a message meets "gluten-free" in an answer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from relay.answers.words import Speller, stem, terms, words
from relay.models import Answer

# Calibrated on tests/answers/eval_set.json (tests/bench/answers.py prints the result):
# the most answers at 95% precision or more.
ANSWER_SCORE = 0.46  # at least this sure to send an answer
ANSWER_MARGIN = 0.28  # and this far ahead of the next answer
SUGGEST_SCORE = 0.3  # suggestions while typing ask less: the visitor picks
ANSWER_WEIGHT = 0.5  # an answer's own words count half as much as a way of asking
MAX_QUERY_CHARS = 500
MAX_QUERY_WORDS = 40
UNKNOWN_WEIGHT = 0.4  # a word no answer of the site uses (a town, a name) counts less


@dataclass(frozen=True)
class Scored:
    answer: Answer
    score: float
    asked_as: str  # the way of asking it matched best

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.answer.id,
            "question": self.answer.question,
            "matched": self.asked_as,
            "score": round(self.score, 3),
        }


class Synonyms:
    """A site's groups of words that mean the same, as terms: each word or phrase of a
    group becomes the group's one term (a token no text can contain)."""

    def __init__(self, lines: Sequence[str], language: str) -> None:
        self.phrases: dict[tuple[str, ...], str] = {}  # an entry's terms: its group's term
        self.members: dict[str, list[str]] = {}  # a group's term: the terms of its entries
        for number, line in enumerate(lines):
            for entry in line.split(","):
                found = tuple(terms(entry, language))
                if found and found not in self.phrases:  # in two groups: the first one's
                    self.phrases[found] = f"~{number}"
                    self.members.setdefault(f"~{number}", []).extend(found)
        self.longest = max(map(len, self.phrases), default=0)

    def apply(self, found: Sequence[str]) -> list[str]:
        """`found` (a text's terms, in order) with each entry of a group, the longest
        first, replaced by its group's term."""
        out, at = [], 0
        while at < len(found):
            for size in range(min(self.longest, len(found) - at), 0, -1):
                group = self.phrases.get(tuple(found[at : at + size]))
                if group:
                    out.append(group)
                    at += size
                    break
            else:
                out.append(found[at])
                at += 1
        return out

    def expand(self, query: Iterable[str]) -> list[str]:
        """The words the full-text index knows: a group's term becomes all its entries'."""
        return [term for each in query for term in self.members.get(each, (each,))]


class Collection:
    """What scoring needs of a site's answers in one language: word rarity, the words
    typos are corrected to, the owner's synonyms. Built once per change (finder.py)."""

    def __init__(
        self, answers: Sequence[Answer], language: str, synonyms: Sequence[str] = ()
    ) -> None:
        self.language = language
        self.size = len(answers)
        self.synonyms = Synonyms(synonyms, language)
        found: Counter[str] = Counter()
        vocabulary = {w for line in synonyms for w in words(line, language)}
        # Each answer's ways of asking and its own words, as terms: made once, not per query.
        self.ways: dict[str, list[tuple[str, frozenset[str]]]] = {}
        self.said: dict[str, frozenset[str]] = {}
        for answer in answers:
            texts = [answer.question, *answer.alternatives, answer.answer]
            found.update({t for text in texts for t in self.terms(text)})
            vocabulary.update(w for text in texts for w in words(text, language))
            self.ways[answer.id] = [(way, frozenset(self.terms(way))) for way in texts[:-1]]
            self.said[answer.id] = frozenset(self.terms(answer.answer))
        self.frequency = found
        self.speller = Speller(vocabulary)

    def terms(self, text: str) -> list[str]:
        return self.synonyms.apply(terms(text, self.language))

    def idf(self, term: str) -> float:
        return math.log(1 + (self.size + 1) / (self.frequency.get(term, 0) + 0.5))

    def query_terms(self, text: str) -> list[str]:
        """The message's terms, each misspelt word first corrected to a known one; only
        its beginning counts (a question is short; a long message needs a person)."""
        found = []
        for word in words(text[:MAX_QUERY_CHARS], self.language)[:MAX_QUERY_WORDS]:
            found.append(stem(self.speller.correct(word) or word, self.language))
        return list(dict.fromkeys(self.synonyms.apply(found)))

    def weight(self, items: Iterable[str]) -> float:
        return sum(self.idf(term) for term in items)

    def query_weight(self, items: Iterable[str]) -> float:
        """weight() of a message's terms: the words no answer uses count less."""
        return sum(
            self.idf(term) * (1.0 if term in self.frequency else UNKNOWN_WEIGHT) for term in items
        )


def rank(
    collection: Collection, query: Sequence[str], candidates: Sequence[Answer]
) -> list[Scored]:
    """The candidates scored for the query's terms, best first."""
    asked = set(query)
    total = collection.query_weight(asked)
    if not total:
        return []
    scored = []
    for answer in candidates:
        if answer.id not in collection.ways:  # changed since the collection was made
            continue
        said = collection.said[answer.id]
        best, best_as = 0.0, answer.question
        for phrasing, ways in collection.ways[answer.id]:
            if not ways:
                continue
            shared = asked & ways
            # How much of this way of asking the message says.
            said_of_way = collection.weight(shared) / collection.weight(ways)
            # How much of the message the answer explains (its own words count less).
            explained = (
                collection.weight(shared)
                + ANSWER_WEIGHT * collection.query_weight((asked & said) - shared)
            ) / total
            score = 2 * said_of_way * explained / (said_of_way + explained) if shared else 0.0
            if score > best:
                best, best_as = score, phrasing
        scored.append(Scored(answer, best, best_as))
    return sorted(scored, key=lambda s: s.score, reverse=True)


def decide(scored: Sequence[Scored]) -> Scored | None:
    """The answer to send, or None when unsure."""
    if not scored:
        return None
    best = scored[0]
    runner_up = scored[1].score if len(scored) > 1 else 0.0
    if best.score >= ANSWER_SCORE and best.score - runner_up >= ANSWER_MARGIN:
        return best
    return None


def suggestions(scored: Sequence[Scored], most: int = 3) -> list[Scored]:
    return [s for s in scored[:most] if s.score >= SUGGEST_SCORE]
