"""The OpenAPI document covers every HTTP route the relay serves."""

from __future__ import annotations

from starlette.routing import Route

from relay.app import create_app
from relay.web.openapi import document
from tests.support import RunningRelay, relay_config


def test_every_route_is_documented(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(relay_config(tmp_path))
    paths = document()["paths"]
    for route in app.routes:
        if isinstance(route, Route) and route.path != "/v1/openapi.json":
            assert route.path in paths, f"{route.path} is missing from relay/openapi.py"
            for method in route.methods or ():
                if method != "HEAD":
                    assert method.lower() in paths[route.path], f"{method} {route.path}"


async def test_served_at_v1(relay: RunningRelay) -> None:
    async with relay.client(origin=None) as client:
        response = await client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.1")
