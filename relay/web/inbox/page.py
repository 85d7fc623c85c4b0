"""Serving the inbox page: /inbox (the HTML shell), /inbox/static/<file> (its modules,
styles, icons and its part of the message catalogue) and /inbox/sw.js (its service
worker), under a strict CSP.

Files are read once at start-up and revalidated by ETag on every load: the inbox is
opened a few times a day by a handful of people, so freshness beats caching. The
service worker keeps a copy for when the network is gone (static/sw.js); it is
served with the list of those files and a version made of their content, so that a
release is a new worker, which replaces the copy.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.assets import asset_dir
from relay.catalogue import section
from relay.errors import NotFound
from relay.web.widget import CONTENT_TYPES, Asset

STATIC = Path(__file__).resolve().parent / "static"
# img-src blob:: a photo chosen for a reply shows as a thumbnail before it has uploaded
# (static/tray.js draws it from an object URL of the file itself).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob:; manifest-src 'self'; worker-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    # A page that opened the inbox cannot reach into it (e.g. set its #login= fragment).
    "cross-origin-opener-policy": "same-origin",
}
CACHE = "no-cache"
CONTENT_TYPES_HTML = {
    **CONTENT_TYPES,
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
WORKER = "sw.js"  # served at /inbox/sw.js: a worker controls only the path it is under
PAGE_URL = "/inbox/"


class InboxPage:
    def __init__(self, folder: Path = STATIC) -> None:
        self.files = {
            path.name: Asset.of(path.read_bytes(), CONTENT_TYPES_HTML[path.suffix])
            for path in sorted(folder.iterdir())
            if path.suffix in CONTENT_TYPES_HTML and path.name not in ("messages.json", WORKER)
        }
        catalogue = json.dumps(section("inbox."), ensure_ascii=False).encode()
        self.files["messages.json"] = Asset.of(catalogue, CONTENT_TYPES[".json"])
        # Messages look the same in the inbox as in the widget: one renderer.
        widget_text = (asset_dir("widget") / "text.js").read_bytes()
        self.files["widget-text.js"] = Asset.of(widget_text, CONTENT_TYPES[".js"])
        self.worker = Asset.of(self._worker((folder / WORKER).read_text()), CONTENT_TYPES[".js"])

    def _worker(self, source: str) -> bytes:
        """static/sw.js with what it caches: the page and every file it may load (the
        page imports its modules as it goes: all of them, so none is missing offline),
        and a version that changes with any of them."""
        shell = [PAGE_URL] + [f"/inbox/static/{name}" for name in sorted(self.files)]
        shell.remove("/inbox/static/index.html")
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + self.files[name].body)
        version = digest.hexdigest()[:12]
        return (
            source.replace("'__PORCH_VERSION__'", json.dumps(version))
            .replace("'__PORCH_SHELL__'", json.dumps(shell))
            .encode()
        )

    async def serve_page(self, request: Request) -> Response:
        return self._respond(request, "index.html")

    async def serve_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name == "index.html" or name not in self.files:
            raise NotFound(f"no inbox file {name!r}")
        return self._respond(request, name)

    async def serve_worker(self, request: Request) -> Response:
        response = self.worker.response(request, CACHE)
        response.headers.update(HEADERS)  # its CSP binds the worker's own fetches too
        return response

    def _respond(self, request: Request, name: str) -> Response:
        response = self.files[name].response(request, CACHE)
        response.headers.update(HEADERS)
        return response

    def routes(self) -> list[Route]:
        return [
            Route("/inbox", self.serve_page, methods=["GET"]),
            Route("/inbox/", self.serve_page, methods=["GET"]),  # sign-in links end in /
            Route("/inbox/static/{name}", self.serve_file, methods=["GET"]),
            Route("/inbox/sw.js", self.serve_worker, methods=["GET"]),
        ]
