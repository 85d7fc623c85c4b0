"""Automatic answers (issue 17): how often they are right, how many questions they
cover, and how fast suggestions come while a visitor types.

Quality: tests/answers/eval_set.json (three businesses' FAQs, 138 answers in English
and French; 403 visitor messages, 156 of which must get no answer: greetings, thanks,
complaints, personal messages, questions the FAQ does not cover, gibberish), run through
relay/answers on a fresh SQLite store, and again on PostgreSQL when one is reachable:
precision (of the answers sent, how many were the expected one), coverage (of the
answerable messages, how many got their answer), the messages that must not be answered
but were, and how often the two engines decide the same.

Speed: a relay process whose site has SITE_ANSWERS answers (the evaluation set's, each
also in three variants), asked POST /v1/sites/{site}/suggestions for every message of
the evaluation set, one after another over one connection, ROUNDS times: the 99th
percentile, against GET /healthz on the same relay in the same run (the HTTP round trip
itself).
"""

from __future__ import annotations

import csv
import io
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from relay.answers.finder import Finder
from relay.store import SQLiteStore, Store
from relay.store.postgres import PostgresStore
from tests.answers.evaluate import Result, evaluate, load, seed
from tests.bench import servers
from tests.bench.harness import Row, at_least, at_most, log

SITE_ANSWERS = 552  # the evaluation set's 138, and three variants of each
ROUNDS = 3
P99_TARGET_MS = 50.0


async def _quality(store: Store) -> tuple[Result, list[str | None]]:
    await store.open()
    try:
        data = load()
        await seed(store, data)
        finder = Finder(store)
        result = await evaluate(finder, data)
        decisions = []
        for question in data["questions"]:
            found = await finder.find(question["site"], question["text"], question["language"])
            decisions.append(found.answer.answer.id if found.answer else None)
        return result, decisions
    finally:
        await store.close()


def _site_csv() -> str:
    """SITE_ANSWERS answers for the bench site: every answer of the set, and variants
    naming other products, so the index holds as many words as a big FAQ."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("question", "answer", "language", "alternatives"))
    for site in load()["sites"].values():
        for item in site["answers"]:
            for variant in ("", " (gift box)", " (family size)", " (seasonal range)"):
                writer.writerow(
                    (
                        item["question"] + variant,
                        item["answer"] + variant,
                        item["language"],
                        " | ".join(a + variant for a in item["alternatives"]),
                    )
                )
    return out.getvalue()


async def _timings(client: httpx.AsyncClient, texts: list[tuple[str, str]]) -> list[float]:
    times = []
    for text, language in texts:
        started = time.perf_counter()
        answer = await client.post(
            f"/v1/sites/{servers.SITE}/suggestions", json={"text": text, "language": language}
        )
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"suggestions answered {answer.status_code}: {answer.text}")
    return times


async def _healthz(client: httpx.AsyncClient, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        (await client.get("/healthz")).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def run() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="porch-bench-answers-") as tmp:
        sqlite, decisions = await _quality(SQLiteStore(Path(tmp) / "answers.sqlite3"))
    summary = sqlite.summary()
    log(f"  answers on SQLite: {summary}")
    rows += [
        Row("answers: precision (SQLite)", sqlite.precision * 100, "%", target=at_least(95, "%")),
        Row("answers: coverage (SQLite)", sqlite.coverage * 100, "%", target=at_least(80, "%")),
        Row(
            "answers: must-not-answer answered",
            sqlite.answered_unanswerable,
            "msgs",
            target=at_most(0, "msgs"),
            note=f"of {sqlite.unanswerable}",
        ),
    ]
    try:
        async with servers.postgres_schema() as url:
            postgres, pg_decisions = await _quality(PostgresStore(url))
        same = sum(a == b for a, b in zip(decisions, pg_decisions, strict=True))
        rows += [
            Row("answers: coverage (PostgreSQL)", postgres.coverage * 100, "%"),
            Row(
                "answers: same decision both engines",
                same / len(decisions) * 100,
                "%",
                target=at_least(99, "%"),
            ),
        ]
    except RuntimeError as error:  # no PostgreSQL here: say so, measure the rest
        log(f"  answers on PostgreSQL skipped: {error}")
    texts = [(q["text"], q["language"]) for q in load()["questions"]]
    async with servers.relay(settings={"PORCH_SUGGESTIONS_PER_MINUTE": "1000000"}) as relay:
        faq = relay.data_dir / "faq.csv"
        faq.write_text(_site_csv(), encoding="utf-8")
        await servers.porch_cli(
            relay.data_dir, relay.env, "answers", "import", servers.SITE, str(faq)
        )
        headers = {"origin": servers.ORIGIN}
        async with httpx.AsyncClient(
            base_url=relay.http_url, headers=headers, timeout=30
        ) as client:
            await _timings(client, texts[:20])  # warm up: caches, connections
            ours, baseline = [], []
            for _ in range(ROUNDS):
                ours += await _timings(client, texts)
                baseline += await _healthz(client, len(texts))
    rows.append(
        Row(
            f"suggestions p99 ({SITE_ANSWERS} answers)",
            _p99(ours),
            "ms",
            baseline=_p99(baseline),
            target=at_most(P99_TARGET_MS, "ms"),
            note=f"median {statistics.median(ours):.1f} ms; baseline GET /healthz",
        )
    )
    return rows
