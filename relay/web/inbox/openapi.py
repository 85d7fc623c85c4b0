"""The inbox's part of /v1/openapi.json: the JSON API its page calls.

Signed in by the `porch_session` cookie (relay/inbox/auth.py); every POST also needs
X-CSRF-Token (from GET /inbox/api/session) and the relay's own Origin.
"""

from __future__ import annotations

from typing import Any

from relay.sites import settings as site_settings

_STR = {"type": "string"}
_INT = {"type": "integer"}
SESSION: list[dict[str, list[str]]] = [{"inboxSession": []}]
ERRORS = {
    code: {"$ref": f"#/components/responses/{name}"}
    for code, name in [
        ("400", "InvalidRequest"),
        ("401", "Unauthorized"),
        ("403", "Forbidden"),
        ("404", "NotFound"),
        ("422", "InvalidRequest"),
        ("429", "RateLimited"),
    ]
}
THREAD = {"name": "thread", "in": "path", "required": True, "schema": _STR}
SITE = {"name": "site", "in": "path", "required": True, "schema": _STR}
ANSWER = {"name": "answer", "in": "path", "required": True, "schema": _STR}
HELD = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_OPT_STR = {"type": ["string", "null"]}
_ARRAY_OF_STR = {"type": "array", "items": _STR}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(schema: dict[str, Any], text: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": text, "content": {"application/json": {"schema": schema}}}}


# multipart/form-data with one part `file` (every upload route, the visitor's too).
UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        }
    },
}


def _post(summary: str, body: dict[str, Any] | None, answer: dict[str, Any], **extra: Any) -> Any:
    operation = {"summary": summary, "security": SESSION, "responses": {**answer, **ERRORS}}
    if body is not None:
        operation["requestBody"] = _body(body)
    return {"post": {**operation, **extra}}


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


NO_CONTENT = {"204": {"description": "Done."}}
PAGE = {"200": {"description": "The inbox page (HTML) or one of its files."}}

