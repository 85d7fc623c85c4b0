"""What never gets an automatic answer, whatever it shares with one (relay/answers/intent.py),
and words that cannot be made to cost the relay: pure functions, no store."""

from __future__ import annotations

import pytest

from relay.answers.intent import needs_a_person, small_talk
from relay.answers.matching import MAX_QUERY_CHARS, MAX_QUERY_WORDS, Collection
from relay.models import Answer

# A question wrapped in a complaint: found by the review of issue 17's first part.
COMPLAINTS = [
    ("What are your opening hours? I'm very upset", "en"),
    ("opening hours? this is ridiculous", "en"),
    ("what are your opening hours?? really bad service", "en"),
    ("Do you deliver? The driver was very impolite", "en"),
    ("do you deliver? the order was wrong", "en"),
    ("Quels sont vos horaires ? Vous m'avez oublié", "fr"),
    ("quels sont vos horaires ? service nul", "fr"),
]


@pytest.mark.parametrize(("text", "language"), COMPLAINTS)
def test_a_question_in_a_complaint_needs_a_person(text: str, language: str) -> None:
    assert needs_a_person(text, language) == "complaint"


@pytest.mark.parametrize(
    ("text", "language", "why"),
    [
        ("I would like to talk to a person.", "en", "handoff"),
        ("Je voudrais parler à une personne.", "fr", "handoff"),
        ("My order number is 4412, can I change it?", "en", "personal"),
        ("J'ai commandé un gâteau pour samedi", "fr", "personal"),
        ("Do you deliver?", "en", None),
        ("Vous livrez ?", "fr", None),
    ],
)
def test_what_needs_a_person(text: str, language: str, why: str | None) -> None:
    assert needs_a_person(text, language) == why


def test_small_talk_asks_nothing() -> None:
    assert small_talk("Hello! Thanks a lot :)", "en")
    assert small_talk("Bonjour, merci beaucoup !", "fr")
    assert not small_talk("Hello, do you deliver?", "en")


def test_a_huge_word_costs_nothing() -> None:
    # Spelling correction by deletions grows with the cube of a word's length: a
    # 4,000-character "word" once took gigabytes. Long words are not corrected, and only
    # a message's beginning is read.
    collection = Collection(
        [Answer("a", "s", "en", "What are your opening hours?", ("When are you open?",), "7am.")],
        "en",
    )
    assert collection.speller.correct("openinghoursopeninghours") is None
    assert collection.speller.correct("opning") == "opening"
    assert collection.query_terms("x" * 4000) == ["x" * MAX_QUERY_CHARS]
    assert len(collection.query_terms(" ".join(f"w{n}" for n in range(2000)))) == MAX_QUERY_WORDS
