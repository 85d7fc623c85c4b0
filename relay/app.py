"""create_app(config) -> Starlette: routes, middleware and the lifespan wired here."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from relay import api, demo, owner
from relay.bus import Bus
from relay.config import Config
from relay.errors import PorchError
from relay.live import live
from relay.openapi import document
from relay.origins import CORSMiddleware
from relay.services import Limits, Services, services
from relay.store import Store
from relay.tokens import Tokens
from relay.widget import Widget

log = logging.getLogger("porch")

HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


def create_app(
    config: Config, *, site_dir: Path | None = None, demo_flags: str | None = None
) -> Starlette:
    """The relay. `site_dir`, when given, is served at /; `demo_flags` (the CLI flags that
    reach this relay) turn on the demo's automatic first reply."""
    if not config.secret_keys:
        raise ValueError("config.secret_keys is empty")
    store = Store(config.database_path, synchronous=config.sqlite_synchronous)
    bus = Bus()
    store.on_commit = bus.publish
    shared = Services(
        config=config,
        store=store,
        tokens=Tokens(config.secret_keys),
        bus=bus,
        limits=Limits.from_config(config),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        # Everything made so far lives as long as the process: keep it out of the
        # cyclic collector's full passes, whose pauses grow with the heap.
        gc.freeze()
        try:
            if demo_flags is None:
                yield
            else:
                async with demo.running(store, bus, demo_flags):
                    yield
        finally:
            await store.close()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        *api.routes,
        *owner.routes,
        WebSocketRoute("/v1/live", live),
        *Widget().routes(),
    ]
    if site_dir is not None:
        routes.append(Mount("/", StaticFiles(directory=site_dir, html=True), name="site"))

    app = Starlette(
        routes=routes,
        middleware=[Middleware(CORSMiddleware, store=store)],
        exception_handlers={
            PorchError: porch_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
        lifespan=lifespan,
    )
    app.state.services = shared
    return app


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await services(request).store.ping()
    except Exception as error:  # any failure means "not ready", and says why
        return JSONResponse({"status": "unavailable", "message": str(error)}, status_code=503)
    return JSONResponse({"status": "ready"})


async def openapi(request: Request) -> Response:
    return JSONResponse(document())


def error_response(
    code: str, message: str, status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


async def porch_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PorchError)
    headers = {"retry-after": str(exc.retry_after)} if exc.retry_after else None
    return error_response(exc.code, exc.message, exc.status, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "invalid_request")
    return error_response(code, str(exc.detail), exc.status_code, exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response("internal", "the relay failed to handle this request", 500)
