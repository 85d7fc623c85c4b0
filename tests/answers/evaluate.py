"""The automatic answers measured on tests/answers/eval_set.json (three small
businesses' FAQs in English and French, and 400 visitor messages, about 40% of which
must get no answer): precision, coverage, refusals. Used by test_eval.py (which holds
the targets) and by the benchmark (tests/bench/answers.py, which prints them)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relay.answers.finder import Finder
from relay.answers.library import checked, terms_of
from relay.models import Answer, Site
from relay.store import Store

EVAL_SET = Path(__file__).with_name("eval_set.json")


def load() -> dict[str, Any]:
    return json.loads(EVAL_SET.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def sites(data: dict[str, Any]) -> list[Site]:
    return [
        Site(name, name.title(), (f"owner@{name}.example",), (f"https://{name}.example",))
        for name in data["sites"]
    ]


async def seed(store: Store, data: dict[str, Any]) -> None:
    """The sites and their answers (ids as in the file)."""
    for site in sites(data):
        if await store.get_site(site.id) is None:
            await store.add_site(site)
        rows = []
        for item in data["sites"][site.id]["answers"]:
            answer = checked(
                Answer(
                    item["id"],
                    site.id,
                    item["language"],
                    item["question"],
                    tuple(item["alternatives"]),
                    item["answer"],
                )
            )
            rows.append((answer, terms_of(answer)))
        await store.replace_answers(site.id, rows, languages={"en", "fr"})


@dataclass
class Result:
    answered_right: int = 0
    answered_wrong: int = 0
    answerable: int = 0
    unanswerable: int = 0
    answered_unanswerable: int = 0
    misses: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    by_kind: Counter[str] = field(default_factory=Counter)
    kind_totals: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return self.answered_right + self.answered_wrong + self.answered_unanswerable

    @property
    def precision(self) -> float:
        return self.answered_right / self.sent if self.sent else 1.0

    @property
    def coverage(self) -> float:
        return self.answered_right / self.answerable if self.answerable else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 3),
            "coverage": round(self.coverage, 3),
            "sent": self.sent,
            "right": self.answered_right,
            "wrong answer": self.answered_wrong,
            "answered what must not be": self.answered_unanswerable,
            "answerable": self.answerable,
            "must not be answered": self.unanswerable,
            "right by kind": {
                kind: f"{self.by_kind[kind]}/{total}"
                for kind, total in sorted(self.kind_totals.items())
            },
        }


async def evaluate(finder: Finder, data: dict[str, Any]) -> Result:
    result = Result()
    for question in data["questions"]:
        found = await finder.find(question["site"], question["text"], question["language"])
        sent = found.answer.answer.id if found.answer else None
        expect = question["expect"]
        result.kind_totals[question["kind"]] += 1
        line = f"{question['kind']:>12} {question['text']!r} -> {sent} (want {expect})"
        if expect is None:
            result.unanswerable += 1
            if sent is None:
                result.by_kind[question["kind"]] += 1
            else:
                result.answered_unanswerable += 1
                result.wrong.append(line)
            continue
        result.answerable += 1
        if sent == expect:
            result.answered_right += 1
            result.by_kind[question["kind"]] += 1
        elif sent is None:
            result.misses.append(line)
        else:
            result.answered_wrong += 1
            result.wrong.append(line)
    return result
