"""Serving the widget: /widget.js (the embed, short cache) and /widget/<version>/<file>
(the UI modules, cached for a year: a new release has a new version in its URL).

Files are read once at start-up, versioned by content hash, and kept compressed
(brotli and gzip) in memory: they are small, and every page view asks for the embed.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import brotli
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.assets import asset_dir
from relay.config import Config
from relay.errors import NotFound

EMBED = "embed.js"
CATALOGUE = "messages.json"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}
# Short enough that a release reaches every site within minutes; revalidated by ETag.
EMBED_CACHE = "public, max-age=300"
MODULE_CACHE = "public, max-age=31536000, immutable"
LAUNCHER_KEYS = ("launcher.openGeneric",)
NOT_FOR_WIDGET = ("inbox.", "server.")  # what the embed needs before the catalogue


# Compressed already: sent as they are.
PACKED_TYPES = frozenset({"image/png"})


@functools.lru_cache(maxsize=512)
def _compressed(body: bytes) -> tuple[bytes, bytes]:
    """Brotli and gzip at their best, once per content in a process: the best brotli
    costs ~20 ms a file, and a process that starts several relays (tests) or restarts
    its app would pay it for every file each time."""
    return brotli.compress(body, quality=11), gzip.compress(body, compresslevel=9, mtime=0)


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    brotli: bytes
    gzip: bytes

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Asset:
        packed = (b"", b"") if content_type in PACKED_TYPES else _compressed(body)
        return cls(
            body=body,
            content_type=content_type,
            etag='"' + hashlib.sha256(body).hexdigest()[:20] + '"',
            brotli=packed[0],
            gzip=packed[1],
        )

    def response(self, request: Request, cache: str, *, cors: bool = False) -> Response:
        headers = {
            "cache-control": cache,
            "etag": self.etag,
            "vary": "Accept-Encoding",
            "x-content-type-options": "nosniff",
        }
        if cors:  # module scripts and fetch() from the site's pages are CORS requests
            headers["access-control-allow-origin"] = "*"
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        accepted = _encodings(request.headers.get("accept-encoding", ""))
        body = self.body
        if "br" in accepted and self.brotli:
            body, headers["content-encoding"] = self.brotli, "br"
        elif "gzip" in accepted and self.gzip:
            body, headers["content-encoding"] = self.gzip, "gzip"
        return Response(body, media_type=self.content_type, headers=headers)


class Widget:
    def __init__(self, folder: Path | None = None) -> None:
        folder = folder or asset_dir("widget")
        sources = {
            p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in CONTENT_TYPES
        }
        self.version = hashlib.sha256(
            b"".join(name.encode() + b"\0" + body for name, body in sources.items())
        ).hexdigest()[:12]
        # The one catalogue also holds the inbox's and the server's texts: not for visitors.
        catalogue = {
            lang: {k: v for k, v in texts.items() if not k.startswith(NOT_FOR_WIDGET)}
            for lang, texts in json.loads(sources[CATALOGUE]).items()
        }
        sources[CATALOGUE] = json.dumps(catalogue, ensure_ascii=False).encode()
        self.modules = {
            name: Asset.of(
                without_comment_lines(body) if name.endswith(".js") else body,
                CONTENT_TYPES[Path(name).suffix],
            )
            for name, body in sources.items()
            if name != EMBED
        }
        launcher = {
            lang: {key.split(".", 1)[1]: texts[key] for key in LAUNCHER_KEYS}
            for lang, texts in catalogue.items()
        }
        embed = (
            sources[EMBED]
            .decode()
            .replace("'__PORCH_VERSION__'", json.dumps(self.version))
            .replace("__PORCH_LAUNCHER_TEXT__", json.dumps(launcher, ensure_ascii=False))
        )
        self.embed = Asset.of(embed.encode(), CONTENT_TYPES[".js"])

    async def serve_embed(self, request: Request) -> Response:
        return self.embed.response(request, EMBED_CACHE)

    async def serve_module(self, request: Request) -> Response:
        asset = self.modules.get(request.path_params["name"])
        if request.path_params["version"] != self.version or asset is None:
            raise NotFound(
                f"no widget file {request.url.path!r}; the current version is {self.version}"
            )
        return asset.response(request, MODULE_CACHE, cors=True)

    def routes(self) -> list[Route]:
        return [
            Route("/widget.js", self.serve_embed, methods=["GET"]),
            Route("/widget/{version}/{name}", self.serve_module, methods=["GET"]),
        ]


def without_comment_lines(source: bytes) -> bytes:
    """A module without its whole-line `//` comments: they are written for the people
    who read the code, and would be a fifth of what every visitor downloads. Whole
    lines only: a `//` after code may be inside a string or a URL."""
    return b"".join(
        line for line in source.splitlines(keepends=True) if not line.lstrip().startswith(b"//")
    )


def _encodings(header: str) -> set[str]:
    """Codings the client accepts (q=0 means refused)."""
    accepted = set()
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if params.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        accepted.add(coding.strip().lower())
    return accepted


def snippet(config: Config, site_id: str) -> str:
    """The one line an owner pastes into their site (`porch site add`, the inbox)."""
    return f'<script src="{config.base_url}/widget.js" data-site="{site_id}" async></script>'
