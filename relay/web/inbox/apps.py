"""What the inbox shows of messaging apps: a thread's chats (where the customer writes
from, and whether the app's reply window is still open), what became of the replies
sent to the customer (queued, sent, delivered, read, failed and why), and a site's
connected accounts. relay/web/inbox/api.py serves them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from relay.channels.apps.accounts import describe
from relay.channels.apps.providers import PROVIDERS
from relay.clock import parse_instant
from relay.store.chats import AppChannel, Chat
from relay.web.services import Services


def window_closes_at(s: Services, chat: Chat, channel: AppChannel) -> str | None:
    """When the app stops taking the owner's free-form replies to this chat (a person's:
    Messenger's 7 days, not its 24 hours); None: it never does."""
    provider = PROVIDERS[channel.kind](s.config)
    window = provider.human_window or provider.window
    if window is None:
        return None
    closes = parse_instant(chat.last_inbound_at) + timedelta(seconds=window)
    return closes.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def window_open(s: Services, chat: Chat, channel: AppChannel) -> bool:
    closes = window_closes_at(s, chat, channel)
    return closes is None or s.clock.now() < parse_instant(closes)


async def thread_apps(s: Services, thread: str) -> dict[str, Any]:
    """The thread's chats, the one last written from first, and its deliveries."""
    chats = [
        {
            "id": channel.id,
            "kind": channel.kind,
            "handle": channel.handle,
            "name": chat.name,
            "last_written_at": chat.last_inbound_at,
            "window_closes_at": window_closes_at(s, chat, channel),
            "window_open": window_open(s, chat, channel),
            "template": channel.template,
            "templates": PROVIDERS[channel.kind](s.config).templates,
        }
        for chat, channel in await s.store.thread_chats(thread)
    ]
    return {"channels": chats, "deliveries": await s.store.thread_deliveries(thread)}


async def site_apps(s: Services, site: str) -> list[dict[str, Any]]:
    return [describe(s.config, channel) for channel in await s.store.app_channels(site)]


async def chat_of(s: Services, thread: str, channel_id: Any) -> tuple[Chat, AppChannel] | None:
    for chat, channel in await s.store.thread_chats(thread):
        if channel.id == channel_id:
            return chat, channel
    return None


def no_template(s: Services, chat: Chat, channel: AppChannel) -> str:
    """Why no template can go to this chat: what the owner can do instead."""
    provider = PROVIDERS[channel.kind](s.config)
    if provider.templates:
        return (
            "this channel has no approved template: set one with"
            f" `porch channel add {channel.site} {channel.kind} … --template NAME`"
        )
    if window_open(s, chat, channel):
        return f"{provider.label} has no templates, and this chat takes replies now: reply as usual"
    return (
        f"{provider.label} has no templates, and takes no reply this long after the customer's"
        " last message: reply once they write again"
    )
