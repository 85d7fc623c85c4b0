"""The owner's devices that take pushes (Web Push, issue 18), under /inbox/api/push: the
installation's public key and the signed-in owner's devices, adding the browser's
subscription ("Notify me on this device") and removing one. Cookie session and CSRF as
every inbox route; an owner sees and removes only their own devices (another's is "not
found"). Signing out removes the devices subscribed in that session (relay/web/inbox/
api.py). relay/web/inbox/api.py mounts these routes.

A subscription's endpoint is a URL the relay will POST to: it is checked as the
visitor's is (relay/push/endpoints.py), and nothing is stored when it or the keys are
refused."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.errors import NotFound, UnprocessableRequest
from relay.inputs import read_json
from relay.models import OwnerSession, PushSubscription
from relay.push.endpoints import check_endpoint, check_resolved
from relay.push.sender import check_keys
from relay.push.vapid import installation_key
from relay.web.inbox.auth import signed_in
from relay.web.services import Services, services

PRIVATE = {"cache-control": "no-store"}
MAX_LABEL = 120  # characters of the browser's User-Agent kept as the device's label
SHAPE = "send the browser's subscription: {'endpoint', 'keys': {'p256dh', 'auth'}}"


async def list_devices(request: Request) -> Response:
    """The key a browser subscribes with (applicationServerKey), and the owner's devices."""
    session = await signed_in(request)
    s = services(request)
    key = await installation_key(s.store)
    devices = [
        {
            "id": device.id,
            "label": device.user_agent,
            "created_at": device.created_at,
            "this_session": device.session_id == session.id,
        }
        for device in await owner_devices(s, session)
    ]
    return JSONResponse({"key": key.public_key, "devices": devices}, headers=PRIVATE)


async def add_device(request: Request) -> Response:
    """Keep this browser's subscription: pushes for every site the owner answers for
    reach it until it is removed, its session signs out or its push service says it
    is gone."""
    session = await signed_in(request)
    s = services(request)
    data = await read_json(request, s.config.max_request_bytes)
    endpoint, p256dh, auth = _subscription(data)
    allow = s.config.push_allow
    check_endpoint(endpoint, allow)
    try:
        check_keys(p256dh, auth)
    except ValueError as error:
        raise UnprocessableRequest(str(error), reason="push_keys") from None
    await check_resolved(endpoint, allow)  # last: it looks the name up
    sites = await s.store.owner_sites(session.email)
    if not sites:
        raise UnprocessableRequest("you answer for no site: there is nothing to be told of")
    user_agent = request.headers.get("user-agent", "")[:MAX_LABEL] or None
    saved = await s.store.add_push_subscription(
        PushSubscription(
            id="",
            site_id=sites[0].id,  # the row's anchor only: the owner is told of every site
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            owner_email=session.email,
            session_id=session.id,
            user_agent=user_agent,
        )
    )
    return JSONResponse({"id": saved.id}, status_code=201, headers=PRIVATE)


async def remove_device(request: Request) -> Response:
    session = await signed_in(request)
    s = services(request)
    device_id = request.path_params["id"]
    device = await s.store.push_subscription(device_id)
    if device is None or (device.owner_email or "") != session.email:
        raise NotFound(f"no device {device_id!r} of yours takes notifications")
    await s.store.remove_push_subscription(device.id)
    return Response(status_code=204, headers=PRIVATE)


async def owner_devices(s: Services, session: OwnerSession) -> list[PushSubscription]:
    """The signed-in owner's devices, oldest first (the store finds them by address
    through any site the owner answers for; no site, no devices told)."""
    sites = await s.store.owner_sites(session.email)
    if not sites:
        return []
    return await s.store.owner_push_subscriptions(sites[0].id, session.email)


async def forget_devices(s: Services, email: str, sessions: list[str] | None) -> None:
    """Signed out: the devices subscribed in these sessions are told no more; None
    ("sign out everywhere"): none of the owner's devices, wherever subscribed."""
    if sessions is None:
        await s.store.remove_owner_push_subscriptions(email)
    else:
        await s.store.remove_session_push_subscriptions(sessions)


def _subscription(data: dict[str, Any]) -> tuple[str, str, str]:
    """(endpoint, p256dh, auth) as PushSubscription.toJSON() gives them."""
    endpoint, keys = data.get("endpoint"), data.get("keys")
    if not isinstance(endpoint, str) or not isinstance(keys, dict):
        raise UnprocessableRequest(SHAPE, reason="push_subscription")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not isinstance(auth, str):
        raise UnprocessableRequest(SHAPE, reason="push_keys")
    return endpoint, p256dh, auth


routes = [
    Route("/inbox/api/push", list_devices, methods=["GET"]),
    Route("/inbox/api/push", add_device, methods=["POST"]),
    Route("/inbox/api/push/{id}/remove", remove_device, methods=["POST"]),
]
