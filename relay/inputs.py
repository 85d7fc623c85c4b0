"""Parsing what clients send. Each function returns a clean value or raises the
PorchError that says what was expected and what came."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from relay.errors import InvalidRequest, InvalidToken, TooLarge, UnprocessableRequest

if TYPE_CHECKING:  # annotations only: the CLI reads settings without loading Starlette
    from starlette.requests import HTTPConnection, Request

CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# A whole number as clients send it: ASCII digits only (str.isdigit() also takes "²",
# which int() refuses), and few enough to be cheap to read: int() refuses more than
# 4,300 digits with a ValueError, and a float() of a big int overflows.
WHOLE_NUMBER = re.compile(r"^[0-9]{1,19}$")
MAX_SEQ = 2**63 - 1  # seqs are BIGINT (SQLite INTEGER, PostgreSQL bigint)
# The thread list's cursor, "<updated_at>|<thread id>" (relay/models.py utc_now, and
# relay/store/rows.py new_id): opaque to clients, who only send back what they got.
LIST_CURSOR = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z)\|([A-Za-z0-9_.:-]{1,64})$"
)
# Control characters other than newline and tab have no place in a chat message;
# CR is folded into LF so every client sees the same text.
_CONTROL = {c for c in range(32) if c not in (9, 10)} | {127}
MAX_NAME_CHARS = 80
MAX_PAGE_CHARS = 2000
# Enough for any realistic history page; more is asked for with a higher `since`.
MAX_PAGE_MESSAGES = 1000


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refused as soon as it is known to be over `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None and whole_number(declared, "Content-Length") > max_bytes:
        raise TooLarge(f"the request body is {declared} bytes; the limit is {max_bytes}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise TooLarge(f"the request body is over the limit of {max_bytes} bytes")
    return bytes(body)


async def read_json(request: Request, max_bytes: int) -> dict[str, Any]:
    return parse_json_object(await read_body(request, max_bytes))


def parse_json_object(raw: bytes | str) -> dict[str, Any]:
    """Every JSON a client sends (HTTP bodies, socket frames) is read here."""
    if not raw:
        raise InvalidRequest("expected a JSON object, got an empty body")
    try:
        if isinstance(raw, str):  # a socket's text frame
            data, escaped = _DECODER.decode(raw), "\\u" in raw
        else:
            data, escaped = json.loads(raw, parse_constant=_no_constant), True
        # JSON may escape a lone UTF-16 surrogate ("\\ud800"): Python keeps it in the str,
        # and it fails later, when written as UTF-8 (SQLite, email, HMAC). A str (strict
        # UTF-8) can hold one only by such an escape; bytes are read as surrogatepass.
        if escaped:
            json.dumps(data, ensure_ascii=False).encode()
    except RecursionError:  # "[[[[…" 25,000 deep: the parser's stack, not ours, gives up
        raise InvalidRequest("expected a JSON object, got JSON nested too deeply") from None
    except UnicodeEncodeError:
        raise InvalidRequest(
            "expected a JSON object, got a string with a lone surrogate (\\ud800-\\udfff)"
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequest(f"expected a JSON object, got malformed JSON ({error})") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"expected a JSON object, got {type(data).__name__}")
    return data


def _no_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity are not JSON (RFC 8259 6), though Python reads them."""
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)  # one, not one per call


def message_body(data: dict[str, Any], max_chars: int) -> str:
    raw = data.get("body")
    if not isinstance(raw, str):
        raise UnprocessableRequest(f"'body' must be a string, got {_kind(raw)}")
    text = clean_text(raw)
    if not text:
        raise UnprocessableRequest("'body' is empty")
    if len(text) > max_chars:
        raise TooLarge(f"'body' has {len(text)} characters; the limit is {max_chars}")
    return text


MAX_ATTACHMENTS = 10  # photos and files in one message


def message_content(data: dict[str, Any], max_chars: int) -> tuple[str, tuple[str, ...]]:
    """A message's body and the ids of the uploads it carries (`"attachments"`): the
    body may be empty, or left out, when there are some."""
    ids = attachment_ids(data)
    raw = data.get("body")
    if ids and (raw is None or (isinstance(raw, str) and not clean_text(raw))):
        return "", ids
    return message_body(data, max_chars), ids


