"""The OpenAPI description served at /v1/openapi.json.

Written out rather than generated: the routes are few and their JSON shapes are the
contract. tests/test_openapi.py fails when a route is missing here.
"""

from __future__ import annotations

from typing import Any

from relay import __version__
from relay.models import Via
from relay.sites import settings as site_settings
from relay.web.inbox import openapi as inbox
from relay.web.inbox.openapi import UPLOAD


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    code: {"$ref": f"#/components/responses/{name}"}
    for code, name in [
        ("400", "InvalidRequest"),
        ("401", "InvalidToken"),
        ("403", "ForbiddenOrigin"),
        ("404", "NotFound"),
        ("413", "TooLarge"),
        ("422", "InvalidRequest"),
        ("429", "RateLimited"),
    ]
}
SINCE = {
    "name": "since",
    "in": "query",
    "description": "Return messages with seq greater than this (the resume cursor).",
    "schema": {"type": "integer", "minimum": 0, "default": 0},
}
THREAD_ID = {"name": "thread", "in": "path", "required": True, "schema": {"type": "string"}}
TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
SITE_ID = {"name": "site", "in": "path", "required": True, "schema": {"type": "string"}}
SEND = {"required": True, "content": {"application/json": {"schema": _ref("Send")}}}
READ = {"required": True, "content": {"application/json": {"schema": _ref("Read")}}}
VISITOR: list[dict[str, list[str]]] = [{"visitor": []}]
OWNER: list[dict[str, list[str]]] = [{"owner": []}]
HISTORY = _json(_ref("History"), "The thread and its messages after `since`, in seq order.")
STORED = {
    "201": _json(_ref("Message"), "Stored (committed)."),
    "200": _json(_ref("Message"), "This client_id was already stored: the same message."),
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Porch relay",
            "version": __version__,
            "description": "Persistent website messaging. Live updates: WebSocket /v1/live "
            "(see README). Errors are JSON {error, message}.",
        },
        "paths": {
            "/v1/sites/{site}/config": {
                "get": {
                    "summary": "Public widget configuration of a site",
                    "parameters": [SITE_ID],
                    "responses": {"200": _json(_ref("SiteConfig"), "The config."), **ERRORS},
                }
            },
            "/v1/sites/{site}/threads": {
                "post": {
                    "summary": "Start a conversation: visitor, thread and first message",
                    "parameters": [SITE_ID],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Start")}},
                    },
                    "responses": {
                        "201": _json(_ref("Started"), "Created; keep the token."),
                        "200": _json(_ref("Started"), "A retry of a start already stored."),
                        **ERRORS,
                    },
                }
            },
            "/v1/sites/{site}/suggestions": {
                "post": {
                    "summary": "Up to three of the owner's answers for what a visitor types",
                    "description": "Nothing is stored. Fewer than 3 characters: none.",
                    "parameters": [SITE_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "text": {"type": "string", "maxLength": 500},
                                        "language": {"enum": ["en", "fr"]},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "suggestions": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "id": _STR,
                                                "question": _STR,
                                                "answer": _STR,
                                            },
                                        },
                                    }
                                },
                            },
                            "The suggestions, best first.",
                        ),
                        **ERRORS,
                    },
                }
            },
            "/v1/sites/{site}/push-worker": {
                "get": {
                    "summary": "Whether a page's origin serves /porch-sw.js (Web Push)",
                    "description": "The relay GETs {origin}/porch-sw.js (no redirect "
                    "followed, 3 s): served is true for a 2xx whose content-type is "
                    "JavaScript. Kept 10 minutes when served, 1 minute when not. Nothing "
                    "else of the site's answer is returned. 422 for an origin that is not "
                    "one of the site's.",
                    "parameters": [
                        SITE_ID,
                        {
                            "name": "origin",
                            "in": "query",
                            "required": True,
                            "description": "The page's origin, one of the site's.",
                            "schema": {"type": "string", "format": "uri"},
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {"served": {"type": "boolean"}},
                                "required": ["served"],
                            },
                            "Whether the widget may offer notifications on that origin.",
                        ),
                        **ERRORS,
                    },
                }
            },
            "/v1/sites/{site}/identify": {
                "post": {
                    "summary": "A signed-in user: {id, hash, name?} with hash = hex "
                    "HMAC-SHA256(site identity secret, id)",
                    "description": "Verified: {verified: true, token, thread} (their one "
                    "thread; an anonymous thread of the caller's token is merged), or token "
                    "null when nothing is stored yet. Otherwise {verified: false}.",
                    "parameters": [SITE_ID],
                    "responses": {"200": {"description": "Verdict"}, **ERRORS},
                }
            },
            "/v1/thread": {
                "delete": {
                    "summary": "Erase the visitor: threads, messages, queued emails",
                    "security": VISITOR,
                    "responses": {"204": {"description": "Erased"}, **ERRORS},
                },
                "get": {
                    "summary": "The visitor's thread and its messages",
                    "security": VISITOR,
                    "parameters": [SINCE],
                    "responses": {"200": HISTORY, **ERRORS},
                },
            },
            "/v1/thread/messages": {
                "post": {
                    "summary": "Send a message as the visitor (idempotent by client_id)",
                    "security": VISITOR,
                    "requestBody": SEND,
                    "responses": {**STORED, **ERRORS},
                }
            },
            "/v1/thread/read": {
                "post": {
                    "summary": "Move the visitor's read cursor",
                    "security": VISITOR,
                    "requestBody": READ,
                    "responses": {"204": {"description": "Recorded."}, **ERRORS},
                }
            },
            "/v1/thread/contact": {
                "post": {
                    "summary": "Leave a name and email to get replies by email",
                    "security": VISITOR,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Contact")}},
                    },
                    "responses": {"200": _json(_ref("Contact"), "Saved."), **ERRORS},
                }
            },
            "/v1/thread/resume-link": {
                "post": {
                    "summary": "Email a link that opens this conversation on another device",
                    "description": "Body {email, page?}. The link is page#porch=TOKEN: single "
                    "use, 30 minutes. An address the visitor has not confirmed gets one email a "
                    "day at most, whoever asks; a visitor, three such addresses a day.",
                    "security": VISITOR,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Contact")}},
                    },
                    "responses": {
                        "202": {"description": "Queued"},
                        "503": _json(_ref("Error"), "This relay sends no email (no SMTP server)."),
                        **ERRORS,
                    },
                }
            },
            "/v1/thread/push": {
                "post": {
                    "summary": "Notify this device when the owner replies (Web Push)",
                    "description": "Body {endpoint, keys: {p256dh, auth}}: a PushSubscription's "
                    "JSON, made with the config's push_key. 422 (reason push_endpoint or "
                    "push_keys) for an endpoint that is not https on a public address, or keys "
                    "that are not a P-256 point and a 16-byte secret; nothing is kept then.",
                    "security": VISITOR,
                    "responses": {"201": {"description": "Kept: {id}"}, **ERRORS},
                },
                "delete": {
                    "summary": "Stop notifying this visitor's devices",
                    "description": "Body {endpoint}: that device, if it is this visitor's; no "
                    "body: all of theirs.",
                    "security": VISITOR,
                    "responses": {
                        "204": {"description": "Forgotten (or was not there)."},
                        **ERRORS,
                    },
                },
            },
            "/v1/thread/continue": {
                "post": {
                    "summary": "A link that continues this conversation in a messaging app",
                    "description": "Body {channel}: one of the site's channels (public config "
                    "`channels`). Answers {url, code, expires_at}; the code is single use, 15 "
                    "minutes.",
                    "security": VISITOR,
                    "responses": {"201": {"description": "The link"}, **ERRORS},
                }
            },
            "/v1/thread/attachments": {
                "post": {
                    "summary": "Upload a photo or file to this conversation",
                    "description": "multipart/form-data with one part `file`. Judged by its "
                    "bytes (a PNG named .pdf is a PNG); images re-encoded without metadata. "
                    "413 too_large past the site's max_file_mb; 415 a type it does not take.",
                    "security": VISITOR,
                    "requestBody": UPLOAD,
                    "responses": {
                        "201": _json(_ref("Attachment"), "Kept"),
                        "415": _json(_ref("Error"), "Not a kind of file the relay takes."),
                        **ERRORS,
                    },
                }
            },
            "/v1/attachments/{token}/{name}": {
                "get": {
                    "summary": "Download a photo or file by its signed link (no Authorization)",
                    "description": "Links work for an hour; each read of the thread gives "
                    "new ones. Tampered or expired: 404. Only re-encoded images are inline.",
                    "parameters": [
                        TOKEN,
                        {"name": "name", "in": "path", "required": True, "schema": _STR},
                    ],
                    "responses": {"200": {"description": "The bytes"}, **ERRORS},
                }
            },
            "/v1/channels/{channel}/webhook": {
                "get": {
                    "summary": "Meta's webhook verification (hub.mode, hub.verify_token, "
                    "hub.challenge)",
                    "responses": {"200": {"description": "The challenge"}, **ERRORS},
                },
                "post": {
                    "summary": "A messaging app's webhook (Telegram, WhatsApp, Messenger)",
                    "description": "Verified by Telegram's secret token or Meta's "
                    "X-Hub-Signature-256 before anything is read; 403 otherwise.",
                    "responses": {"200": {"description": "Handled"}, **ERRORS},
                },
            },
            "/v1/resume": {
                "post": {
                    "summary": "Open a resume link: a visitor token for this device",
                    "description": "Body {token}. Refusals are 401 with reason expired, used, "
                    "invalid, revoked (signed out everywhere since) or other_site. Confirms the "
                    "address the link was sent to.",
                    "responses": {"200": _json(_ref("Started"), "Adopted"), **ERRORS},
                }
            },
            "/v1/thread/export": {
                "get": {
                    "summary": "Everything stored about the visitor (?format=text: transcript)",
                    "security": VISITOR,
                    "responses": {"200": {"description": "JSON or text"}, **ERRORS},
                }
            },
            "/v1/thread/sign-out": {
                "post": {
                    "summary": "Sign out; {everywhere: true} stops every token and socket",
                    "security": VISITOR,
                    "responses": {"204": {"description": "Done"}, **ERRORS},
                }
            },
            "/v1/unsubscribe/{token}": {
                "get": {
                    "summary": "Page asking to confirm: stop emails to this address",
                    "parameters": [TOKEN],
                    "responses": {"200": {"description": "HTML page"}, **ERRORS},
                },
                "post": {
                    "summary": "Stop emails to this address (RFC 8058 one-click)",
                    "parameters": [TOKEN],
                    "responses": {"200": {"description": "HTML page"}, **ERRORS},
                },
            },
            "/porch-sw.js": {
                "get": {
                    "summary": "The service worker a site imports for visitors' notifications",
                    "description": "The site serves /porch-sw.js with one line: "
                    "importScripts('https://RELAY/porch-sw.js').",
                    "responses": {"200": {"description": "JavaScript"}},
                }
            },
            "/widget.js": {
                "get": {
                    "summary": "The embed script (the snippet loads it)",
                    "responses": {"200": {"description": "JavaScript"}},
                }
            },
            "/widget/{version}/{name}": {
                "get": {
                    "summary": "Widget modules, versioned and cached for a year",
                    "parameters": [
                        {"name": "version", "in": "path", "required": True, "schema": _STR},
                        {"name": "name", "in": "path", "required": True, "schema": _STR},
                    ],
                    "responses": {
                        "200": {"description": "The file"},
                        "404": {"$ref": "#/components/responses/NotFound"},
                    },
                }
            },
            "/v1/owner/threads": {
                "get": {
                    "summary": "Every thread of the owner's site, latest activity first",
                    "security": OWNER,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "threads": {"type": "array", "items": _ref("ThreadSummary")}
                                },
                            },
                            "The threads.",
                        ),
                        **ERRORS,
                    },
                }
            },
            "/v1/owner/threads/{thread}": {
                "get": {
                    "summary": "One thread and its messages",
                    "security": OWNER,
                    "parameters": [THREAD_ID, SINCE],
                    "responses": {"200": HISTORY, **ERRORS},
                }
            },
            "/v1/owner/threads/{thread}/messages": {
                "post": {
                    "summary": "Reply as the owner (idempotent by client_id)",
                    "security": OWNER,
                    "parameters": [THREAD_ID],
                    "requestBody": SEND,
                    "responses": {**STORED, **ERRORS},
                }
            },
            "/v1/owner/threads/{thread}/attachments": {
                "post": {
                    "summary": "Upload a photo or file to a thread of this site",
                    "security": OWNER,
                    "parameters": [THREAD_ID],
                    "requestBody": UPLOAD,
                    "responses": {"201": _json(_ref("Attachment"), "Kept"), **ERRORS},
                }
            },
            "/v1/owner/threads/{thread}/read": {
                "post": {
                    "summary": "Move the owner's read cursor",
                    "security": OWNER,
                    "parameters": [THREAD_ID],
                    "requestBody": READ,
                    "responses": {"204": {"description": "Recorded."}, **ERRORS},
                }
            },
            # Inbound mail from providers' webhooks (relay/mail/webhooks.py). Each exists
            # only while its setting is set (404 otherwise) and answers the pipeline's verdict.
            **{
                f"/v1/inbound/{name}": {
                    "post": {
                        "summary": summary,
                        "description": auth,
                        "requestBody": {"required": True, "content": {kind: {"schema": body}}},
                        "responses": {
                            "200": _json(
                                {
                                    "type": "object",
                                    "required": ["verdict"],
                                    "properties": {
                                        "verdict": {
                                            "type": "string",
                                            "description": "posted, duplicate, auto_reply, "
                                            "bounce, empty, no_tag, unknown_tag, revoked_tag, "
                                            "forged, rate_limited or unreadable",
                                        }
                                    },
                                },
                                "Processed; every verdict is final (do not retry).",
                            ),
                            **{code: ERRORS[code] for code in ("400", "401", "404", "413")},
                        },
                    }
                }
                for name, summary, auth, kind, body in [
                    (
                        "postmark",
                        "Postmark inbound webhook (with 'Include raw email content')",
                        "HTTP Basic auth: PORCH_INBOUND_BASIC_AUTH in the webhook URL.",
                        "application/json",
                        {
                            "type": "object",
                            "required": ["RawEmail"],
                            "properties": {"RawEmail": _STR},
                        },
                    ),
                    (
                        "mailgun",
                        "Mailgun forward to a URL ending in 'mime'",
                        "Signed: signature = hex HMAC-SHA256(PORCH_MAILGUN_SIGNING_KEY, "
                        "timestamp + token); at most 5 minutes old; each token once.",
                        "multipart/form-data",
                        {
                            "type": "object",
                            "required": ["body-mime", "timestamp", "token", "signature"],
                            "properties": {
                                field: _STR
                                for field in ("body-mime", "timestamp", "token", "signature")
                            },
                        },
                    ),
                    (
                        "sendgrid",
                        "SendGrid Inbound Parse ('POST the raw, full MIME message')",
                        "HTTP Basic auth: PORCH_INBOUND_BASIC_AUTH in the webhook URL.",
                        "multipart/form-data",
                        {"type": "object", "required": ["email"], "properties": {"email": _STR}},
                    ),
                    (
                        "raw",
                        "A raw RFC 5322 message, from an edge mail worker",
                        "Headers X-Porch-Timestamp (Unix seconds, within 5 minutes) and "
                        "X-Porch-Signature = hex HMAC-SHA256(PORCH_INBOUND_SECRET, "
                        "timestamp + '.' + body).",
                        "message/rfc822",
                        {"type": "string", "format": "binary"},
                    ),
                ]
            },
            **inbox.PATHS,
            "/healthz": {
                "get": {"summary": "The process is up", "responses": {"200": {"description": "OK"}}}
            },
            "/readyz": {
                "get": {
                    "summary": "The store answers",
                    "responses": {
                        "200": {"description": "Ready"},
                        "503": {"description": "Store unreachable"},
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "visitor": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token returned when the conversation started.",
                },
                "owner": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`porch owner token --site ID`.",
                },
                **inbox.SECURITY,
            },
            "responses": {
                name: _json(_ref("Error"), text)
                for name, text in [
                    ("InvalidRequest", "Malformed JSON, wrong types or values."),
                    ("InvalidToken", "Missing, altered or unknown token."),
                    ("ForbiddenOrigin", "The page's origin is not registered for the site."),
                    ("NotFound", "No such site or thread."),
                    ("TooLarge", "Body or message over the limit."),
                    ("RateLimited", "Too many requests; see the Retry-After header."),
                    *inbox.RESPONSES.items(),
                ]
            },
            "schemas": {**SCHEMAS, **inbox.SCHEMAS},
        },
    }


