"""A visitor's devices for Web Push (relay/push): told when the owner replies and they
are not there to read it.

- `POST /v1/thread/push` `{"endpoint", "keys": {"p256dh", "auth"}}` (visitor token) →
  `201 {"id"}`: what the browser's PushSubscription gave, kept for this visitor once the
  endpoint and keys pass their checks (422 and nothing kept otherwise). The same device
  again replaces its row.
- `DELETE /v1/thread/push` → `204`: `{"endpoint"}` forgets that device if it is this
  visitor's; no body forgets all of theirs.
- `GET /porch-sw.js`: the service worker (widget/porch-sw.js) a site's own `/porch-sw.js`
  imports with one line, `importScripts('https://RELAY/porch-sw.js')`: a worker must be
  served from the origin of the pages it serves, and the relay is on another.
- `GET /v1/sites/{site}/push-worker?origin=<the page's origin>` → `200 {"served"}`:
  whether that origin (one of the site's) serves its `/porch-sw.js` as JavaScript, so
  that the widget offers notifications only where they can work. The relay asks, not
  the page: a site's CSP may let the widget reach only the relay, and a page asking
  for a file the site does not have logs a 404 on its console. Nothing of the site's
  answer but that yes or no is passed on.

The public key browsers subscribe with is in the site's public config (`push_key`).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay import __version__
from relay.assets import asset_dir
from relay.config import Config
from relay.errors import UnprocessableRequest
from relay.inputs import normalize_origin, parse_json_object, read_body, read_json
from relay.limits import enforce
from relay.models import PushSubscription, Site
from relay.outbound import tls_context
from relay.push.endpoints import REASON, check_endpoint, check_resolved, pinned, resolve
from relay.push.sender import check_keys
from relay.web.api import visitor_site, visitor_thread
from relay.web.services import client_ip, services
from relay.web.widget import CONTENT_TYPES, EMBED_CACHE, Asset, without_comment_lines

WORKER = "porch-sw.js"
# A device label for lists (the owner's settings; here, the visitor's export): what a
# browser says it is, cut short.
MAX_USER_AGENT_CHARS = 120
KEYS_REASON = "push_keys"  # the error's `reason` for keys a browser would not give

# Whether a site serves its worker: kept a while, shorter when it does not, so that an
# owner who adds the file sees the offer soon. The browser keeps the answer too.
SERVED_TTL = 600.0  # seconds
NOT_SERVED_TTL = 60.0
CHECK_CACHE = "private, max-age=300"
CHECK_TIMEOUT = 3.0  # seconds, for the whole exchange: the widget waits on it
MAX_WORKER_BYTES = 64 * 1024  # read no further: a one-line file is all it takes
JAVASCRIPT = frozenset({"text/javascript", "application/javascript"})
CHECK_HEADERS = {"user-agent": f"Porch/{__version__} (is /porch-sw.js there for Web Push?)"}


async def subscribe(request: Request) -> Response:
    s = services(request)
    thread = await visitor_thread(request, s)
    enforce((s.limits.push_by_visitor, thread.visitor, "push subscriptions from this visitor"))
    data = await read_json(request, s.config.max_request_bytes)
    endpoint, p256dh, auth = await device_of(data, s.config)
    saved = await s.store.add_push_subscription(
        PushSubscription(
            id="",
            site_id=thread.site,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            visitor_id=thread.visitor,
            user_agent=user_agent(request),
        )
    )
    return JSONResponse({"id": saved.id}, status_code=201)


async def unsubscribe(request: Request) -> Response:
    s = services(request)
    thread = await visitor_thread(request, s)
    raw = await read_body(request, s.config.max_request_bytes)
    endpoint = None
    if raw:
        endpoint = parse_json_object(raw).get("endpoint")
        if not isinstance(endpoint, str):
            raise UnprocessableRequest(
                "'endpoint' must be the device's push endpoint; send no body to forget "
                "all of this visitor's devices"
            )
    # By id: a device that passed to another visitor since (the same endpoint) has
    # another id, and stays theirs.
    for device in await s.store.visitor_push_subscriptions(thread.visitor):
        if endpoint is None or device.endpoint == endpoint:
            await s.store.remove_push_subscription(device.id)
    return Response(status_code=204)


async def device_of(data: dict[str, Any], config: Config) -> tuple[str, str, str]:
    """(endpoint, p256dh, auth) of a PushSubscription's JSON as a browser gives it, each
    checked: an https endpoint on a public address (or an allowed origin), and keys that
    are a P-256 point and a 16-byte secret. UnprocessableRequest saying what is wrong."""
    endpoint, keys = data.get("endpoint"), data.get("keys")
    if not isinstance(endpoint, str):
        raise UnprocessableRequest("'endpoint' must be the push endpoint URL", reason=REASON)
    if not isinstance(keys, dict) or not all(
        isinstance(keys.get(name), str) for name in ("p256dh", "auth")
    ):
        raise UnprocessableRequest(
            '\'keys\' must be {"p256dh", "auth"}, as PushSubscription.toJSON() gives them',
            reason=KEYS_REASON,
        )
    check_endpoint(endpoint, config.push_allow)  # its syntax first: no lookup for junk
    try:
        check_keys(keys["p256dh"], keys["auth"])
    except ValueError as error:
        raise UnprocessableRequest(str(error), reason=KEYS_REASON) from None
    await check_resolved(endpoint, config.push_allow)
    return endpoint, keys["p256dh"], keys["auth"]


def user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent", "")[:MAX_USER_AGENT_CHARS] or None


async def service_worker(request: Request) -> Response:
    # Short cache, as the embed's: a site's worker checks its imports for updates.
    return worker_asset().response(request, EMBED_CACHE, cors=True)


@functools.cache
def worker_asset() -> Asset:
    body = (asset_dir("widget") / WORKER).read_bytes()
    return Asset.of(without_comment_lines(body), CONTENT_TYPES[".js"])


async def push_worker(request: Request) -> Response:
    s = services(request)
    site = await visitor_site(request, request.path_params["site"])
    enforce(
        (s.limits.push_checks_by_ip, client_ip(request), "push worker checks from this address")
    )
    origin = registered_origin(request.query_params.get("origin"), site)
    served = await worker_served(s.push_workers, origin, s.config.push_allow)
    return JSONResponse({"served": served}, headers={"cache-control": CHECK_CACHE})


def registered_origin(value: str | None, site: Site) -> str:
    """The `origin` asked about, if it is one of the site's: the relay fetches from no
    other (its owner registered it)."""
    if not value:
        raise UnprocessableRequest(
            "'origin' must be the page's origin, as in ?origin=https://shop.example"
        )
    try:
        origin = normalize_origin(value)
    except ValueError as error:
        raise UnprocessableRequest(f"'origin': {error}") from None
    if origin not in site.origins:
        raise UnprocessableRequest(
            f"{origin!r} is not one of the origins of site {site.id!r}: the relay checks "
            "only those for /porch-sw.js"
        )
    return origin


async def worker_served(
    cache: dict[str, tuple[float, asyncio.Future[bool]]], origin: str, allow: frozenset[str]
) -> bool:
    """Whether `origin` serves /porch-sw.js, from `cache` while fresh; asks made while
    the site is being asked share that one request."""
    cached = cache.get(origin)
    if cached is None or cached[0] <= time.monotonic():
        asking = asyncio.ensure_future(fetch_served(origin, allow))
        cached = cache[origin] = (math.inf, asking)  # fresh until answered
        asking.add_done_callback(functools.partial(keep_answer, cache, origin))
    # Shielded: a visitor who leaves does not cancel what the others wait for.
    return await asyncio.shield(cached[1])


def keep_answer(
    cache: dict[str, tuple[float, asyncio.Future[bool]]], origin: str, asked: asyncio.Future[bool]
) -> None:
    if cache.get(origin, (0.0, None))[1] is not asked:
        return
    if asked.cancelled() or asked.exception() is not None:
        del cache[origin]  # not an answer: the next visitor asks again
        return
    cache[origin] = (time.monotonic() + (SERVED_TTL if asked.result() else NOT_SERVED_TTL), asked)


async def fetch_served(origin: str, allow: frozenset[str]) -> bool:
    """GET {origin}/porch-sw.js: served if a 2xx says it is JavaScript (what a browser
    registers; a site that answers every path with its home page says text/html). A
    redirect is not followed: browsers refuse one for a worker's script. Only on public
    https addresses, as push endpoints (an owner sets the origins: the relay must not
    become their probe of its own network), unless PORCH_PUSH_ENDPOINT_ALLOW lists it."""
    url = f"{origin}/{WORKER}"
    try:
        async with (
            asyncio.timeout(CHECK_TIMEOUT),
            httpx.AsyncClient(
                trust_env=False, follow_redirects=False, verify=tls_context()
            ) as client,
        ):
            addresses = await resolve(url, allow)
            status, headers, _ = await pinned(
                client, "GET", url, addresses, CHECK_HEADERS, None, MAX_WORKER_BYTES
            )
    except (UnprocessableRequest, httpx.HTTPError, TimeoutError):
        return False
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    return 200 <= status < 300 and kind in JAVASCRIPT


routes = [
    Route("/v1/sites/{site}/push-worker", push_worker, methods=["GET"]),
    Route("/v1/thread/push", subscribe, methods=["POST"]),
    Route("/v1/thread/push", unsubscribe, methods=["DELETE"]),
    Route(f"/{WORKER}", service_worker, methods=["GET"]),
]
