"""A fake Telegram Bot API (https://core.telegram.org/bots/api) on loopback, for tests.

The relay calls `{url}/bot{token}/{method}`; this answers the methods a channel needs in
the documented shapes: `{"ok": true, "result": ...}`, or `{"ok": false, "error_code": N,
"description": "..."}` with the descriptions Telegram really sends (the relay may match
on them: "Forbidden: bot was blocked by the user"). Every call is recorded, failures and
hangs can be scripted for the next calls of a method, and a token can be revoked.

Files: a test puts a customer's file in with `add_file`; getFile answers its File object
(file_path; "Bad Request: file is too big" past the 20 MB bots may download) and
`{url}/file/bot{token}/{file_path}` serves its bytes (filed as DOWNLOAD). sendPhoto and
sendDocument take multipart uploads, recorded with their bytes in `BotCall.files`.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
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

# sendMessage: "Text of the message to be sent, 1-4096 characters after entities parsing".
# Counted here in code points; Telegram's own count may differ for astral characters.
MAX_TEXT = 4096
# setWebhook: "1-256 characters. Only characters A-Z, a-z, 0-9, _ and - are allowed."
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")

UNAUTHORIZED = "Unauthorized"
NOT_FOUND = "Not Found"
MESSAGE_TOO_LONG = "Bad Request: message is too long"
MESSAGE_EMPTY = "Bad Request: message text is empty"
CHAT_ID_EMPTY = "Bad Request: chat_id is empty"
BAD_SECRET = "Bad Request: secret token contains unallowed characters"
BAD_WEBHOOK_URL = "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
INVALID_FILE_ID = "Bad Request: invalid file_id"
FILE_TOO_BIG = "Bad Request: file is too big"
NO_PHOTO = "Bad Request: there is no photo in the request"
NO_DOCUMENT = "Bad Request: there is no document in the request"
NOT_AN_IMAGE = "Bad Request: IMAGE_PROCESS_FAILED"
# getFile: "bots can download files of up to 20MB in size"; sendPhoto: "at most 10 MB".
DOWNLOAD_LIMIT = 20 * 1024 * 1024
PHOTO_LIMIT = 10 * 1024 * 1024
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"RIFF")
DOWNLOAD = "download"  # what a file download is filed under (it is not a Bot API method)


@dataclass(frozen=True)
class BotApiError:
    """A failure the fake answers for a scripted call, as Telegram words it."""

    status: int
    description: str
    retry_after: int | None = None  # sent as parameters.retry_after (429 only)


SERVER_ERROR = BotApiError(500, "Internal Server Error")
BAD_GATEWAY = BotApiError(502, "Bad Gateway")  # what a hung call answers once released
BOT_BLOCKED = BotApiError(403, "Forbidden: bot was blocked by the user")
CHAT_NOT_FOUND = BotApiError(400, "Bad Request: chat not found")


def too_many_requests(retry_after: int) -> BotApiError:
    return BotApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


@dataclass
class BotCall:
    """One request: its Bot API method (canonical spelling), token and parameters."""

    method: str
    token: str
    params: dict[str, Any]
    http_method: str
    status: int | None = None  # what the fake answered; None until then (or hung)
    files: dict[str, Upload] = field(default_factory=dict)  # a multipart call's file parts


@dataclass(frozen=True)
class Webhook:
    url: str
    secret_token: str
    allowed_updates: list[str] | None


@dataclass(frozen=True)
class BotFile:
    """A file a customer sent the bot, as getFile and the download give it."""

    file_id: str
    file_path: str
    content: bytes


@dataclass
class Bot:
    id: int
    username: str
    first_name: str
    revoked: bool = False
    webhook: Webhook | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, BotFile] = field(default_factory=dict)

    def user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }


Handler = Callable[[Bot, BotCall], JSONResponse]


class FakeBotApi(LoopbackServer):
    """`with FakeBotApi() as api:` serves it; put `api.url` in PORCH_TELEGRAM_API_URL."""

    def __init__(self, *, require_https: bool = False) -> None:
        # Telegram only calls HTTPS webhooks; the relay under test listens on plain HTTP.
        self.require_https = require_https
        self.log: CallLog[BotCall] = CallLog(lambda call: call.method)
        self.script: Script[BotApiError] = Script()
        self._bots: dict[str, Bot] = {}
        self._lock = threading.Lock()
        self._message_id = 0
        methods: dict[str, Handler] = {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "getFile": self._get_file,
        }
        # Bot API method names are case-insensitive.
        self._methods = {name.lower(): (name, handler) for name, handler in methods.items()}
        routes = [
            Route("/bot{token}/{method}", self._handle, methods=["GET", "POST"]),
            Route("/file/bot{token}/{path:path}", self._download, methods=["GET"]),
        ]
        super().__init__(Starlette(routes=routes), "FakeBotApi")

    @property
    def url(self) -> str:
        return self.origin

    # -- what a test sets up and reads ---------------------------------------------

    def add_bot(self, token: str, username: str, first_name: str | None = None) -> None:
        head = token.partition(":")[0]
        bot_id = int(head) if head.isdigit() else 1_000_000 + len(self._bots)
        with self._lock:
            self._bots[token] = Bot(bot_id, username, first_name or username)

    def add_file(self, token: str, file_id: str, content: bytes, file_path: str) -> None:
        """A file a customer sent the bot (the file_id their update names)."""
        with self._lock:
            self._bots[token].files[file_id] = BotFile(file_id, file_path, content)

    def revoke(self, token: str) -> None:
        """From now on, calls with `token` get 401, as after /revoke in BotFather."""
        with self._lock:
            self._bots[token].revoked = True

    def webhook(self, token: str) -> Webhook | None:
        """The webhook set for the bot (with the secret Telegram would send back)."""
        return self._bots[token].webhook

    def sent(self, token: str) -> list[dict[str, Any]]:
        """The Message objects the send methods returned for the bot, in order."""
        with self._lock:
            return list(self._bots[token].sent)

    def calls(self, method: str | None = None) -> list[BotCall]:
        return self.log.all(method)

    def wait_for_calls(
        self, method: str, n: int = 1, timeout: float = WAIT_TIMEOUT
    ) -> list[BotCall]:
        return self.log.wait_for(method, n, timeout)

    async def await_calls(
        self, method: str, n: int = 1, timeout: float = WAIT_TIMEOUT
    ) -> list[BotCall]:
        return await self.log.wait_for_async(method, n, timeout)

    def fail_next(self, method: str, error: BotApiError, times: int = 1, after: int = 0) -> None:
        """The next `times` calls of `method` (after `after` normal ones) get `error`."""
        self.script.add(method, error, times, after)

    def hang_next(self, method: str, times: int = 1, seconds: float = HANG_SECONDS) -> None:
        """The next calls get no answer for `seconds` (or until stop), then a 502."""
        self.script.add(method, Hang(seconds), times)

    # -- the API ---------------------------------------------------------------------

    async def _handle(self, request: Request) -> JSONResponse:
        token, asked = request.path_params["token"], request.path_params["method"]
        method, handler = self._methods.get(asked.lower(), (asked, None))
        try:
            params, files = await _params(request)
        except ValueError:
            params, files = {}, {}
        call = BotCall(method, token, params, request.method, files=files)
        self.log.add(call)
        response = await self._answer(call, handler)
        call.status = response.status_code
        return response

    async def _answer(self, call: BotCall, handler: Handler | None) -> JSONResponse:
        bot = self._bots.get(call.token)
        if bot is None or bot.revoked:
            return _error(BotApiError(401, UNAUTHORIZED))
        if handler is None:
            return _error(BotApiError(404, NOT_FOUND))
        scripted = self.script.take(call.method)
        if isinstance(scripted, Hang):
            await self.hang(scripted)
            return _error(BAD_GATEWAY)
        if scripted is not None:
            return _error(scripted)
        return handler(bot, call)

    async def _download(self, request: Request) -> Response:
        """`{url}/file/bot{token}/{file_path}`: the bytes, or Telegram's 404."""
        token, path = request.path_params["token"], request.path_params["path"]
        call = BotCall(DOWNLOAD, token, {"file_path": path}, request.method)
        self.log.add(call)
        bot = self._bots.get(token)
        found = [f for f in bot.files.values() if f.file_path == path] if bot else []
        scripted = self.script.take(DOWNLOAD)
        if isinstance(scripted, Hang):
            await self.hang(scripted)
            response: Response = _error(BAD_GATEWAY)
        elif scripted is not None:
            response = _error(scripted)
        elif bot is None or bot.revoked or not found:
            response = _error(BotApiError(404, NOT_FOUND))
        else:
            response = Response(found[0].content, media_type="application/octet-stream")
        call.status = response.status_code
        return response

    def _get_me(self, bot: Bot, call: BotCall) -> JSONResponse:
        return _ok(bot.user())

    def _set_webhook(self, bot: Bot, call: BotCall) -> JSONResponse:
        params = call.params
        url = str(params.get("url", ""))
        if not url:
            bot.webhook = None
            return _ok(True, "Webhook was deleted")
        schemes = ("https://",) if self.require_https else ("https://", "http://")
        if not url.startswith(schemes):
            return _error(BotApiError(400, BAD_WEBHOOK_URL))
        secret = params.get("secret_token")
        # Optional for Telegram, required here: without it anyone could post updates.
        if not isinstance(secret, str) or not SECRET_TOKEN.fullmatch(secret):
            return _error(BotApiError(400, BAD_SECRET))
        allowed = params.get("allowed_updates")
        if allowed is not None and not (
            isinstance(allowed, list) and all(isinstance(kind, str) for kind in allowed)
        ):
            return _error(BotApiError(400, "Bad Request: can't parse allowed updates"))
        bot.webhook = Webhook(url, secret, allowed)
        return _ok(True, "Webhook was set")

    def _delete_webhook(self, bot: Bot, call: BotCall) -> JSONResponse:
        had, bot.webhook = bot.webhook, None
        return _ok(True, "Webhook was deleted" if had else "Webhook is already deleted")

    def _get_webhook_info(self, bot: Bot, call: BotCall) -> JSONResponse:
        hook = bot.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if hook is not None:
            info["max_connections"] = 40
            if hook.allowed_updates is not None:
                info["allowed_updates"] = hook.allowed_updates
        return _ok(info)

    def _send_message(self, bot: Bot, call: BotCall) -> JSONResponse:
        chat_id, text = call.params.get("chat_id"), call.params.get("text")
        if chat_id in (None, ""):
            return _error(BotApiError(400, CHAT_ID_EMPTY))
        if not isinstance(text, str) or not text.strip():
            return _error(BotApiError(400, MESSAGE_EMPTY))
        if len(text) > MAX_TEXT:
            return _error(BotApiError(400, MESSAGE_TOO_LONG))
        return _ok(self._sent(bot, chat_id, {"text": text}))

    def _send_photo(self, bot: Bot, call: BotCall) -> JSONResponse:
        """An uploaded photo (a file_id or URL instead is not one the fake knows)."""
        upload = call.files.get("photo")
        if call.params.get("chat_id") in (None, ""):
            return _error(BotApiError(400, CHAT_ID_EMPTY))
        if upload is None or not upload.content:
            return _error(BotApiError(400, NO_PHOTO))
        if len(upload.content) > PHOTO_LIMIT or not upload.content.startswith(IMAGE_MAGIC):
            return _error(BotApiError(400, NOT_AN_IMAGE))
        unique = f"AQAD{len(bot.sent)}"
        size = {"file_id": f"AgAC-{unique}", "file_unique_id": unique, "width": 64, "height": 48}
        photo = [{**size, "file_size": len(upload.content)}]
        return _ok(self._sent(bot, call.params["chat_id"], {"photo": photo}))

    def _send_document(self, bot: Bot, call: BotCall) -> JSONResponse:
        upload = call.files.get("document")
        if call.params.get("chat_id") in (None, ""):
            return _error(BotApiError(400, CHAT_ID_EMPTY))
        if upload is None or not upload.content:
            return _error(BotApiError(400, NO_DOCUMENT))
        unique = f"AgAD{len(bot.sent)}"
        document = {
            "file_id": f"BQAC-{unique}",
            "file_unique_id": unique,
            "file_name": upload.filename,
            "mime_type": upload.content_type,
            "file_size": len(upload.content),
        }
        return _ok(self._sent(bot, call.params["chat_id"], {"document": document}))

    def _get_file(self, bot: Bot, call: BotCall) -> JSONResponse:
        found = bot.files.get(str(call.params.get("file_id") or ""))
        if found is None:
            return _error(BotApiError(400, INVALID_FILE_ID))
        if len(found.content) > DOWNLOAD_LIMIT:
            return _error(BotApiError(400, FILE_TOO_BIG))
        return _ok(
            {
                "file_id": found.file_id,
                "file_unique_id": f"AgAD-{found.file_id}",
                "file_size": len(found.content),
                "file_path": found.file_path,
            }
        )

    def _sent(self, bot: Bot, chat_id: Any, content: dict[str, Any]) -> dict[str, Any]:
        """The Message a send method returns, kept in the bot's `sent`."""
        chat = int(chat_id) if re.fullmatch(r"-?\d+", str(chat_id)) else chat_id
        with self._lock:
            self._message_id += 1
            message = {
                "message_id": self._message_id,
                "from": bot.user(),
                "chat": {"id": chat, "type": "private"},
                "date": int(time.time()),
                **content,
            }
            bot.sent.append(message)
        return message


async def _params(request: Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """The query string and the body, JSON or form (whose JSON values are serialized),
    and a multipart body's file parts."""
    params: dict[str, Any] = dict(request.query_params)
    files: dict[str, Upload] = {}
    kind = request.headers.get("content-type", "")
    if request.method == "POST" and kind.startswith("application/json"):
        body = json.loads(await request.body() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("a JSON body must be an object")
        params.update(body)
    elif request.method == "POST" and kind.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        fields, files = await read_form(request)
        params.update(fields)
    if isinstance(params.get("allowed_updates"), str):
        with contextlib.suppress(ValueError):
            params["allowed_updates"] = json.loads(params["allowed_updates"])
    return params, files


def _ok(result: Any, description: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return JSONResponse(body)


def _error(error: BotApiError) -> JSONResponse:
    body: dict[str, Any] = {
        "ok": False,
        "error_code": error.status,
        "description": error.description,
    }
    if error.retry_after is not None:
        body["parameters"] = {"retry_after": error.retry_after}
    return JSONResponse(body, status_code=error.status)
