"""The automatic answers on the evaluation set (tests/answers/evaluate.py): sure or
silent. Floors that hold today; the benchmark prints the numbers (tests/bench/answers.py).

The issue's target is 80% coverage at 95% precision; word matching reaches ~30% on this
set, whose paraphrases mostly share no word with the owner's question (README and the
closing note of issue 17 say what comes next)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.answers.finder import Finder
from tests.answers.evaluate import evaluate, load, seed
from tests.pg import BOTH_ENGINES, make_store

pytestmark = BOTH_ENGINES

NEVER_ANSWERED = {"greeting", "thanks", "complaint", "personal", "gibberish", "out_of_scope"}


async def test_answers_are_sure_or_silent(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = make_store(engine, tmp_path, request)
    await store.open()
    try:
        data = load()
        await seed(store, data)
        result = await evaluate(Finder(store), data)
    finally:
        await store.close()
    summary = result.summary()
    assert result.precision >= 0.95, summary
    assert result.answered_unanswerable == 0, result.wrong
    assert result.coverage >= 0.27, summary  # today's floor (target: 0.80)
    for kind in NEVER_ANSWERED:
        assert summary["right by kind"][kind].split("/")[0] == str(result.kind_totals[kind])
