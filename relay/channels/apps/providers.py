"""Each app's Provider by kind. Kept out of the package's __init__ so that reading
OPTIONS (`porch --help`, `porch channel add`) loads no app's code."""

from __future__ import annotations

from collections.abc import Callable

from relay.channels.apps.messenger import Messenger
from relay.channels.apps.provider import Provider
from relay.channels.apps.telegram import Telegram
from relay.channels.apps.whatsapp import WhatsApp
from relay.config import Config

PROVIDERS: dict[str, Callable[[Config], Provider]] = {
    "telegram": Telegram,
    "whatsapp": WhatsApp,
    "messenger": Messenger,
}
