"""The widget while the relay's PostgreSQL restarts: a message sent meanwhile waits
(the relay answers 503 store_unavailable), then arrives once, by itself."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import running_stage
from tests.e2e.test_widget import STORED_VISITOR, only_thread, open_and_send
from tests.pg import Postgres

PENDING = "porch-chat .message.pending"


def test_a_message_sent_while_the_database_restarts_arrives_once(
    postgres: Postgres, tmp_path: Path, context: BrowserContext
) -> None:
    page = context.new_page()
    errors: list[str] = []  # the browser logs each refused request; nothing else may fail
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    with running_stage(tmp_path, database_url=postgres.url) as stage:
        page.goto(stage.url("/"))
        open_and_send(page, "before the restart")
        expect(page.locator(STORED_VISITOR)).to_have_count(1)

        postgres.crash()
        refused = []
        page.on("response", lambda r: refused.append(r.status) if r.status == 503 else None)
        open_and_send(page, "while it restarts")
        expect(page.locator(PENDING)).to_have_count(1)
        page.wait_for_timeout(0)  # let the refusal land before it is looked at
        expect(page.locator("porch-chat .failed")).to_have_count(0)  # waiting, not failed

        postgres.start()
        expect(page.locator(STORED_VISITOR)).to_have_count(2, timeout=20_000)
        expect(page.locator(PENDING)).to_have_count(0)
        assert refused, "the relay never answered 503 while its database was down"
        bodies = [m["body"] for m in stage.messages(only_thread(stage))]
        assert bodies == ["before the restart", "while it restarts"]
    assert errors and all("status of 503" in error for error in errors), errors
