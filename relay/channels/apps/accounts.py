"""A site's accounts on messaging apps: connect one (check its credentials with the app,
register our webhook where the app lets us), list them, remove one. Used by
`porch channel …` and the inbox settings. Secrets are kept by the store and never
shown again: what these return is the public part and the webhook URL."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx

from relay.channels.apps import OPTIONS
from relay.channels.apps.provider import ProviderError
from relay.channels.apps.providers import PROVIDERS
from relay.config import Config
from relay.errors import Conflict, NotFound, UnprocessableRequest
from relay.store import Store
from relay.store.chats import AppChannel
from relay.store.rows import new_id

MAX_OPTION_CHARS = 1000
MAX_TEMPLATE_CHARS = 512


def webhook_url(config: Config, channel_id: str) -> str:
    return f"{config.base_url}/v1/channels/{channel_id}/webhook"


def describe(config: Config, channel: AppChannel) -> dict[str, Any]:
    """What may be shown of a channel: never its secrets."""
    return {
        **channel.public(),
        "webhook_url": webhook_url(config, channel.id),
        "template": channel.template,
        "created_at": channel.created_at,
    }


async def add_channel(
    store: Store,
    config: Config,
    site: str,
    kind: str,
    options: dict[str, str],
    template: str | None = None,
) -> AppChannel:
    """Connect an account to `site`. UnprocessableRequest for a missing option or one
    the app refuses; Conflict when the account answers for a site already."""
    if kind not in PROVIDERS:
        raise UnprocessableRequest(f"unknown channel kind {kind!r}: {', '.join(PROVIDERS)}")
    missing = [name for name in OPTIONS[kind] if not str(options.get(name) or "").strip()]
    if missing:
        raise UnprocessableRequest(f"{kind} needs {', '.join(missing)}")
    cleaned = {name: str(options[name]).strip() for name in OPTIONS[kind]}
    if any(len(value) > MAX_OPTION_CHARS or not value.isprintable() for value in cleaned.values()):
        raise UnprocessableRequest("each option is one line of printable text")
    provider = PROVIDERS[kind](config)
    if template is not None and not provider.templates:
        raise UnprocessableRequest(f"{provider.label} has no approved templates to name")
    if template is not None and len(template) > MAX_TEMPLATE_CHARS:
        raise UnprocessableRequest(f"a template's name is at most {MAX_TEMPLATE_CHARS} characters")
    if await store.get_site(site) is None:
        raise NotFound(f"no site {site!r}")
    taken = await store.app_channel_of_account(kind, provider.account_of(cleaned))
    if taken is not None:  # checked before the app is told of a new webhook
        raise Conflict(
            f"this {provider.label} account already answers for site {taken.site!r}:"
            " remove it there first"
        )
    channel_id = new_id("ch")
    async with httpx.AsyncClient(timeout=config.app_send_timeout) as http:
        try:
            account = await provider.connect(http, cleaned, webhook_url(config, channel_id))
        except ProviderError as error:
            raise UnprocessableRequest(f"{provider.label} refused: {error.reason}") from None
    channel = AppChannel(
        channel_id, site, kind, account.account, account.handle, account.secrets, template
    )
    return await store.add_app_channel(channel)


async def remove_channel(store: Store, config: Config, site: str, channel_id: str) -> bool:
    """Forget the channel (its conversations stay) and undo its webhook at the app,
    as far as the app still lets us."""
    channel = await store.app_channel(channel_id)
    if channel is None or channel.site != site:
        return False
    removed = await store.remove_app_channel(site, channel_id)
    async with httpx.AsyncClient(timeout=config.app_send_timeout) as http:
        # A revoked token cannot undo anything: the app forgets us on its own then.
        with contextlib.suppress(ProviderError):
            await PROVIDERS[channel.kind](config).disconnect(http, channel)
    return removed
