"""A fake Meta Graph API on loopback: WhatsApp Cloud API and Messenger Send API, for tests.

Follows Meta's documentation: WhatsApp "Send messages" (POST /{phone-number-id}/messages,
text and template) and "Phone numbers" (GET /{phone-number-id}?fields=...); Messenger
"Send API" (POST /{page-id}/messages with recipient, messaging_type, message); Graph
errors as {"error": {message, type, code, error_subcode, error_data, fbtrace_id}}. The
access token is taken only from `Authorization: Bearer`: a token in the query string is
refused outright, so a test catches the relay leaking one into a URL (and so into logs).

Media: WhatsApp's "Media" reference: a customer's media (`add_media`) is looked up with
GET /{media-id} (its url, mime_type, sha256, file_size) and downloaded from that url
with the same Bearer token; POST /{phone-number-id}/media uploads a file (multipart:
messaging_product, type, file) for an image or document message naming its id.
Messenger: a customer's attachment is a CDN URL (`add_cdn_file`); the page sends a file
as multipart form data with `filedata`. Uploads are recorded with their bytes in
`GraphCall.files`.

Messenger's windows ("Send a Message", "Message Tags"): a RESPONSE or UPDATE goes within
24 hours of the person's last message; MESSAGE_TAG with tag HUMAN_AGENT within 7 days;
otherwise (#10) with error_subcode 2018278. The fake checks them for a person it was
told of (`customer_wrote`); one it was not told of counts as having just written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.server import (
    HANG_SECONDS,
    WAIT_TIMEOUT,
    CallLog,
    Hang,
    LoopbackServer,
    Script,
    Upload,
    read_form,
)

VERSION = "v21.0"
# The documented maximum lengths of a text: WhatsApp text.body, Messenger message.text.
WHATSAPP_MAX_TEXT = 4096
MESSENGER_MAX_TEXT = 2000
MESSAGING_TYPES = {"RESPONSE", "UPDATE", "MESSAGE_TAG"}
MESSAGE_TAGS = {"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "HUMAN_AGENT"}
STANDARD_WINDOW = timedelta(hours=24)  # RESPONSE and UPDATE
HUMAN_AGENT_WINDOW = timedelta(days=7)  # MESSAGE_TAG + HUMAN_AGENT
PHONE_NUMBER_FIELDS = ("verified_name", "display_phone_number", "quality_rating", "id")
# WhatsApp's supported media: images JPEG and PNG up to 5 MB, documents up to 100 MB.
WHATSAPP_IMAGES = {"image/jpeg", "image/png"}
WHATSAPP_DOCUMENTS = {
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
WHATSAPP_IMAGE_LIMIT = 5 * 1024 * 1024
WHATSAPP_DOCUMENT_LIMIT = 100 * 1024 * 1024
MESSENGER_ATTACHMENTS = {"image", "audio", "video", "file"}
CDN_CHUNK = 64 * 1024

# What each call is filed under, in the log and the script.
WHATSAPP_SEND = "whatsapp.send"
MESSENGER_SEND = "messenger.send"
PHONE_NUMBER = "whatsapp.phone_number"
PAGE = "messenger.page"
SUBSCRIBE = "messenger.subscribed_apps"  # a page's webhook subscription: POST, DELETE
MEDIA_LOOKUP = "whatsapp.media"  # GET /{media-id}
MEDIA_DOWNLOAD = "whatsapp.media.download"  # GET of the url the lookup gave
MEDIA_UPLOAD = "whatsapp.media.upload"  # POST /{phone-number-id}/media
CDN = "messenger.cdn"  # GET of an attachment's payload.url
UNKNOWN = "unknown"


@dataclass(frozen=True)
class GraphError:
    """A Graph API error answer; `details` goes in error_data (as WhatsApp's do)."""

    status: int
    code: int
    message: str
    subcode: int | None = None
    details: str | None = None
    type: str = "OAuthException"


INVALID_TOKEN = GraphError(401, 190, "Invalid OAuth access token - Cannot parse access token")
TOKEN_IN_URL = GraphError(
    400, 100, "(#100) This fake refuses access_token in the URL: send it as Authorization: Bearer"
)
# Graph's generic failures; throttling comes as HTTP 400 too, so a client must read the code.
SERVER_ERROR = GraphError(500, 1, "An unknown error has occurred.")
UNAVAILABLE = GraphError(503, 2, "Service temporarily unavailable")  # what a released hang gets
APP_RATE_LIMIT = GraphError(400, 4, "(#4) Application request limit reached")
WHATSAPP_RATE_LIMIT = GraphError(
    400,
    130429,
    "(#130429) Rate limit hit",
    details="Cloud API message throughput has been reached.",
)
RE_ENGAGEMENT = GraphError(
    400,
    131047,
    "(#131047) Re-engagement message",
    details="Message failed to send because more than 24 hours have passed since the "
    "customer last replied to this number.",
)
MESSENGER_OUTSIDE_WINDOW = GraphError(
    400, 10, "(#10) This message is sent outside of allowed window.", subcode=2018278
)
MESSENGER_UNAVAILABLE = GraphError(400, 551, "This person isn't available right now.", 1545041)


def invalid_parameter(message: str) -> GraphError:
    return GraphError(400, 100, f"(#100) {message}")


def unsupported(node: str, verb: str) -> GraphError:
    """Graph's answer for an id that does not exist or that the token may not use."""
    return GraphError(
        400,
        100,
        f"Unsupported {verb} request. Object with ID '{node}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        subcode=33,
    )


@dataclass
class GraphCall:
    """One request: what it was filed under, its node id, bearer token and body."""

    endpoint: str
    http_method: str
    node: str
    token: str | None
    query: dict[str, str]
    body: dict[str, Any] | None
    status: int | None = None  # what the fake answered; None until then (or hung)
    answer: dict[str, Any] | None = None  # its JSON, e.g. the wamid a send was given
    files: dict[str, Upload] = field(default_factory=dict)  # a multipart call's file parts


@dataclass
class Account:
    """A WhatsApp phone number or a Messenger page, with the token that may act for it."""

    kind: str  # "whatsapp" or "messenger"
    token: str
    fields: dict[str, str]
    revoked: bool = False


@dataclass(frozen=True)
class Media:
    """A WhatsApp media object: a customer's, or one the business uploaded."""

    id: str
    phone_number_id: str
    content: bytes
    mime_type: str


@dataclass(frozen=True)
class CdnFile:
    content: bytes
    mime_type: str
    chunked: bool  # served without a Content-Length, as a stream


class FakeGraphApi(LoopbackServer):
    """`with FakeGraphApi() as graph:` serves it; `graph.url` (ending in the version) goes
    in PORCH_META_API_URL."""

    def __init__(self, version: str = VERSION) -> None:
        self.version = version
        self.log: CallLog[GraphCall] = CallLog(lambda call: call.endpoint)
        self.script: Script[GraphError] = Script()
        self.sent: list[GraphCall] = []  # the send calls that succeeded, in order
        self._accounts: dict[str, Account] = {}
        self._media: dict[str, Media] = {}
        self._cdn: dict[str, CdnFile] = {}
        self._wrote: dict[tuple[str, str], datetime] = {}  # (page, PSID): last message
        self._lock = threading.Lock()
        routes = [
            Route("/whatsapp-media/{media}", self._media_download, methods=["GET"]),
            Route("/messenger-cdn/{name}", self._cdn_download, methods=["GET"]),
            Route("/{version}/{node}/messages", self._handle, methods=["POST"]),
            Route("/{version}/{node}/media", self._upload, methods=["POST"]),
            Route("/{version}/{node}", self._handle, methods=["GET"]),
            Route("/{version}/{node}/subscribed_apps", self._subscribe, methods=["POST", "DELETE"]),
            Route("/{path:path}", self._unknown_path, methods=["GET", "POST", "DELETE"]),
        ]
        super().__init__(Starlette(routes=routes), "FakeGraphApi")

    @property
    def url(self) -> str:
        return f"{self.origin}/{self.version}"

    # -- what a test sets up and reads ---------------------------------------------

    def add_whatsapp(
        self,
        phone_number_id: str,
        token: str,
        display_phone_number: str,
        verified_name: str = "Alpha Bakery",
    ) -> None:
        fields = {
            "id": phone_number_id,
            "display_phone_number": display_phone_number,
            "verified_name": verified_name,
            "quality_rating": "GREEN",
        }
        with self._lock:
            self._accounts[phone_number_id] = Account("whatsapp", token, fields)

    def add_page(self, page_id: str, token: str, name: str = "Alpha Bakery") -> None:
        with self._lock:
            self._accounts[page_id] = Account("messenger", token, {"id": page_id, "name": name})

    def add_media(self, phone_number_id: str, media_id: str, content: bytes, mime: str) -> None:
        """A photo or document a customer sent the number (the id their message names)."""
        with self._lock:
            self._media[media_id] = Media(media_id, phone_number_id, content, mime)

    def media(self, media_id: str) -> Media:
        """A media object, e.g. one the relay uploaded (a send names its id)."""
        with self._lock:
            return self._media[media_id]

    def add_cdn_file(self, name: str, content: bytes, mime: str, *, chunked: bool = False) -> str:
        """A Messenger customer's attachment; its payload.url."""
        with self._lock:
            self._cdn[name] = CdnFile(content, mime, chunked)
        return f"{self.origin}/messenger-cdn/{name}"

    def customer_wrote(self, page_id: str, psid: str, at: datetime) -> None:
        """The person last wrote to the page at `at`: Messenger's windows count from it."""
        with self._lock:
            self._wrote[(page_id, psid)] = at

    def revoke(self, token: str) -> None:
        """From now on `token` is refused (190), as after a password change or a reset."""
        with self._lock:
            for account in self._accounts.values():
                if account.token == token:
                    account.revoked = True

    def calls(self, endpoint: str | None = None) -> list[GraphCall]:
        return self.log.all(endpoint)

    def wait_for_calls(
        self, endpoint: str, n: int = 1, timeout: float = WAIT_TIMEOUT
    ) -> list[GraphCall]:
        return self.log.wait_for(endpoint, n, timeout)

    async def await_calls(
        self, endpoint: str, n: int = 1, timeout: float = WAIT_TIMEOUT
    ) -> list[GraphCall]:
        return await self.log.wait_for_async(endpoint, n, timeout)

    def fail_next(self, endpoint: str, error: GraphError, times: int = 1, after: int = 0) -> None:
        """The next `times` calls of `endpoint` (after `after` normal ones) get `error`."""
        self.script.add(endpoint, error, times, after)

    def hang_next(self, endpoint: str, times: int = 1, seconds: float = HANG_SECONDS) -> None:
        """The next calls get no answer for `seconds` (or until stop), then a 503."""
        self.script.add(endpoint, Hang(seconds), times)

    # -- the API ---------------------------------------------------------------------

    async def _handle(self, request: Request) -> JSONResponse:
        node = request.path_params["node"]
        bearer = _bearer(request)
        if request.method == "GET" and node in self._media:
            return await self._lookup(request, self._media[node], bearer)
        account = self._accounts.get(node) if node != "me" else self._page_of(bearer)
        endpoint = _endpoint(account, request.method)
        files: dict[str, Upload] = {}
        try:
            body, files = await _body(request) if request.method == "POST" else (None, {})
        except ValueError:
            body = None
        query = dict(request.query_params)
        call = GraphCall(endpoint, request.method, node, bearer, query, body, files=files)
        self.log.add(call)
        response = await self._answer(call, account, request.path_params["version"])
        call.answer = json.loads(bytes(response.body))
        call.status = response.status_code
        return response

    async def _answer(self, call: GraphCall, account: Account | None, version: str) -> JSONResponse:
        if "access_token" in call.query:
            return _error(TOKEN_IN_URL)
        if version != self.version:
            return _error(GraphError(400, 2500, f"Unknown path components: /{version}"))
        if call.token is None or not self._known(call.token):
            return _error(INVALID_TOKEN)
        verb = "post" if call.http_method == "POST" else "get"
        if account is None or account.token != call.token:
            return _error(unsupported(call.node, verb))
        scripted = self.script.take(call.endpoint)
        if isinstance(scripted, Hang):
            await self.hang(scripted)
            return _error(UNAVAILABLE)
        if scripted is not None:
            return _error(scripted)
        if call.http_method == "GET":
            return _read_fields(account, call.query)
        if call.body is None:
            return _error(invalid_parameter("The request body must be a JSON object"))
        if account.kind == "whatsapp":
            response = _send_whatsapp(call.body, lambda media: self._uploaded(call.node, media))
        else:
            response = _send_messenger(call.body, call.files, self._since(call.node, call.body))
        if response.status_code == 200:
            with self._lock:
                self.sent.append(call)
        return response

    async def _subscribe(self, request: Request) -> JSONResponse:
        """Messenger's "Subscribe an app to a page" (and its DELETE): the page token only."""
        node = request.path_params["node"]
        account = self._accounts.get(node)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        call = GraphCall(SUBSCRIBE, request.method, node, bearer, dict(request.query_params), None)
        self.log.add(call)
        if bearer is None or not self._known(bearer):
            response = _error(INVALID_TOKEN)
        elif account is None or account.kind != "messenger" or account.token != bearer:
            response = _error(unsupported(node, request.method.lower()))
        else:
            response = JSONResponse({"success": True})
        call.status = response.status_code
        return response

    async def _lookup(self, request: Request, media: Media, bearer: str | None) -> JSONResponse:
        """GET /{media-id}: where to download it, for the number's own token."""
        query = dict(request.query_params)
        call = GraphCall(MEDIA_LOOKUP, "GET", media.id, bearer, query, None)
        self.log.add(call)
        owner = self._accounts.get(media.phone_number_id)
        asked_number = query.get("phone_number_id", media.phone_number_id)
        if "access_token" in query:
            response = _error(TOKEN_IN_URL)
        elif bearer is None or not self._known(bearer):
            response = _error(INVALID_TOKEN)
        elif owner is None or owner.token != bearer or asked_number != media.phone_number_id:
            response = _error(unsupported(media.id, "get"))
        elif isinstance(scripted := self.script.take(MEDIA_LOOKUP), GraphError):
            response = _error(scripted)
        else:
            response = JSONResponse(
                {
                    "messaging_product": "whatsapp",
                    "url": f"{self.origin}/whatsapp-media/{media.id}?mid={media.id}",
                    "mime_type": media.mime_type,
                    "sha256": hashlib.sha256(media.content).hexdigest(),
                    "file_size": len(media.content),
                    "id": media.id,
                }
            )
        call.answer, call.status = json.loads(bytes(response.body)), response.status_code
        return response

    async def _media_download(self, request: Request) -> Response:
        """The url a lookup gave: the bytes, for the same Bearer token."""
        bearer = _bearer(request)
        media = self._media.get(request.path_params["media"])
        call = GraphCall(MEDIA_DOWNLOAD, "GET", request.path_params["media"], bearer, {}, None)
        self.log.add(call)
        owner = self._accounts.get(media.phone_number_id) if media else None
        scripted = self.script.take(MEDIA_DOWNLOAD)
        response: Response
        if isinstance(scripted, Hang):
            await self.hang(scripted)
            response = _error(UNAVAILABLE)
        elif scripted is not None:
            response = _error(scripted)
        elif media is None or owner is None or owner.revoked or owner.token != bearer:
            response = Response(status_code=404)
        else:
            response = Response(media.content, media_type=media.mime_type)
        call.status = response.status_code
        return response

    async def _upload(self, request: Request) -> JSONResponse:
        """POST /{phone-number-id}/media: a file for a later image or document message."""
        node, bearer = request.path_params["node"], _bearer(request)
        try:
            fields, files = await read_form(request)
        except (ValueError, KeyError, AssertionError):
            fields, files = {}, {}
        call = GraphCall(MEDIA_UPLOAD, "POST", node, bearer, dict(request.query_params), None)
        call.body, call.files = dict(fields), files
        self.log.add(call)
        account = self._accounts.get(node)
        upload = files.get("file")
        kind = upload.content_type if upload else None
        limit = WHATSAPP_IMAGE_LIMIT if kind in WHATSAPP_IMAGES else WHATSAPP_DOCUMENT_LIMIT
        scripted = self.script.take(MEDIA_UPLOAD)
        if bearer is None or not self._known(bearer):
            response = _error(INVALID_TOKEN)
        elif account is None or account.kind != "whatsapp" or account.token != bearer:
            response = _error(unsupported(node, "post"))
        elif isinstance(scripted, GraphError):
            response = _error(scripted)
        elif fields.get("messaging_product") != "whatsapp":
            response = _error(invalid_parameter("The parameter messaging_product is required."))
        elif upload is None or not upload.content:
            response = _error(invalid_parameter("The parameter file is required."))
        elif kind not in WHATSAPP_IMAGES | WHATSAPP_DOCUMENTS or fields.get("type") != kind:
            response = _error(invalid_parameter(f"Param file must be a file of type {kind}"))
        elif len(upload.content) > limit:
            response = _error(invalid_parameter(f"Param file must be at most {limit} bytes"))
        else:
            media = Media(str(uuid.uuid4().int % 10**16), node, upload.content, str(kind))
            with self._lock:
                self._media[media.id] = media
            response = JSONResponse({"id": media.id})
        call.answer, call.status = json.loads(bytes(response.body)), response.status_code
        return response

    async def _cdn_download(self, request: Request) -> Response:
        """A Messenger attachment's URL: no token (it is a public CDN address)."""
        name = request.path_params["name"]
        call = GraphCall(CDN, "GET", name, _bearer(request), {}, None)
        self.log.add(call)
        found = self._cdn.get(name)
        scripted = self.script.take(CDN)
        response: Response
        if isinstance(scripted, GraphError):
            response = _error(scripted)
        elif found is None:
            response = Response(status_code=404)
        elif found.chunked:
            response = StreamingResponse(_chunks(found.content), media_type=found.mime_type)
        else:
            response = Response(found.content, media_type=found.mime_type)
        call.status = response.status_code
        return response

    def _uploaded(self, phone_number_id: str, media_id: Any) -> str | None:
        """The mime type of a media this number uploaded, None if there is no such one."""
        with self._lock:
            media = self._media.get(str(media_id))
        return media.mime_type if media and media.phone_number_id == phone_number_id else None

    def _since(self, page_id: str, body: dict[str, Any]) -> timedelta:
        """How long ago the send's recipient last wrote to the page (zero: not told)."""
        recipient = body.get("recipient")
        psid = recipient.get("id") if isinstance(recipient, dict) else None
        with self._lock:
            wrote = self._wrote.get((page_id, str(psid)))
        return datetime.now(UTC) - wrote if wrote is not None else timedelta(0)

    def _page_of(self, token: str | None) -> Account | None:
        """/me as a page token sees it: its page."""
        with self._lock:
            pages = [a for a in self._accounts.values() if a.kind == "messenger"]
        return next((page for page in pages if page.token == token), None)

    def _known(self, token: str) -> bool:
        with self._lock:
            return any(a.token == token and not a.revoked for a in self._accounts.values())

    async def _unknown_path(self, request: Request) -> JSONResponse:
        call = GraphCall(UNKNOWN, request.method, request.url.path, None, {}, None)
        self.log.add(call)
        call.status = 400
        return _error(GraphError(400, 2500, f"Unknown path components: {request.url.path}"))


def _endpoint(account: Account | None, http_method: str) -> str:
    if account is None:
        return UNKNOWN
    if account.kind == "whatsapp":
        return WHATSAPP_SEND if http_method == "POST" else PHONE_NUMBER
    return MESSENGER_SEND if http_method == "POST" else PAGE


def _read_fields(account: Account, query: dict[str, str]) -> JSONResponse:
    asked = [name for name in query.get("fields", "").split(",") if name]
    defaults = PHONE_NUMBER_FIELDS if account.kind == "whatsapp" else ("name", "id")
    for name in asked:
        if name not in account.fields:
            node_type = "WhatsAppBusinessPhoneNumber" if account.kind == "whatsapp" else "Page"
            return _error(
                invalid_parameter(
                    f"Tried accessing nonexisting field ({name}) on node type ({node_type})"
                )
            )
    names = [*(asked or defaults), "id"]
    return JSONResponse({name: account.fields[name] for name in names})


def _send_whatsapp(body: dict[str, Any], uploaded: Callable[[Any], str | None]) -> JSONResponse:
    if body.get("messaging_product") != "whatsapp":
        return _error(invalid_parameter("The parameter messaging_product is required."))
    to = body.get("to")
    if not isinstance(to, str) or not to:
        return _error(invalid_parameter("The parameter to is required."))
    kind = body.get("type")
    if kind == "text":
        text = body.get("text")
        text_body = text.get("body") if isinstance(text, dict) else None
        if not isinstance(text_body, str) or not text_body:
            return _error(invalid_parameter("The parameter text['body'] is required."))
        if len(text_body) > WHATSAPP_MAX_TEXT:
            limit = WHATSAPP_MAX_TEXT
            return _error(
                invalid_parameter(f"Param text['body'] must be at most {limit} characters")
            )
    elif kind == "template":
        template = body.get("template")
        language = template.get("language") if isinstance(template, dict) else None
        if not isinstance(template, dict) or not template.get("name"):
            return _error(invalid_parameter("The parameter template['name'] is required."))
        if not isinstance(language, dict) or not language.get("code"):
            return _error(invalid_parameter("The parameter template['language'] is required."))
    elif kind in ("image", "document"):
        media = body.get(kind)
        found = uploaded(media.get("id")) if isinstance(media, dict) else None
        if found is None:
            return _error(invalid_parameter(f"Param {kind}['id'] is not a valid media id"))
        if kind == "image" and found not in WHATSAPP_IMAGES:
            return _error(invalid_parameter(f"Param image['id'] is a {found}, not an image"))
    else:
        return _error(
            invalid_parameter("Param type must be one of {TEXT, TEMPLATE, IMAGE, DOCUMENT} here")
        )
    message: dict[str, str] = {"id": _wamid()}
    if kind == "template":
        message["message_status"] = "accepted"
    wa_id = "".join(ch for ch in to if ch.isdigit())
    return JSONResponse(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id}],
            "messages": [message],
        }
    )


