"""Messaging apps as channels: Telegram, WhatsApp, Messenger.

provider.py says what an app is to Porch; one module per app implements it
(telegram.py, whatsapp.py, messenger.py; meta.py is what the two Meta apps share).
channel.py is each app as a channel (inbound and outbound, the same for all);
webhook.py the one route their webhooks arrive at; accounts.py connects a site's
account (`porch channel add`, the inbox). Adding an app is adding its module, listing
it in PROVIDERS (providers.py) and its options below.
"""

from __future__ import annotations

# What connecting each app's account takes (`porch channel add SITE KIND --option …`).
OPTIONS: dict[str, tuple[str, ...]] = {
    "telegram": ("bot_token",),
    "whatsapp": ("phone_number_id", "access_token", "app_secret", "verify_token"),
    "messenger": ("page_id", "page_token", "app_secret", "verify_token"),
}
# Those options that are secrets: never shown again once given, and readable by `porch
# channel add` from PORCH_CHANNEL_<NAME> (so they stay out of the process list).
SECRETS = frozenset({"bot_token", "access_token", "app_secret", "verify_token", "page_token"})
