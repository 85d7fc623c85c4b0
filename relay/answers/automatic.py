"""The automatic answer to a visitor's message: sent when nobody is at the inbox and one
of the owner's answers matches surely (finder.py), in the visitor's language. Found
before the message's transaction (a full-text query is no work for the one writer);
written in it by Conversations, once per answer and thread."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relay.answers.finder import Finder
from relay.answers.matching import Scored
from relay.catalogue import language_or_default
from relay.sites.settings import LANGUAGE
from relay.store import Store

OWNER_IN_CONVERSATION = timedelta(minutes=30)


def _ago(span: timedelta) -> str:
    """The time `span` ago, written as messages' created_at is (so text compares as time)."""
    return (datetime.now(UTC) - span).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class AutomaticAnswers:
    store: Store
    finder: Finder
    at_inbox: Callable[[str], bool]  # is an owner of this site at the inbox now (Presence)

    async def for_thread(self, thread: str, body: str, site: str | None) -> Scored | None:
        """The answer to send for a visitor's message in `thread` (of `site`, when the
        caller knows it: a site without answers then costs no query), or None."""
        if site is not None and not await self.finder.has_answers(site):
            return None
        context = await self.store.answering_context(thread)
        if context is None:
            return None
        site, language, owner_wrote = context
        # An owner answering by email is never "at the inbox": a reply of theirs in the
        # last minutes says a person is in this conversation, so the relay keeps out.
        if owner_wrote is not None and owner_wrote > _ago(OWNER_IN_CONVERSATION):
            return None
        return await self.for_site(site, language, body)

    async def for_site(self, site: str, language: str | None, body: str) -> Scored | None:
        """The same for a first message (the thread does not exist yet)."""
        if not body or self.at_inbox(site) or not await self.finder.has_answers(site):
            return None  # someone is at the inbox: they answer (or there is nothing to say)
        if language is None:
            settings = await self.store.get_site(site)
            language = LANGUAGE.of(settings) if settings else None
        found = await self.finder.find(site, body, language_or_default(language))
        return found.answer