def _send_messenger(
    body: dict[str, Any], files: dict[str, Upload], since: timedelta
) -> JSONResponse:
    """A Send API call; `since`: how long ago the recipient last wrote to the page."""
    recipient = body.get("recipient")
    psid = recipient.get("id") if isinstance(recipient, dict) else None
    if not isinstance(psid, str) or not psid:
        return _error(invalid_parameter("The parameter recipient is required"))
    messaging_type = body.get("messaging_type")
    if messaging_type not in MESSAGING_TYPES:
        return _error(
            invalid_parameter(
                "Param messaging_type must be one of " + "{RESPONSE, UPDATE, MESSAGE_TAG}"
            )
        )
    tag = body.get("tag")
    if messaging_type == "MESSAGE_TAG" and tag not in MESSAGE_TAGS:
        return _error(invalid_parameter("Param tag must be a valid message tag"))
    if messaging_type != "MESSAGE_TAG" and tag is not None:
        return _error(invalid_parameter("Param tag is only for messaging_type MESSAGE_TAG"))
    # Other tags are policy (what the message may say), not time: not checked here.
    window = HUMAN_AGENT_WINDOW if tag == "HUMAN_AGENT" else STANDARD_WINDOW
    if (messaging_type != "MESSAGE_TAG" or tag == "HUMAN_AGENT") and since > window:
        return _error(MESSENGER_OUTSIDE_WINDOW)
    message = body.get("message")
    attachment = message.get("attachment") if isinstance(message, dict) else None
    if attachment is not None:
        return _send_messenger_attachment(psid, attachment, files)
    text = message.get("text") if isinstance(message, dict) else None
    if not isinstance(text, str) or not text:
        return _error(invalid_parameter("The parameter message[text] is required"))
    if len(text) > MESSENGER_MAX_TEXT:
        limit = MESSENGER_MAX_TEXT
        return _error(
            invalid_parameter(
                f"Length of param message[text] must be less than or equal to {limit}"
            )
        )
    return JSONResponse({"recipient_id": psid, "message_id": f"m_{secrets.token_urlsafe(32)}"})


