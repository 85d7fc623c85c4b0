"""What WhatsApp and Messenger share: Meta's webhooks (a GET handshake with a verify
token; every POST signed with the app secret in X-Hub-Signature-256) and the Graph API's
errors. Tokens go in the Authorization header, never in a URL."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, BinaryIO

import httpx
from starlette.datastructures import Headers, QueryParams

from relay.channels.apps.provider import DAY, MB, ProviderError, no_templates
from relay.config import Config
from relay.store.chats import AppChannel

# Graph error codes that say: try again later (rate limits, temporary trouble).
RETRY_CODES = frozenset({1, 2, 4, 17, 32, 613, 80007, 130429, 131000, 131016, 131048, 131056})
# ... and that say the customer-service window is closed (WhatsApp's code; Messenger's
# error_subcode, under code 10).
WINDOW_CODES = frozenset({131047, 2018278})
TOKEN_CODES = frozenset({102, 190})
# Messenger saves attachments "up to 25MB in size"; WhatsApp's documents may be larger,
# but the relay keeps no file over 25 MB (relay/channels/apps/media.py).
DOWNLOAD_LIMIT = 25 * MB

Upload = dict[str, tuple[str, BinaryIO, str]]  # a multipart field: (file name, content, type)


class MetaApp:
    """WhatsApp's and Messenger's common ground: Meta's webhook checks, the Graph API's
    base URL, and the 24-hour customer-service window."""

    window: float | None = DAY
    human_window: float | None = None
    templates = False
    download_limit = DOWNLOAD_LIMIT

    def __init__(self, config: Config) -> None:
        self.base = config.meta_api_url.rstrip("/")

    def verify(self, channel: AppChannel, headers: Headers, raw: bytes) -> bool:
        return verify_signature(channel, headers, raw)

    def handshake(self, channel: AppChannel, query: QueryParams) -> str | None:
        return handshake(channel, query)

    async def send_template(
        self, http: httpx.AsyncClient, channel: AppChannel, address: str, language: str
    ) -> str | None:
        raise no_templates(channel.kind.capitalize())


def verify_signature(channel: AppChannel, headers: Headers, raw: bytes) -> bool:
    given = headers.get("x-hub-signature-256", "")
    expected = (
        "sha256="
        + hmac.new(channel.secrets["app_secret"].encode(), raw, hashlib.sha256).hexdigest()
    )
    return hmac.compare_digest(given.encode(), expected.encode())


def handshake(channel: AppChannel, query: QueryParams) -> str | None:
    token = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
        token.encode(), channel.secrets["verify_token"].encode()
    ):
        return None
    return query.get("hub.challenge", "")


async def graph(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    token: str,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    files: Upload | None = None,
) -> dict[str, Any]:
    """One Graph API call, JSON or, with `files`, multipart (`body` its text fields);
    ProviderError with Meta's own words when it fails."""
    sent: dict[str, Any] = {"data": body, "files": files} if files else {"json": body}
    try:
        response = await http.request(
            method, url, params=params, headers={"authorization": f"Bearer {token}"}, **sent
        )
    except httpx.TimeoutException:
        raise ProviderError("Meta's Graph API did not answer in time", retry=True) from None
    except httpx.HTTPError as error:
        raise ProviderError(
            f"Meta's Graph API is unreachable ({type(error).__name__})", retry=True
        ) from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.is_success and isinstance(data, dict):
        return data
    found = data.get("error", {}) if isinstance(data, dict) else {}
    code = found.get("code") if isinstance(found, dict) else None
    subcode = found.get("error_subcode") if isinstance(found, dict) else None
    message = found.get("message") if isinstance(found, dict) else None
    reason = f"Meta answered {response.status_code}" + (f": {message}" if message else "")
    if code in TOKEN_CODES or response.status_code == 401:
        raise ProviderError(
            f"the access token was refused (revoked or expired?): {reason}", retry=False
        )
    if code in WINDOW_CODES or subcode in WINDOW_CODES:
        raise ProviderError(
            f"outside the reply window since the customer's last message: {reason}",
            retry=False,
            window_closed=True,
        )
    retry = response.status_code >= 500 or response.status_code == 429 or code in RETRY_CODES
    raise ProviderError(reason, retry=retry)
