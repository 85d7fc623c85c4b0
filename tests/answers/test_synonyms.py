"""The owner's synonyms (the site's `synonyms` setting): the words of one group are one
term for the automatic answer and the suggestions, phrases included, on both engines;
a bad line is refused by name and changes nothing."""

from __future__ import annotations

import dataclasses

import pytest

from relay.answers.finder import Finder
from relay.answers.matching import Synonyms
from relay.errors import UnprocessableRequest
from relay.sites.settings import SYNONYMS, apply_changes
from relay.store import Store
from tests.answers.test_library import imported
from tests.pg import BOTH_ENGINES
from tests.support import ALPHA


async def with_synonyms(store: Store, lines: list[str]) -> None:
    site = await store.get_site("alpha")
    assert site is not None
    await store.add_site(apply_changes(site, {"synonyms": lines}), replace=True)


@BOTH_ENGINES
async def test_a_synonym_finds_the_answer_its_words_never_meet(store: Store) -> None:
    answers = {a.question: a.id for a in await imported(store)}
    finder = Finder(store)
    asked = "any car park near you?"  # the FAQ says "park", never "car park"
    before = await finder.find("alpha", "is there a lot for my vehicle", "en")
    assert before.answer is None and not before.candidates  # no shared word: not even found

    await with_synonyms(store, ["car park, lot, parking, park", "vehicle, car"])
    finder.changed("alpha")  # as the inbox does when the settings are saved
    found = await finder.find("alpha", "is there a lot for my vehicle", "en")
    assert found.answer is not None and found.answer.answer.id == answers["Where can I park?"]
    # The phrase is one term ("car park"), not "car" + "park": still the same answer.
    phrase = await finder.find("alpha", asked, "en")
    assert phrase.answer is not None and phrase.answer.answer.id == answers["Where can I park?"]
    suggested = await finder.suggest("alpha", "lot for the vehicle", "en")
    assert [s.answer.id for s in suggested][:1] == [answers["Where can I park?"]]


@BOTH_ENGINES
async def test_synonyms_change_what_is_answered_and_clearing_them_undoes_it(
    store: Store,
) -> None:
    answers = {a.question: a.id for a in await imported(store)}
    finder = Finder(store)
    await with_synonyms(store, ["drop off, deliver"])
    finder.changed("alpha")
    found = await finder.find("alpha", "do you drop off?", "en")
    assert found.answer is not None and found.answer.answer.id == answers["Do you deliver?"]
    await with_synonyms(store, [])
    finder.changed("alpha")
    assert (await finder.find("alpha", "do you drop off?", "en")).answer is None


def test_a_word_of_two_groups_belongs_to_the_first() -> None:
    synonyms = Synonyms(["car park, parking", "parking, garage", "ice cream, gelato"], "en")
    assert synonyms.apply(["car", "park", "near"]) == ["~0", "near"]
    # "parking" is "park" once stemmed: the first group's, not the second's.
    assert synonyms.apply(["garag", "park"]) == ["~1", "~0"]
    assert synonyms.apply(["ice", "cream", "ice"]) == ["~2", "ice"]
    assert synonyms.expand(["~0", "near"]) == ["car", "park", "park", "near"]


def test_lines_are_cleaned_and_bad_ones_named() -> None:
    assert SYNONYMS.check(["  coeliac ,celiac,, gluten-free ", "", "voiture, auto"]) == [
        "coeliac, celiac, gluten-free",
        "voiture, auto",
    ]
    assert SYNONYMS.check(["l’eau, water"]) == ["l’eau, water"]
    for bad in (
        ["coeliac"],  # one word is no group
        ["a, b, <script>"],
        ["a" * 41 + ", b"],
        [", ".join(f"w{n}" for n in range(21))],
        "coeliac, celiac",  # not a list of lines
        [["coeliac", "celiac"]],
        ["x, y"] * 201,
    ):
        with pytest.raises(ValueError):
            SYNONYMS.check(bad)


def test_a_bad_line_changes_nothing() -> None:
    site = dataclasses.replace(ALPHA, settings={"synonyms": ["car, vehicle"]})
    with pytest.raises(UnprocessableRequest) as refused:
        apply_changes(site, {"synonyms": ["car, vehicle", "lonely"], "greeting": "Hi"})
    assert refused.value.reason == "synonyms" and "lonely" in str(refused.value)
    assert site.settings == {"synonyms": ["car, vehicle"]}