def _send_messenger_attachment(
    psid: str, attachment: Any, files: dict[str, Upload]
) -> JSONResponse:
    """An attachment by URL, by a saved attachment_id, or uploaded as `filedata`."""
    kind = attachment.get("type") if isinstance(attachment, dict) else None
    payload = attachment.get("payload") if isinstance(attachment, dict) else None
    if kind not in MESSENGER_ATTACHMENTS or not isinstance(payload, dict):
        return _error(invalid_parameter("Param message[attachment][type] must be a media type"))
    upload = files.get("filedata")
    if not payload.get("url") and not payload.get("attachment_id") and upload is None:
        return _error(invalid_parameter("Incorrect attachment: filedata, url or id required"))
    if upload is not None and not upload.content:
        return _error(invalid_parameter("The file is empty"))
    sent = {"recipient_id": psid, "message_id": f"m_{secrets.token_urlsafe(32)}"}
    if payload.get("is_reusable"):
        sent["attachment_id"] = str(uuid.uuid4().int % 10**16)
    return JSONResponse(sent)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _chunks(content: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(content), CDN_CHUNK):
        yield content[start : start + CDN_CHUNK]


async def _body(request: Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """A JSON body, or a form whose object values are JSON text (Graph takes both), and
    a multipart body's file parts."""
    files: dict[str, Upload] = {}
    if request.headers.get("content-type", "").startswith("application/json"):
        body = json.loads(await request.body() or b"{}")
    else:
        fields, files = await read_form(request)
        body = {key: _maybe_json(value) for key, value in fields.items()}
    if not isinstance(body, dict):
        raise ValueError("the body must be an object")
    return body, files


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value) if value[:1] in "{[" else value
    except ValueError:
        return value


def _wamid() -> str:
    """Unique, shaped like WhatsApp's: "wamid." and base64."""
    return "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18" + uuid.uuid4().bytes).decode()


def _error(error: GraphError) -> JSONResponse:
    detail: dict[str, Any] = {"message": error.message, "type": error.type, "code": error.code}
    if error.subcode is not None:
        detail["error_subcode"] = error.subcode
    if error.details is not None:
        detail["error_data"] = {"messaging_product": "whatsapp", "details": error.details}
    detail["fbtrace_id"] = secrets.token_urlsafe(16)
    headers = {}
    if error.code == 190:
        headers["www-authenticate"] = (
            'OAuth "Facebook Platform" "invalid_token" "' + error.message + '"'
        )
    return JSONResponse({"error": detail}, status_code=error.status, headers=headers)
