"""`porch demo` only: the bakery's mailbox on loopback, and its FAQ as automatic answers,
so a first-time user sees a live reply, the unread badge and the tab title without a
second terminal (the page says how to answer as the owner)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from relay.answers.library import read_csv, terms_of
from relay.demo.mailbox import DemoMailbox
from relay.store import Store

DEMO_SITE = "demo"
FAQ = Path(__file__).with_name("faq.csv")  # the bakery's answers, in English and French


async def seed_answers(store: Store) -> int:
    """The bakery's FAQ as its automatic answers (issue 17): ask the chat "do you
    deliver?" and the relay answers at once, in the visitor's language."""
    answers = read_csv(FAQ.read_text(encoding="utf-8"), DEMO_SITE, "en")
    rows = [(answer, terms_of(answer)) for answer in answers]
    return await store.replace_answers(DEMO_SITE, rows, languages={"en", "fr"})


@dataclass(frozen=True)
class Setup:
    cli_flags: str  # what other `porch` commands need to reach this demo
    mailbox: DemoMailbox
    mailbox_port: int  # where the outbox's SMTP lands


@contextlib.asynccontextmanager
async def running(setup: Setup) -> AsyncIterator[None]:
    sink = await setup.mailbox.start(setup.mailbox_port)
    try:
        yield
    finally:
        sink.close()
        await sink.wait_closed()
