"""Receiving one file: the multipart body is streamed, never held whole, into a scratch
file (relay/attachments/blobs.py) while its bytes are counted, so a 10 MB photo costs
the relay a 64 KiB chunk of memory, and a body past the limit stops at the limit.

`POST …/attachments` takes `multipart/form-data` with exactly one part named `file`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from relay.errors import InvalidRequest, TooLarge

if TYPE_CHECKING:  # a TypedDict the library declares for type checkers only
    from python_multipart.multipart import MultipartCallbacks
    from starlette.requests import Request  # annotations only: `porch mail inspect`

# What multipart wraps around the file: boundaries, part headers, a field or two.
OVERHEAD = 16 * 1024
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class Received:
    name: str  # as the sender named it: shown, never used to judge the content
    path: Path
    size: int


async def receive_file(request: Request, destination: Path, limit: int) -> Received:
    """The body's `file` part, written to `destination` (which the caller removes if
    this raises). TooLarge past `limit` bytes, InvalidRequest for anything that is not
    one file in multipart/form-data."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidRequest("send the file as multipart/form-data with one part named 'file'")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + OVERHEAD:
        raise TooLarge(_too_large(limit), reason="too_large")
    parts = _Parts(destination, limit)
    parser = MultipartParser(boundary, parts.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + OVERHEAD:
                raise TooLarge(_too_large(limit), reason="too_large")
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as error:
        raise InvalidRequest(f"the multipart body is malformed: {error}") from None
    finally:
        parts.close()
    if parts.size is None or not parts.done:  # the caller removes `destination`
        raise InvalidRequest("send one complete part named 'file'")
    return Received(parts.name or "file", destination, parts.size)


class _Parts:
    """python-multipart's callbacks: the `file` part's bytes go to disk as they come."""

    def __init__(self, destination: Path, limit: int) -> None:
        self.destination = destination
        self.limit = limit
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.file: IO[bytes] | None = None
        self.name: str | None = None
        self.size: int | None = None
        self.done = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self.headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def _header_end(self) -> None:
        self.headers[self.header_field.strip().lower()] = self.header_value.strip()
        self.header_field = self.header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if options.get(b"name") != b"file":
            return  # another field: ignored
        if self.size is not None:
            raise InvalidRequest("send one file per request")
        filename = options.get(b"filename", b"").decode("utf-8", "replace")
        self.name = clean_name(filename)
        self.file = self.destination.open("wb")
        self.size = 0

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.file is None:
            return
        assert self.size is not None
        self.size += end - start
        if self.size > self.limit:
            raise TooLarge(_too_large(self.limit), reason="too_large")
        self.file.write(data[start:end])

    def _part_end(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
            self.done = True

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def clean_name(name: str) -> str:
    """The last path segment, printable, short: it is shown and offered as a download
    name, never used as a path."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '"<>:|?*').strip(" .")
    return cleaned[:MAX_NAME_CHARS] or "file"


def _too_large(limit: int) -> str:
    return f"this file is larger than the {limit / 1_000_000:g} MB a file may be here"
