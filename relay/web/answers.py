"""Suggestions while a visitor types their first message: `POST /v1/sites/{site}/suggestions`
`{"text", "language"?}` → `200 {"suggestions": [{"id", "question", "answer"}]}`, up to
three of the owner's answers that may be what they are asking (relay/answers). Nothing is
stored and the text is never logged: it is a POST so that no access log keeps it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.catalogue import LANGUAGES
from relay.inputs import optional_text, read_json
from relay.limits import enforce
from relay.sites.settings import LANGUAGE
from relay.web.api import visitor_site
from relay.web.services import client_ip, services

MAX_TEXT_CHARS = 500  # a question, not a letter
MIN_TEXT_CHARS = 3  # fewer says nothing yet


async def suggest(request: Request) -> Response:
    s = services(request)
    site = await visitor_site(request, request.path_params["site"])
    enforce((s.limits.suggestions_by_ip, client_ip(request), "suggestions from this address"))
    data = await read_json(request, s.config.max_request_bytes)
    text = optional_text(data, "text", MAX_TEXT_CHARS) or ""
    asked = data.get("language")
    language = asked if isinstance(asked, str) and asked in LANGUAGES else LANGUAGE.of(site)
    found = await s.answers.suggest(site.id, text, language) if len(text) >= MIN_TEXT_CHARS else []
    suggestions = [
        {"id": f.answer.id, "question": f.answer.question, "answer": f.answer.answer} for f in found
    ]
    return JSONResponse({"suggestions": suggestions}, headers={"cache-control": "no-store"})


routes = [Route("/v1/sites/{site}/suggestions", suggest, methods=["POST"])]