PATHS: dict[str, Any] = {
    "/inbox": {"get": {"summary": "The inbox page", "responses": PAGE}},
    "/inbox/": {"get": {"summary": "The inbox page (sign-in links end in /)", "responses": PAGE}},
    "/inbox/static/{name}": {
        "get": {
            "summary": "A file of the inbox page (module, styles, its message catalogue)",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": _STR}],
            "responses": {**PAGE, "404": ERRORS["404"]},
        }
    },
    "/inbox/sw.js": {
        "get": {
            "summary": "The inbox's service worker (scope /inbox/: the shell offline, pushes)",
            "responses": PAGE,
        }
    },
    "/inbox/api/login": {
        "post": {
            "summary": "Email a sign-in link (same answer whether or not the address owns a site)",
            "requestBody": _body(_object(email=_STR, language={"enum": ["en", "fr"]})),
            "responses": {
                **_ok(_object(sent={"type": "boolean"}), "Queued if an owner.", "202"),
                "503": {"description": "No outgoing mail: use `porch owner login EMAIL`."},
                **ERRORS,
            },
        }
    },
    "/inbox/api/session": {
        "get": {
            "summary": "Who is signed in, their sites, sessions and CSRF token",
            "security": SESSION,
            "responses": {**_ok(_ref("Me"), "Signed in."), **ERRORS},
        },
        "post": {
            "summary": "Open a session with a sign-in link's token (works once, 15 min)",
            "requestBody": _body(_object(token=_STR)),
            "responses": {**_ok(_ref("Me"), "Signed in; sets the session cookie."), **ERRORS},
        },
    },
    "/inbox/api/logout": _post(
        "Sign out (this browser, or everywhere)",
        _object(everywhere={"type": "boolean"}),
        NO_CONTENT,
    ),
    "/inbox/api/sessions/{id}/revoke": _post(
        "End one of your sessions (its socket closes with 4401)",
        None,
        NO_CONTENT,
        parameters=[{"name": "id", "in": "path", "required": True, "schema": _STR}],
    ),
    "/inbox/api/me": _post(
        "Your name, language, email notifications and reply aliases",
        _object(
            name=_STR,
            language={"enum": ["en", "fr"]},
            notify={"enum": ["message", "hourly", "daily", "off"]},
            aliases={"type": "array", "items": _STR},
        ),
        _ok(_ref("Me"), "Saved."),
    ),
    "/inbox/api/threads": {
        "get": {
            "summary": "Threads of your sites, newest activity first, 200 at a time",
            "security": SESSION,
            "parameters": [
                {"name": "site", "in": "query", "schema": _STR},
                {"name": "status", "in": "query", "schema": {"enum": ["open", "closed", "all"]}},
                {
                    "name": "q",
                    "in": "query",
                    "description": "Full-text search (word prefixes, accents folded) or "
                    "the visitor's name or email.",
                    "schema": _STR,
                },
                {
                    "name": "before",
                    "in": "query",
                    "description": "The `next` of the previous answer (same filters): the "
                    "page after it. Opaque; anything else is refused with 422.",
                    "schema": _STR,
                },
            ],
            "responses": {
                **_ok(
                    _object(
                        threads={"type": "array", "items": _ref("ThreadSummary")},
                        seq={**_INT, "description": "The `since` for /inbox/live."},
                        next={
                            "type": ["string", "null"],
                            "description": "The `before` of the next page; null on the last.",
                        },
                    ),
                    "The list.",
                ),
                **ERRORS,
            },
        }
    },
    "/inbox/api/threads/{thread}": {
        "get": {
            "summary": "A thread and a page of its messages after `since`",
            "security": SESSION,
            "parameters": [THREAD, {"name": "since", "in": "query", "schema": _INT}],
            "responses": {**_ok(_ref("InboxThread"), "The thread."), **ERRORS},
        }
    },
    "/inbox/api/threads/{thread}/messages": _post(
        "Reply from the inbox",
        _ref("Send"),
        {
            **_ok(_ref("Message"), "Stored.", "201"),
            **_ok(_ref("Message"), "This client_id was already stored."),
        },
        parameters=[THREAD],
    ),
    "/inbox/api/threads/{thread}/attachments": _post(
        "Upload a photo or file to send with a reply (as /v1/owner/threads/{thread}/attachments)",
        None,
        {
            **_ok(_ref("Attachment"), "Kept: send its id in a reply's `attachments`.", "201"),
            "415": {"description": "Not a kind of file the relay takes."},
        },
        parameters=[THREAD],
        requestBody=UPLOAD,
    ),
    "/inbox/api/threads/{thread}/status": _post(
        "Close or reopen (a visitor's new message reopens it)",
        _object(status={"enum": ["open", "closed"]}),
        _ok(_ref("ThreadSummary"), "The thread."),
        parameters=[THREAD],
    ),
    "/inbox/api/threads/{thread}/template": _post(
        "Send a chat's approved template (WhatsApp, outside the 24-hour window)",
        _object(channel={**_STR, "description": "One of the thread's `channels`."}),
        {
            **_ok(_object(queued={"type": "boolean"}), "Queued for the app.", "202"),
            "409": {"description": "The window is open: reply as usual."},
        },
        parameters=[THREAD],
    ),
    "/inbox/api/threads/{thread}/read": _post(
        "Move the owner's read cursor", _ref("Read"), NO_CONTENT, parameters=[THREAD]
    ),
    "/inbox/api/sites/{site}/settings": _post(
        "Change a site: name, origins, owners, hours, texts, colour, language",
        _ref("SiteChanges"),
        _ok(_ref("InboxSite"), "Saved (nothing is saved if any field is refused)."),
        parameters=[SITE],
    ),
    "/inbox/api/sites/{site}/channels": _post(
        "Connect a messaging-app account (as `porch channel add`; secrets never shown again)",
        _object(
            kind={"enum": ["telegram", "whatsapp", "messenger"]},
            options={"type": "object", "additionalProperties": _STR},
            template={"type": ["string", "null"]},
        ),
        {
            **_ok(_ref("AppChannel"), "Connected.", "201"),
            "409": {"description": "This account already answers for a site."},
        },
        parameters=[SITE],
    ),
    "/inbox/api/sites/{site}/channels/{channel}/remove": _post(
        "Disconnect an account (its conversations stay)",
        None,
        NO_CONTENT,
        parameters=[SITE, {"name": "channel", "in": "path", "required": True, "schema": _STR}],
    ),
    "/inbox/api/sites/{site}/answers": {
        "get": {
            "summary": "The site's automatic answers, oldest first",
            "security": SESSION,
            "parameters": [SITE],
            "responses": {
                **_ok(_object(answers={"type": "array", "items": _ref("Answer")}), "The list."),
                **ERRORS,
            },
        },
        **_post(
            "Add an automatic answer (language: the site's when left out)",
            _ref("AnswerFields"),
            _ok(_ref("Answer"), "Added.", "201"),
            parameters=[SITE],
        ),
    },
    "/inbox/api/sites/{site}/answers/ask": _post(
        "What the relay would send for a visitor's message (nothing is sent or stored)",
        _object(text=_STR, language={"enum": ["en", "fr"]}),
        _ok(_ref("AnswerFound"), "What it would do, and why."),
        parameters=[SITE],
    ),
    "/inbox/api/sites/{site}/answers/{answer}": _post(
        "Change an answer (fields left out keep their value)",
        _ref("AnswerFields"),
        _ok(_ref("Answer"), "Saved."),
        parameters=[SITE, ANSWER],
    ),
    "/inbox/api/sites/{site}/answers/{answer}/remove": _post(
        "Remove an answer (messages it was sent in stay)",
        None,
        NO_CONTENT,
        parameters=[SITE, ANSWER],
    ),
    "/inbox/api/push": {
        "get": {
            "summary": "The key to subscribe with (applicationServerKey), and your devices "
            "that take notifications",
            "security": SESSION,
            "responses": {
                **_ok(
                    _object(
                        key={**_STR, "description": "VAPID public key, base64url."},
                        devices={
                            "type": "array",
                            "items": _object(
                                id=_STR,
                                label={**_OPT_STR, "description": "The browser's User-Agent."},
                                created_at=_STR,
                                this_session={"type": "boolean"},
                            ),
                        },
                    ),
                    "The key and the devices.",
                ),
                **ERRORS,
            },
        },
        **_post(
            "Notify this device (a browser's PushSubscription.toJSON()); signing its session "
            "out removes it. 422: an endpoint that is not https on a public address, or bad keys",
            _object(endpoint=_STR, keys=_object(p256dh=_STR, auth=_STR)),
            _ok(_object(id=_STR), "Kept.", "201"),
        ),
    },
    "/inbox/api/push/{id}/remove": _post(
        "Stop notifying one of your devices",
        None,
        NO_CONTENT,
        parameters=[{"name": "id", "in": "path", "required": True, "schema": _STR}],
    ),
    "/inbox/api/held": {
        "get": {
            "summary": "Emailed replies held in your sites' conversations because their sender "
            "could not be verified, oldest first",
            "security": SESSION,
            "responses": {
                **_ok(
                    _object(held={"type": "array", "items": _ref("HeldReply")}),
                    "The held replies.",
                ),
                **ERRORS,
            },
        }
    },
    "/inbox/api/held/{id}/release": _post(
        "Post a held reply as if it had just arrived (its tag and sender checked again). "
        "409: it can no longer be posted, and stays held; 404: decided meanwhile",
        None,
        _ok(_object(released={"type": "boolean"}, message=_ref("Message")), "Posted."),
        parameters=[HELD],
    ),
    "/inbox/api/held/{id}/discard": _post(
        "Discard a held reply: the mail is forgotten, only the record stays",
        None,
        _ok(_object(discarded={"type": "boolean"}), "Discarded."),
        parameters=[HELD],
    ),
}

