"""create_app(config) -> Starlette: routes, middleware and the lifespan wired here."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from relay.answers.automatic import AutomaticAnswers
from relay.answers.finder import Finder
from relay.channels.accept import Accept
from relay.channels.apps.channel import MessagingApp
from relay.channels.apps.providers import PROVIDERS
from relay.channels.apps.webhook import Webhook
from relay.channels.channel import Channel
from relay.channels.email import EmailChannel
from relay.channels.email.imap import Mailbox
from relay.channels.email.outbox import SEND_TIMEOUT
from relay.channels.worker import DeliveryWorker
from relay.config import Config
from relay.conversations import Conversations
from relay.conversations.away import AwayReplies
from relay.conversations.bus import Bus
from relay.conversations.files import Files
from relay.conversations.notify import NotificationPolicy
from relay.conversations.presence import Presence, keep_shared
from relay.demo import setup as demo
from relay.errors import ConfigError, PorchError
from relay.outbound import tls_context
from relay.push.channel import PushChannel
from relay.push.sender import PUSHES_AT_ONCE
from relay.push.sender import SEND_TIMEOUT as PUSH_SEND_TIMEOUT
from relay.store import Listeners, open_store
from relay.store.blobs import blobs_for
from relay.store.contacts import PUSH
from relay.tasks import background, spawn
from relay.tokens import Tokens
from relay.web import answers as answer_routes
from relay.web import api, owner, privacy
from relay.web import apps as app_routes
from relay.web import attachments as attachment_routes
from relay.web import push as push_routes
from relay.web.inbox import api as inbox_api
from relay.web.inbox.live import inbox_live
from relay.web.inbox.page import InboxPage
from relay.web.live import live
from relay.web.openapi import document
from relay.web.origins import CORSMiddleware
from relay.web.services import Limits, Services, services
from relay.web.sockets import Sockets
from relay.web.widget import Widget

log = logging.getLogger("porch")

HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


def create_app(
    config: Config, *, site_dir: Path | None = None, demo_setup: demo.Setup | None = None
) -> Starlette:
    """The relay. `site_dir`, when given, is served at /; `demo_setup` adds the demo's
    automatic first reply and its owner mailbox."""
    if not config.secret_keys:
        raise ValueError("config.secret_keys is empty")
    if config.imap_url:  # a bad mailbox URL fails the start, not a background task later
        try:
            Mailbox.parse(config.imap_url)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    tokens = Tokens(config.secret_keys)
    clock = config.clock
    bus = Bus()
    presence = Presence()
    workers: dict[str, DeliveryWorker] = {}

    def queued(channel: str) -> None:
        if worker := workers.get(channel):
            worker.wake.set()

    store = open_store(
        config, Listeners(committed=bus.publish, queued=queued, presence=presence.heard)
    )
    # Who is told of a message, on the channels that can deliver: email when SMTP is
    # configured, and the messaging apps (a site without an account on one has no chats).
    notify = NotificationPolicy(
        config.owner_notify_delay,
        config.visitor_notify_delay,
        clock,
        frozenset({*PROVIDERS, PUSH, *(["email"] if config.mail_enabled else [])}),
        config.visitor_push_delay,
        presence.online,
    )
    finder = Finder(store)
    answers = AutomaticAnswers(store, finder, presence.online)
    conversations = Conversations(
        store, notify=notify, away=AwayReplies(clock, presence), answers=answers
    )
    blobs = blobs_for(store, config.data_dir)  # PostgreSQL: shared, cached in the data dir
    files = Files(store, blobs)
    accept = Accept(store, conversations, files)
    email = EmailChannel(store, tokens, config, accept)
    # One pool for every app's API.
    http = httpx.AsyncClient(timeout=config.app_send_timeout, verify=tls_context())
    apps = {
        kind: MessagingApp(make(config), store, conversations, accept, config, clock, http)
        for kind, make in PROVIDERS.items()
    }
    channels: dict[str, Channel] = {email.name: email, **apps}
    if config.mail_enabled:
        workers[email.name] = DeliveryWorker(store, email, send_timeout=SEND_TIMEOUT)
    for kind, messaging in apps.items():
        workers[kind] = DeliveryWorker(store, messaging, send_timeout=config.app_send_timeout)
    # Push services are reached only at addresses relay/push/endpoints.py checked: no
    # proxy from the environment in between, no redirect followed.
    push_http = httpx.AsyncClient(trust_env=False, follow_redirects=False, verify=tls_context())
    workers[PUSH] = DeliveryWorker(
        store,
        PushChannel(store, config, push_http),
        send_timeout=PUSH_SEND_TIMEOUT,
        concurrency=PUSHES_AT_ONCE,
    )
    shared = Services(
        config=config,
        store=store,
        tokens=tokens,
        bus=bus,
        limits=Limits.from_config(config),
        conversations=conversations,
        accept=accept,
        channels=channels,
        apps=apps,
        workers=workers,
        clock=clock,
        presence=presence,
        blobs=blobs,
        files=files,
        answers=finder,
    )
    if store.shared:  # several relay processes: who is at the inbox crosses them too
        presence.on_change = lambda site, here: spawn(store.share_presence(site, here), "presence")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        await shared.blobs.sweep_temporary()  # uploads a crash cut off
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(store.close)
            stack.push_async_callback(shared.blobs.close)
            stack.push_async_callback(http.aclose)
            stack.push_async_callback(push_http.aclose)
            if demo_setup is not None:
                await stack.enter_async_context(demo.running(demo_setup))
            purge = privacy.purge_daily(store, shared.blobs, config.reply_tag_days)
            await stack.enter_async_context(background(purge, "purge"))
            if store.shared:
                await stack.enter_async_context(
                    background(keep_shared(shared.presence, store.share_presence), "presence")
                )
            for name, worker in workers.items():
                await stack.enter_async_context(background(worker.run(), f"deliveries-{name}"))
            for channel in channels.values():
                await stack.enter_async_context(channel.running())
            # Everything made so far lives as long as the process: keep it out of the
            # cyclic collector's full passes, whose pauses grow with the heap.
            gc.freeze()
            yield

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        *api.routes,
        *app_routes.routes,
        *attachment_routes.routes,
        *answer_routes.routes,
        *push_routes.routes,
        *owner.routes,
        *privacy.routes,
        *(route for channel in channels.values() for route in channel.routes()),
        *Webhook(store, apps).routes(),
        *Widget().routes(),
        *inbox_api.routes,
        *InboxPage().routes(),
    ]
    if demo_setup is not None:
        routes += demo_setup.mailbox.routes()
    if site_dir is not None:
        routes.append(Mount("/", StaticFiles(directory=site_dir, html=True), name="site"))

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Sockets, paths={"/v1/live": live, "/inbox/live": inbox_live}),
            Middleware(CORSMiddleware, store=store),
        ],
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
    code: str,
    message: str,
    status: int,
    headers: Mapping[str, str] | None = None,
    reason: str | None = None,
) -> JSONResponse:
    body = {"error": code, "message": message}
    if reason:  # a finer code, for clients that word the refusal themselves
        body["reason"] = reason
    return JSONResponse(body, status_code=status, headers=headers)


async def porch_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PorchError)
    headers = {"retry-after": str(exc.retry_after)} if exc.retry_after else None
    return error_response(exc.code, exc.message, exc.status, headers, reason=exc.reason)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "invalid_request")
    return error_response(code, str(exc.detail), exc.status_code, exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response("internal", "the relay failed to handle this request", 500)
