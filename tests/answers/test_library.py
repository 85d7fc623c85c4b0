"""The owner's answers as a list and a file, and what the relay would answer, over a
real store of either engine: an import is all or nothing, each bad row named by line;
the full-text index follows every change; `porch answers` drives the same."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from relay.answers.finder import Finder
from relay.answers.library import BadFile, read_csv, terms_of, write_csv
from relay.models import Answer
from relay.store import Store
from tests.pg import BOTH_ENGINES
from tests.support import add_site, porch_command, porch_env

pytestmark = BOTH_ENGINES

FAQ_ROWS = [
    ("question", "answer", "language", "alternatives"),
    (
        "What are your opening hours?",
        "We are open Tuesday to Saturday, 7am to 6pm.",
        "en",
        "When are you open? | What time do you close?",
    ),
    (
        "Do you deliver?",
        "We deliver within 10 km for orders over 30 euros.",
        "en",
        "Can you bring it to my house?",
    ),
    (
        "How much is delivery?",
        "Delivery costs 5 euros within 10 km.",
        "en",
        "What is the delivery fee?",
    ),
    ("Where can I park?", "There is free parking behind the shop.", "en", ""),
    (
        "Quels sont vos horaires ?",
        "Nous sommes ouverts du mardi au samedi, de 7h à 18h.",
        "fr",
        "Vous êtes ouverts quand ? | À quelle heure fermez-vous ?",
    ),
]


def as_csv(rows: list[tuple[str, ...]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


FAQ = as_csv(FAQ_ROWS)


async def imported(store: Store, text: str = FAQ) -> list[Answer]:
    answers = read_csv(text, "alpha", "en")
    await store.replace_answers(
        "alpha", [(a, terms_of(a)) for a in answers], languages={"en", "fr"}
    )
    return await store.site_answers("alpha")


async def test_an_import_becomes_the_list_and_exports_as_it_came(store: Store) -> None:
    answers = await imported(store)
    assert [a.question for a in answers][:2] == ["What are your opening hours?", "Do you deliver?"]
    assert answers[0].alternatives == ("When are you open?", "What time do you close?")
    assert answers[4].language == "fr" and answers[4].answer.startswith("Nous sommes")
    again = read_csv(write_csv(answers), "alpha", "en")
    assert [(a.question, a.answer, a.language, a.alternatives) for a in again] == [
        (a.question, a.answer, a.language, a.alternatives) for a in answers
    ]


async def test_an_answer_imported_again_keeps_its_id(store: Store) -> None:
    # "Once per answer and thread" and the inbox's labels hold across an export/import.
    first = await imported(store)
    again = await imported(store, as_csv([*FAQ_ROWS, ("New?", "Yes.", "en", "")]))
    assert [a.id for a in again[: len(first)]] == [a.id for a in first]
    assert again[-1].id not in {a.id for a in first}


async def test_a_bad_file_names_every_bad_line_and_changes_nothing(store: Store) -> None:
    before = await imported(store)
    bad = (
        "question,answer,language,alternatives\n"
        "Fine question?,Fine answer.,en,\n"
        ",An answer without a question,en,\n"
        "A question without an answer?,,en,\n"
        "Quoi ?,Ceci.,de,\n"
        f"Long?,{'x' * 2001},en,\n"
    )
    with pytest.raises(BadFile) as refused:
        read_csv(bad, "alpha", "en")
    assert [p.split(":")[0] for p in refused.value.problems] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
    ]
    with pytest.raises(BadFile, match="line 1: the header"):
        read_csv("q,a\nx,y\n", "alpha", "en")
    assert await store.site_answers("alpha") == before


async def test_the_index_follows_edits_and_deletions(store: Store) -> None:
    answers = await imported(store)
    finder = Finder(store)
    found = await finder.find("alpha", "is there any parking", "en")
    assert found.answer is not None and found.answer.answer.id == answers[3].id
    moved = replace(
        answers[3], question="Can I bring my dog?", alternatives=("pets",), answer="Dogs welcome."
    )
    assert await store.update_answer(moved, terms_of(moved)) is not None
    finder.changed("alpha")  # as the inbox does after an edit (others see it within 5 s)
    assert (await finder.find("alpha", "is there any parking", "en")).answer is None
    found = await finder.find("alpha", "can i bring my dog", "en")
    assert found.answer is not None and found.answer.answer.id == answers[3].id
    assert await store.delete_answer("alpha", answers[3].id)
    finder.changed("alpha")
    left = (await finder.find("alpha", "can i bring my dog", "en")).candidates
    assert answers[3].id not in {c.answer.id for c in left}
    assert not await store.delete_answer("beta", answers[0].id)  # another site's: no


async def test_ask_answers_surely_or_not_at_all(store: Store) -> None:
    await imported(store)
    finder = Finder(store)
    sure = (await finder.find("alpha", "wen are you open on saturdays", "en")).to_json()
    assert sure["answered"] is True and sure["question"] == "What are your opening hours?"
    assert sure["answer"] == "We are open Tuesday to Saturday, 7am to 6pm."
    assert 0 < sure["score"] <= 1 and sure["candidates"][0]["question"] == sure["question"]
    french = (await finder.find("alpha", "etes vous ouverts le samedi ?", "fr")).to_json()
    assert french["answered"] is True and french["answer"].startswith("Nous sommes")
    for text, why in [
        ("Hello!", "small_talk"),
        ("I would like to talk to a person about delivery", "handoff"),
        ("thanks a lot", "small_talk"),
        ("My delivery never arrived and nobody called me", "complaint"),
        ("I ordered a cake, can you deliver it to my house on Saturday?", "personal"),
    ]:
        found = (await finder.find("alpha", text, "en")).to_json()
        assert (found["answered"], found["refused"]) == (False, why), text
    off_topic = (await finder.find("alpha", "do you sell coffee beans", "en")).to_json()
    assert off_topic["answered"] is False and off_topic["refused"] is None


def test_the_cli_imports_exports_lists_and_asks(tmp_path: Path, database_url: str | None) -> None:
    env = porch_env(tmp_path, **({"database_url": database_url} if database_url else {}))
    add_site(env)
    faq = tmp_path / "faq.csv"
    faq.write_text(FAQ, encoding="utf-8")

    def porch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*porch_command(), "answers", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = porch("import", "alpha", str(faq))
    assert done.returncode == 0, done.stderr
    assert "Imported 5 answers" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nok?,ok\n,no question\n", encoding="utf-8")
    refused = porch("import", "alpha", str(bad))
    assert refused.returncode != 0 and "line 3" in refused.stderr
    listed = json.loads(porch("list", "alpha").stdout)
    assert len(listed) == 5  # the bad file changed nothing
    exported = porch("export", "alpha").stdout
    assert exported.splitlines()[0] == "question,answer,language,alternatives"
    assert len(read_csv(exported, "alpha", "en")) == 5
    asked = json.loads(porch("ask", "alpha", "where can I park?").stdout)
    assert asked["answered"] is True and asked["question"] == "Where can I park?"
    assert set(asked) >= {"answered", "question", "answer", "score", "candidates"}
    french = json.loads(porch("ask", "alpha", "vous etes ouverts quand", "--language", "fr").stdout)
    assert french["answered"] is True
    unknown = porch("ask", "nope", "hi")
    assert unknown.returncode != 0 and "no site" in unknown.stderr
