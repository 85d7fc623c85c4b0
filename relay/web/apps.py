"""The widget's side of messaging apps: "Continue on Telegram / WhatsApp / Messenger".

POST /v1/thread/continue {"channel": id} hands the visitor a link that opens the app
with a single-use code (15 minutes); the app's first message carrying it binds the
chat to this thread (relay.channels.apps.channel). The public config lists the site's
channels (id and kind only: relay.web.api.site_config) so the widget knows which to show.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.catalogue import text
from relay.channels.apps.provider import CODE_TTL, new_code
from relay.errors import NotFound, UnprocessableRequest
from relay.inputs import read_json
from relay.limits import enforce
from relay.sites.settings import LANGUAGE
from relay.web.api import visitor_thread
from relay.web.services import services


async def continue_in_app(request: Request) -> Response:
    s = services(request)
    thread = await visitor_thread(request, s)
    data = await read_json(request, s.config.max_request_bytes)
    channel_id = data.get("channel")
    if not isinstance(channel_id, str):
        raise UnprocessableRequest("'channel' must be the id of one of the site's channels")
    channel = await s.store.app_channel(channel_id)
    app = s.apps.get(channel.kind) if channel else None
    site = await s.store.get_site(thread.site)
    if channel is None or app is None or site is None or channel.site != thread.site:
        raise NotFound("this site has no such channel")
    enforce((s.limits.codes_by_visitor, thread.visitor, "links to an app asked for"))
    code = new_code()
    expires_at = await s.store.new_link_code(channel.id, thread.id, code, CODE_TTL)
    language = await s.store.visitor_language(thread.id) or LANGUAGE.of(site)
    prefill = text("server.chat.continue_text", language, site=site.name, code=code)
    return JSONResponse(
        {"url": app.provider.link(channel, code, prefill), "code": code, "expires_at": expires_at},
        status_code=201,
    )


routes = [Route("/v1/thread/continue", continue_in_app, methods=["POST"])]