_STR = {"type": "string"}
_INT = {"type": "integer"}
_NULLABLE_STR = {"type": ["string", "null"]}
SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": _STR, "message": _STR},
    },
    "SiteConfig": {
        "type": "object",
        "properties": {
            "site": _STR,
            # The public settings (relay/sites/settings.py), defaults filled in.
            **site_settings.json_schema(s for s in site_settings.SETTINGS if s.public)[
                "properties"
            ],
            "availability": _ref("Availability"),
            "push_key": {
                "type": "string",
                "description": "The installation's VAPID public key (base64url): the "
                "applicationServerKey a device subscribes with for POST /v1/thread/push.",
            },
        },
    },
    "Availability": {
        "type": "object",
        "description": "What the widget says about when an answer will come.",
        "properties": {
            "online": {"type": "boolean", "description": "An owner has the inbox open."},
            "open": {"type": "boolean", "description": "Within business hours now."},
            "has_hours": {"type": "boolean"},
            "next_open": {**_NULLABLE_STR, "description": "ISO UTC; null when open or never."},
            "reply_seconds": {"type": ["integer", "null"]},
            "reply_source": {"enum": ["measured", "promised", None]},
            "away_text": _STR,
            "away_texts": {"type": "object", "additionalProperties": _STR},
            "timezone": _STR,
        },
    },
    "Message": {
        "type": "object",
        "required": ["seq", "thread", "author", "body", "via", "client_id", "created_at"],
        "properties": {
            "seq": _INT,
            "thread": _STR,
            "author": {"enum": ["visitor", "owner", "system"]},
            "body": _STR,
            "via": {"enum": [via.value for via in Via]},
            "client_id": _NULLABLE_STR,
            "created_at": {"type": "string", "format": "date-time"},
            "attachments": {"type": "array", "items": _ref("Attachment")},
            "answer": {
                **_NULLABLE_STR,
                "description": "An automatic answer (author system): the owner's answer it sent.",
            },
        },
    },
    "Thread": {
        "type": "object",
        "properties": {
            "id": _STR,
            "site": _STR,
            "status": {"enum": ["open", "closed"]},
            "created_at": _STR,
            "updated_at": _STR,
            "last_seq": _INT,
            "owner_read_seq": _INT,
            "visitor_read_seq": _INT,
        },
    },
    "ThreadSummary": {
        "allOf": [
            _ref("Thread"),
            {
                "type": "object",
                "properties": {
                    "page": _NULLABLE_STR,
                    "unread": _INT,
                    "visitor": {
                        "type": "object",
                        "properties": {
                            "id": _STR,
                            "name": _NULLABLE_STR,
                            "email": _NULLABLE_STR,
                            "first_seen": _NULLABLE_STR,
                            "language": _NULLABLE_STR,
                        },
                    },
                    "last_message": {"oneOf": [_ref("Message"), {"type": "null"}]},
                    "match": {
                        **_NULLABLE_STR,
                        "description": "Search hit: the text, each term between U+0002 and U+0003.",
                    },
                },
            },
        ]
    },
    "History": {
        "type": "object",
        "properties": {
            "thread": _ref("Thread"),
            "messages": {"type": "array", "items": _ref("Message")},
            "more": {"type": "boolean", "description": "More after the last one: ask again."},
        },
    },
    "Start": {
        "type": "object",
        "required": ["body"],
        "properties": {
            "body": _STR,
            "client_id": _STR,
            "name": _STR,
            "page": _STR,
            "language": {"enum": ["en", "fr"], "description": "For automatic replies."},
        },
    },
    "Attachment": {
        "type": "object",
        "properties": {
            "id": _STR,
            "name": {**_STR, "description": "The sender's name, with the real extension."},
            "type": {**_STR, "description": "Judged from the content."},
            "size": _INT,
            "url": {
                **_STR,
                "description": "A signed download link, valid for an hour (not in thread "
                "lists' last_message: open the thread).",
            },
        },
        "required": ["id", "name", "type", "size"],
    },
    "Started": {
        "type": "object",
        "properties": {"token": _STR, "thread": _ref("Thread"), "message": _ref("Message")},
    },
    "Send": {
        "type": "object",
        "properties": {
            "body": {**_STR, "description": "May be empty or left out with attachments."},
            "client_id": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"},
            "attachments": {
                "type": "array",
                "maxItems": 10,
                "items": _STR,
                "description": "Ids of this sender's uploads to the thread, not yet sent.",
            },
        },
    },
    "Contact": {
        "type": "object",
        "required": ["email"],
        "properties": {"name": _NULLABLE_STR, "email": {"type": "string", "format": "email"}},
    },
    "Read": {"type": "object", "required": ["seq"], "properties": {"seq": _INT}},
}
