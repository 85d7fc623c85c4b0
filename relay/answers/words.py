"""Search terms of a text, the same for an owner's answer and a visitor's question:
accents and case folded ("Crème" and "creme" are one word), French elisions split
("l'heure" is "heure"), stop words left out, Snowball stems ("livrez" and "livraison"
meet at "livr"), so both engines index and search the very same terms."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any

import snowballstemmer  # type: ignore[import-untyped]

LANGUAGES = {"en": "english", "fr": "french"}
WORD = re.compile(r"[a-z0-9]+")
ELISION = re.compile(r"\b(?:[ldjmnst]|qu|jusqu|lorsqu|puisqu)['’]", re.IGNORECASE)


def listed(text: str) -> frozenset[str]:
    """The words of a list written as prose (stop words, lexicons)."""
    return frozenset(text.split())


# Words that carry no subject: a question about "opening hours" is about "open" and
# "hour", not "what", "are" or "your". Folded (no accents), as fold() leaves words.
STOP_WORDS = {
    "en": listed(
        """a about above after again all also am an and any are as at be because been
        before being below between both but by can could did do does doing down during
        each few for from further had has have having he her here hers herself him
        himself his how i if in into is it its itself just let me more most my myself
        no nor not now of off on once only or other our ours ourselves out over own
        please same she should so some such than that the their theirs them themselves
        then there these they this those through to too under until up very was we
        were what when where which while who whom why will with would you your yours
        yourself yourselves hi hello hey thanks thank ok okay hmm wondering wonder
        know tell question like want wanted would could may might get got u ur im ive
        id pls plz"""
    ),
    "fr": listed(
        """a ai aie aient aies ait as au aux avaient avais avait avec avez aviez avions
        avoir avons ayant c ca ce ceci cela celle celles celui ces cet cette chez ci
        comme comment d dans de des du elle elles en es est et etaient etais etait
        etant ete etes etre eu eux fait faites il ils j je jusqu l la le les leur leurs
        lui m ma mais me meme mes moi mon n ne ni nos notre nous on ont ou par pas peu
        peut peuvent peux pour pourquoi qu quand que quel quelle quelles quels qui s sa
        sans se sera serait ses si soit sommes son sont sur t ta te tes toi ton tu un
        une vos votre vous y bonjour bonsoir salut merci svp stp sil plait aimerais
        voudrais voulais savoir question dire oui non bien tres est-ce estce alors donc
        ok"""
    ),
}


def fold(text: str) -> str:
    """Lower case without accents: "Crème Brûlée" → "creme brulee"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str, language: str) -> list[str]:
    """The folded words of `text` that say something, in order (stop words out)."""
    stop = STOP_WORDS.get(language, frozenset())
    unelided = ELISION.sub(" ", text) if language == "fr" else text
    return [w for w in WORD.findall(fold(unelided.replace("’", "'"))) if w not in stop]


def terms(text: str, language: str) -> list[str]:
    """Stems of words(): what is indexed and searched."""
    return [stem(word, language) for word in words(text, language)]


@lru_cache(maxsize=65536)  # Snowball in pure Python costs ~0.1 ms a word; words repeat
def stem(word: str, language: str) -> str:
    stemmer = _stemmer(language)
    return str(stemmer.stemWord(word)) if stemmer else word


@cache
def _stemmer(language: str) -> Any:
    name = LANGUAGES.get(language)
    return snowballstemmer.stemmer(name) if name else None


class Speller:
    """Corrects a misspelt word to the vocabulary word it most likely means: one edit
    away (two for long words), else None; short words are never corrected ("bus" is not
    "bun"). Words are found by their deletions (SymSpell): a word and its misspelling
    share a form with up to that many letters deleted, so a query looks up a handful of
    keys instead of comparing with every word."""

    def __init__(self, vocabulary: Iterable[str]) -> None:
        self.vocabulary = frozenset(vocabulary)
        self._by_deletion: dict[str, set[str]] = {}
        for word in self.vocabulary:
            # Only query words of MIN..MAX letters are corrected, to one at most two
            # edits away: longer words could never be found, and would cost the most.
            if MIN_CORRECTED <= len(word) <= MAX_CORRECTED + 2:
                for form in _deletions(word, _most_edits(word)):
                    self._by_deletion.setdefault(form, set()).add(word)

    def correct(self, word: str) -> str | None:
        if word in self.vocabulary:
            return word
        if not MIN_CORRECTED <= len(word) <= MAX_CORRECTED:
            return None
        most = _most_edits(word)
        known = {w for form in _deletions(word, most) for w in self._by_deletion.get(form, ())}
        best, best_distance = None, most + 1
        for candidate in sorted(known):  # sorted: the same answer whatever the set order
            distance = _edits(word, candidate, most)
            if distance < best_distance:
                best, best_distance = candidate, distance
        return best


MIN_CORRECTED = 4
# Longer "words" are not words (a pasted link, a key mash): their deletions grow with the
# cube of their length, and a 4,000-character one would take gigabytes.
MAX_CORRECTED = 20


def _most_edits(word: str) -> int:
    return 1 if len(word) < 8 else 2


def _deletions(word: str, most: int) -> set[str]:
    """The word with up to `most` letters deleted (itself included)."""
    forms, edge = {word}, {word}
    for _ in range(most):
        edge = {w[:i] + w[i + 1 :] for w in edge for i in range(len(w))}
        forms |= edge
    return forms


def _edits(a: str, b: str, most: int) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count one), capped past `most`."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > most:
            return most + 1
        previous2, previous = previous, current
    return previous[-1]
