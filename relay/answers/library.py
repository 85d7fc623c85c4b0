"""The owner's list of answers as a file: `porch answers import SITE FILE.csv` and
`porch answers export SITE`. Columns `question`, `answer`, `language`, `alternatives`
(other ways to ask it, separated by ` | `). An import is checked whole: every bad row is
reported by its line number and then nothing is imported.

Also the one check of an answer's texts, which the inbox's form uses too."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import replace

from relay.answers.words import terms
from relay.catalogue import LANGUAGES
from relay.errors import UnprocessableRequest
from relay.inputs import clean_text
from relay.models import Answer
from relay.store.answers import Terms

COLUMNS = ("question", "answer", "language", "alternatives")
SEPARATOR = " | "
MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 2000
MAX_ALTERNATIVES = 20
MAX_ANSWERS = 2000  # per site: a big FAQ is a few hundred


class BadFile(ValueError):
    """The file, with each problem as "line N: what is wrong"."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def checked(answer: Answer) -> Answer:
    """The answer with clean texts; UnprocessableRequest saying what is wrong."""
    question = " ".join(clean_text(answer.question).split())
    reply = clean_text(answer.answer)
    alternatives = tuple(
        dict.fromkeys(" ".join(clean_text(a).split()) for a in answer.alternatives if a.strip())
    )
    if not question:
        raise UnprocessableRequest("the question is empty")
    if not reply:
        raise UnprocessableRequest("the answer is empty")
    if answer.language not in LANGUAGES:
        raise UnprocessableRequest(
            f"the language must be one of {', '.join(LANGUAGES)}, not {answer.language!r}"
        )
    if len(question) > MAX_QUESTION_CHARS or any(len(a) > MAX_QUESTION_CHARS for a in alternatives):
        raise UnprocessableRequest(f"a question is over {MAX_QUESTION_CHARS} characters")
    if len(reply) > MAX_ANSWER_CHARS:
        raise UnprocessableRequest(f"the answer is over {MAX_ANSWER_CHARS} characters")
    if len(alternatives) > MAX_ALTERNATIVES:
        raise UnprocessableRequest(f"more than {MAX_ALTERNATIVES} other ways to ask it")
    return replace(answer, question=question, answer=reply, alternatives=alternatives)


def terms_of(answer: Answer) -> Terms:
    """What the full-text index holds for an answer (relay/answers/words.py)."""
    return Terms(
        " ".join(terms(answer.question, answer.language)),
        " ".join(t for a in answer.alternatives for t in terms(a, answer.language)),
        " ".join(terms(answer.answer, answer.language)),
    )


def read_csv(text: str, site: str, default_language: str) -> list[Answer]:
    """Every row as an answer of `site`; BadFile listing every bad line otherwise. A row
    without a language is in `default_language` (the site's)."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in ("question", "answer") if name not in header]
    if missing:
        raise BadFile([f"line 1: the header needs the columns {', '.join(COLUMNS)}"])
    reader.fieldnames = header
    answers, problems = [], []
    try:
        for row in reader:
            line = reader.line_num
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue  # a blank line
            if None in row:
                problems.append(f"line {line}: more cells than the header has columns")
                continue
            language = (row.get("language") or "").strip().lower() or default_language
            alternatives = (row.get("alternatives") or "").split(SEPARATOR.strip())
            try:
                answers.append(
                    checked(
                        Answer(
                            "",
                            site,
                            language,
                            row.get("question") or "",
                            tuple(alternatives),
                            row.get("answer") or "",
                        )
                    )
                )
            except UnprocessableRequest as error:
                problems.append(f"line {line}: {error.message}")
    except csv.Error as error:
        problems.append(f"line {reader.line_num}: {error}")
    if len(answers) > MAX_ANSWERS:
        problems.append(f"more than {MAX_ANSWERS} answers")
    if problems:
        raise BadFile(problems)
    return answers


def write_csv(answers: Iterable[Answer]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for answer in answers:
        writer.writerow(
            (answer.question, answer.answer, answer.language, SEPARATOR.join(answer.alternatives))
        )
    return out.getvalue()