def attachment_ids(data: dict[str, Any]) -> tuple[str, ...]:
    raw = data.get("attachments")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
        isinstance(item, str) and CLIENT_ID.fullmatch(item) for item in raw
    ):
        raise UnprocessableRequest(f"'attachments' must be a list of upload ids, got {_short(raw)}")
    if len(raw) > MAX_ATTACHMENTS:
        raise UnprocessableRequest(
            f"a message carries at most {MAX_ATTACHMENTS} attachments, not {len(raw)}"
        )
    if len(set(raw)) != len(raw):
        raise UnprocessableRequest("'attachments' names an upload twice")
    return tuple(raw)


def clean_text(raw: str) -> str:
    """NFC, LF line ends, no control characters, no surrounding blank space."""
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n").replace("\r", "\n"))
    return text.translate(dict.fromkeys(_CONTROL)).strip()


def client_id(data: dict[str, Any]) -> str | None:
    raw = data.get("client_id")
    if raw is None:
        return None
    if not isinstance(raw, str) or not CLIENT_ID.fullmatch(raw):
        raise UnprocessableRequest(
            f"'client_id' must be 1-64 letters, digits or _.:- , got {_short(raw)}"
        )
    return raw


# A plain addr-spec and nothing else: dot-atom local part (RFC 5322 3.4.1, no quoted
# strings, comments or groups) at a DNS name. Stricter than the RFC on purpose: the
# address ends up in a To header and in the suppression list, and must mean one thing.
EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
MAX_EMAIL_CHARS = 254  # RFC 5321 path limit minus the angle brackets


def email_address(data: dict[str, Any]) -> str:
    raw = data.get("email")
    if not isinstance(raw, str):
        raise UnprocessableRequest(f"'email' must be a string, got {_kind(raw)}")
    email = raw.strip()
    if len(email) > MAX_EMAIL_CHARS or not EMAIL.fullmatch(email):
        raise UnprocessableRequest(
            f"'email' must be an address like ann@example.com, got {_short(raw)}"
        )
    return email.lower()


def page_url(data: dict[str, Any], origins: tuple[str, ...]) -> str | None:
    """The page a conversation started on, kept only if it is on one of the site's
    origins: it is shown to the owner and linked from emails, so it must be theirs."""
    page = optional_text(data, "page", MAX_PAGE_CHARS)
    if page is None:
        return None
    parts = urlsplit(page)
    try:
        origin = normalize_origin(f"{parts.scheme}://{parts.netloc}")
    except ValueError:
        return None
    return page if origin in origins else None


def optional_text(data: dict[str, Any], key: str, max_chars: int) -> str | None:
    raw = data.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise UnprocessableRequest(f"'{key}' must be a string, got {_kind(raw)}")
    text = " ".join(clean_text(raw).split())
    if len(text) > max_chars:
        raise UnprocessableRequest(f"'{key}' has {len(text)} characters; the limit is {max_chars}")
    return text or None


def seq_value(raw: Any, name: str) -> int:
    """A cursor: a whole number that fits a seq, from JSON or a query string."""
    if isinstance(raw, str):
        return whole_number(raw, name)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_SEQ:
        raise InvalidRequest(f"'{name}' must be a whole number 0 to {MAX_SEQ}, got {_short(raw)}")
    return raw


def whole_number(raw: str, name: str, maximum: int = MAX_SEQ) -> int:
    """A whole number 0..maximum written in a string (query, header, form field)."""
    if not WHOLE_NUMBER.fullmatch(raw) or int(raw) > maximum:
        raise InvalidRequest(f"'{name}' must be a whole number 0 to {maximum}, got {_short(raw)}")
    return int(raw)


def query_since(request: Request) -> int:
    return seq_value(request.query_params.get("since", "0"), "since")


def list_cursor(raw: str | None) -> tuple[str, str] | None:
    """The `before` of the thread list: (updated_at, id) of the previous page's last thread."""
    if raw is None:
        return None
    found = LIST_CURSOR.fullmatch(raw)
    if found is None:
        raise UnprocessableRequest(
            f"'before' must be the 'next' of a previous list answer, got {_short(raw)}"
        )
    return found.group(1), found.group(2)


def encode_list_cursor(cursor: tuple[str, str] | None) -> str | None:
    return None if cursor is None else "|".join(cursor)


def bearer(connection: HTTPConnection) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("expected 'Authorization: Bearer <token>'")
    return token.strip()


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def normalize_origin(value: str) -> str:
    """'https://Shop.example:443/' -> 'https://shop.example'; ValueError if not an origin."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an origin like https://shop.example, got {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an origin has no path, query or user, got {value!r}")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
    return f"{parts.scheme}://{host}{port}"
