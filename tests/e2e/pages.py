"""The host pages the e2e tests load the widget into, served from their own origin
(another port than the relay's): the widget runs cross-origin, as on a real site."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

QUEUE_STUB = (
    "window.Porch = window.Porch || "
    "function () { (window.Porch.q = window.Porch.q || []).push(arguments); };"
)

PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>{head}</head>
<body><main><h1>{title}</h1><p>A host page with its own styles.</p>{body}</main>
<script src="{relay}/widget.js" data-site="alpha" {extra} async></script>
</body></html>"""

# Host CSS that would wreck an unprotected widget: it must not leak into the shadow root.
HOSTILE_CSS = (
    "button { background: red !important; font-size: 40px !important; } * { color: lime; }"
)


def page_app(relay: str) -> Starlette:
    relay_ws = relay.replace("http://", "ws://")

    async def plain(request: Request) -> Response:
        return HTMLResponse(
            PAGE.format(lang="en", title="Alpha Bakery", head="", body="", relay=relay, extra="")
        )

    async def french(request: Request) -> Response:
        return HTMLResponse(
            PAGE.format(
                lang="fr", title="Boulangerie Alpha", head="", body="", relay=relay, extra=""
            )
        )

    async def hostile_css(request: Request) -> Response:
        head = f"<style>{HOSTILE_CSS}</style>"
        return HTMLResponse(
            PAGE.format(
                lang="en",
                title="Loud styles",
                head=head,
                body="<button id=host-button>Host</button>",
                relay=relay,
                extra="",
            )
        )

    async def strict(request: Request) -> Response:
        csp = (
            f"default-src 'none'; script-src 'self' {relay}; style-src 'self' {relay}; "
            f"connect-src {relay} {relay_ws}; img-src 'self'; base-uri 'none'"
        )
        head = '<link rel="stylesheet" href="/host.css">'
        return HTMLResponse(
            PAGE.format(lang="en", title="Strict CSP", head=head, body="", relay=relay, extra=""),
            headers={"content-security-policy": csp},
        )

    async def api(request: Request) -> Response:
        body = (
            '<p>Unread: <span id="unread">?</span></p>'
            '<button id="ask" type="button">Ask about a cake</button>'
        )
        head = '<script src="/queue.js"></script><script src="/api.js"></script>'
        return HTMLResponse(
            PAGE.format(lang="en", title="API page", head=head, body=body, relay=relay, extra="")
        )

    async def consent(request: Request) -> Response:
        return HTMLResponse(
            PAGE.format(
                lang="en",
                title="Consent first",
                head="",
                body="",
                relay=relay,
                extra='data-consent="required"',
            )
        )

    async def queue_js(request: Request) -> Response:
        return PlainTextResponse(QUEUE_STUB, media_type="text/javascript")

    async def api_js(request: Request) -> Response:
        # Calls made before the widget script has loaded: they wait in the queue.
        script = """
window.events = [];
Porch('on', 'unread', (count) => { document.getElementById('unread').textContent = count; });
Porch('on', 'open', () => window.events.push('open'));
Porch('on', 'close', () => window.events.push('close'));
Porch('on', 'message', (m) => window.events.push('message:' + m.author));
document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('ask').addEventListener('click', () => Porch('open'));
});
"""
        return PlainTextResponse(script, media_type="text/javascript")

    async def host_css(request: Request) -> Response:
        return PlainTextResponse("body { font-family: serif; }", media_type="text/css")

    return Starlette(
        routes=[
            Route("/", plain),
            Route("/fr", french),
            Route("/hostile-css", hostile_css),
            Route("/strict", strict),
            Route("/api", api),
            Route("/consent", consent),
            Route("/queue.js", queue_js),
            Route("/api.js", api_js),
            Route("/host.css", host_css),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
        ]
    )
