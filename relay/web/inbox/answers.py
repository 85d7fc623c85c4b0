"""A site's automatic answers in the inbox (issue 17), under /inbox/api/sites/{site}/answers:
the list, add, change, remove, and "ask", which says what the relay would send for a
message and touches nothing. Cookie session and CSRF as every inbox route; only the
signed-in owner's sites (another site is "not found"). relay/web/inbox/api.py mounts them.

An answer's texts are checked by relay/answers/library.py, the same check as an import."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.answers.library import MAX_ANSWERS, checked, terms_of
from relay.catalogue import LANGUAGES
from relay.errors import NotFound, UnprocessableRequest
from relay.inputs import optional_text, read_json
from relay.models import Answer, Site
from relay.sites.settings import LANGUAGE
from relay.web.inbox.auth import owned_site, signed_in
from relay.web.services import Services, services

FIELDS = ("question", "answer", "language", "alternatives")
PRIVATE = {"cache-control": "no-store"}  # the owner's texts and visitors' words: never cached


async def list_answers(request: Request) -> Response:
    s, site = await _owned_site(request)
    answers = await s.store.site_answers(site.id)
    return JSONResponse({"answers": [a.to_json() for a in answers]}, headers=PRIVATE)


async def add_answer(request: Request) -> Response:
    s, site = await _owned_site(request)
    data = await read_json(request, s.config.max_request_bytes)
    answer = _changed(Answer("", site.id, LANGUAGE.of(site), "", (), ""), data)
    if len(await s.store.site_answers(site.id)) >= MAX_ANSWERS:
        raise UnprocessableRequest(f"a site keeps at most {MAX_ANSWERS} answers: remove some first")
    saved = await s.store.add_answer(answer, terms_of(answer))
    s.answers.changed(site.id)
    return JSONResponse(saved.to_json(), status_code=201, headers=PRIVATE)


async def update_answer(request: Request) -> Response:
    """The fields sent replace the answer's; those left out keep their value."""
    s, site = await _owned_site(request)
    data = await read_json(request, s.config.max_request_bytes)
    before = await _answer_of(s, site, request.path_params["answer"])
    answer = _changed(before, data)
    saved = await s.store.update_answer(answer, terms_of(answer))
    s.answers.changed(site.id)
    if saved is None:  # removed meanwhile
        raise NotFound(f"no answer {before.id!r} on this site")
    return JSONResponse(saved.to_json(), headers=PRIVATE)


async def remove_answer(request: Request) -> Response:
    s, site = await _owned_site(request)
    if not await s.store.delete_answer(site.id, request.path_params["answer"]):
        raise NotFound(f"no answer {request.path_params['answer']!r} on this site")
    s.answers.changed(site.id)
    return Response(status_code=204, headers=PRIVATE)


async def ask(request: Request) -> Response:
    """What the relay would send for `text` when nobody is at the inbox (the settings'
    "Try a question" box, as `porch answers ask`)."""
    s, site = await _owned_site(request)
    data = await read_json(request, s.config.max_request_bytes)
    text = optional_text(data, "text", s.config.max_body_chars)
    if text is None:
        raise UnprocessableRequest("'text' must be the visitor's message to try")
    language = data.get("language")
    if language is None:
        language = LANGUAGE.of(site)
    elif language not in LANGUAGES:
        raise UnprocessableRequest(
            f"'language' must be one of {', '.join(LANGUAGES)}, got {str(language)[:20]!r}"
        )
    found = await s.answers.find(site.id, text, language)
    return JSONResponse(found.to_json(), headers=PRIVATE)


async def _owned_site(request: Request) -> tuple[Services, Site]:
    """The site named in the path, if the signed-in owner answers for it."""
    session = await signed_in(request)
    s = services(request)
    return s, await owned_site(s, session, request.path_params["site"])


async def _answer_of(s: Services, site: Site, answer_id: str) -> Answer:
    answer = await s.store.answer(site.id, answer_id)
    if answer is None:
        raise NotFound(f"no answer {answer_id!r} on this site")
    return answer


def _changed(answer: Answer, data: dict[str, Any]) -> Answer:
    """`answer` with the fields of `data`, checked (UnprocessableRequest says what is wrong)."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise UnprocessableRequest(f"unknown field {unknown[0]!r}: send {', '.join(FIELDS)}")
    changes: dict[str, Any] = {}
    for key in ("question", "answer", "language"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise UnprocessableRequest(f"'{key}' must be a string, got {type(value).__name__}")
        changes[key] = value
    alternatives = data.get("alternatives")
    if alternatives is not None:
        if not isinstance(alternatives, list) or not all(isinstance(a, str) for a in alternatives):
            raise UnprocessableRequest("'alternatives' must be a list of texts (other ways to ask)")
        changes["alternatives"] = tuple(alternatives)
    return checked(replace(answer, **changes))


# /answers/ask before /answers/{answer}: "ask" is not an answer's id.
routes = [
    Route("/inbox/api/sites/{site}/answers", list_answers, methods=["GET"]),
    Route("/inbox/api/sites/{site}/answers", add_answer, methods=["POST"]),
    Route("/inbox/api/sites/{site}/answers/ask", ask, methods=["POST"]),
    Route("/inbox/api/sites/{site}/answers/{answer}", update_answer, methods=["POST"]),
    Route("/inbox/api/sites/{site}/answers/{answer}/remove", remove_answer, methods=["POST"]),
]