SCHEMAS: dict[str, Any] = {
    "HeldReply": _object(
        id={"type": "integer"},
        thread=_STR,
        author={"enum": ["owner", "visitor"], "description": "Whom its reply address was for."},
        sender={**_STR, "description": "Its From address."},
        subject=_STR,
        body={**_STR, "description": "Its new text, as it would be posted."},
        reason={**_STR, "description": "dmarc_fail, unauthenticated, ..."},
        detail={**_STR, "description": "Why, in one English sentence."},
        authentication={"type": "object", "description": "What the sender checks found."},
        received_at=_STR,
    ),
    "Answer": _object(
        id=_STR,
        site=_STR,
        language={"enum": ["en", "fr"]},
        question=_STR,
        alternatives={**_ARRAY_OF_STR, "description": "Other ways visitors ask it."},
        answer=_STR,
        created_at=_STR,
        updated_at=_STR,
    ),
    "AnswerFields": {
        **_object(
            question={**_STR, "maxLength": 300},
            answer={**_STR, "maxLength": 2000},
            language={"enum": ["en", "fr"]},
            alternatives={**_ARRAY_OF_STR, "maxItems": 20},
        ),
        "additionalProperties": False,
        "description": "Checked as `porch answers import` checks a row: a refused one "
        "(422) changes nothing.",
    },
    "AnswerFound": _object(
        answered={"type": "boolean", "description": "An answer would be sent."},
        question={**_OPT_STR, "description": "The question of the answer sent."},
        answer={**_OPT_STR, "description": "The text sent."},
        score={"type": "number", "description": "How sure, 0 to 1 (the best candidate's)."},
        candidates={
            "type": "array",
            "items": _object(id=_STR, question=_STR, matched=_STR, score={"type": "number"}),
        },
        refused={
            "enum": ["small_talk", "complaint", "personal", None],
            "description": "Never answered: greetings and thanks, complaints, the "
            "visitor's own order or visit.",
        },
    ),
    "Me": _object(
        email=_STR,
        name={"type": ["string", "null"]},
        language={"type": ["string", "null"], "description": "null until the owner picks one."},
        notify=_STR,
        aliases={"type": "array", "items": _STR},
        csrf={**_STR, "description": "Send as X-CSRF-Token on every POST."},
        session=_STR,
        sites={"type": "array", "items": _ref("InboxSite")},
        site_fields={"type": "array", "items": _ref("SiteField")},
        sessions={"type": "array", "items": {"type": "object"}},
    ),
    "InboxSite": _object(
        id=_STR,
        name=_STR,
        origins={"type": "array", "items": _STR},
        owner_emails={"type": "array", "items": _STR},
        settings=_ref("SiteSettings"),
        snippet=_STR,
        availability=_ref("Availability"),
        channels={"type": "array", "items": _ref("AppChannel")},
    ),
    "AppChannel": _object(
        id=_STR,
        kind=_STR,
        handle={**_STR, "description": "The bot's username, the number, the page."},
        webhook_url=_STR,
        template=_OPT_STR,
        created_at=_STR,
    ),
    "InboxThread": {
        "allOf": [
            _ref("History"),
            _object(
                held={
                    "type": "array",
                    "description": "Emailed replies held in it: sender not verified.",
                    "items": _ref("HeldReply"),
                },
                channels={
                    "type": "array",
                    "description": "The customer's chats on messaging apps, last written first.",
                    "items": _object(
                        id=_STR,
                        kind=_STR,
                        handle=_STR,
                        name=_OPT_STR,
                        last_written_at=_STR,
                        window_closes_at={
                            **_OPT_STR,
                            "description": "After this, only a template (null: no window).",
                        },
                        window_open={"type": "boolean"},
                        template=_OPT_STR,
                    ),
                },
                deliveries={
                    "type": "array",
                    "description": "What became of the latest sends to the customer.",
                    "items": _object(
                        id=_INT,
                        channel=_STR,
                        kind={"enum": ["visitor_notify", "resume_link", "template"]},
                        status={"enum": ["pending", "sending", "sent", "failed", "cancelled"]},
                        receipt={
                            **_OPT_STR,
                            "description": "accepted, sent, delivered, read or failed.",
                        },
                        error=_OPT_STR,
                        attempts=_INT,
                        upto_seq={"type": ["integer", "null"]},
                        updated_at=_STR,
                    ),
                },
            ),
        ]
    },
    # Every setting an owner sees, defaults filled in; never a secret one.
    "SiteSettings": site_settings.json_schema(
        s for s in site_settings.SETTINGS if not (s.secret or s.column)
    ),
    "SiteChanges": {
        **site_settings.json_schema(
            s for s in site_settings.SETTINGS if s.form is not None and not s.secret
        ),
        "additionalProperties": False,
        "description": "Only the fields to change. Also accepted: hours per day as text "
        "('09:00-12:00, 14:00-18:00'), null to clear reply_time_minutes. One refused "
        "field (422, its key in `reason`) and nothing changes.",
    },
    "SiteField": {
        "type": "object",
        "description": "One field of the inbox's settings form (relay/sites/settings.py).",
        "properties": {
            "key": _STR,
            "control": {"enum": list(site_settings.CONTROLS)},
            "section": {"enum": list(site_settings.SECTIONS)},
            "label": {**_STR, "description": "Its text: this key of the inbox catalogue."},
            "hint": {"type": ["string", "null"]},
            "invalid": {"type": ["string", "null"]},
            "options": {"type": ["string", "null"]},
            "column": {"type": "boolean"},
            "default": {},
            "schema": {"type": "object"},
            "texts": _object(
                key=_STR, languages={"type": "array", "items": _object(language=_STR, label=_STR)}
            ),
        },
    },
}
SECURITY = {
    "inboxSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "porch_session",
        "description": "Set by POST /inbox/api/session; HttpOnly, SameSite=Lax.",
    }
}
RESPONSES = {
    "Unauthorized": "Not signed in, or the session ended.",
    "Forbidden": "CSRF check failed.",
}
