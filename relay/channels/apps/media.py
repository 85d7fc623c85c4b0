"""A customer's photo or file, fetched from a messaging app into a scratch file for
Accept (relay/channels/accept.py), the same way for every app: http(s) only, where the
app said (no redirect: an address the provider did not name is never fetched), streamed
and counted against a cap, so a file past it stops there and costs a chunk of memory;
errors worded here, never httpx's own, which repeat the URL (Telegram's carries the
bot token)."""

from __future__ import annotations

from pathlib import Path

import httpx

from relay.channels.apps.provider import MB, Download, MediaTooLarge, ProviderError

# Whatever a site allows, no more than an email could carry on (relay/sites/checks.py
# MAX_FILE_MB): a bigger file stays in the app, and the thread says so.
MAX_DOWNLOAD = 25 * MB
CHUNK = 64 * 1024  # as uploads are written (relay/attachments/uploads.py)
SCHEMES = frozenset({"http", "https"})


def cap(site_limit: int, app_limit: int) -> int:
    """The most bytes fetched for one file: the site's, the app's and the relay's limit."""
    return min(site_limit, app_limit, MAX_DOWNLOAD)


async def download(
    http: httpx.AsyncClient, source: Download, scratch: Path, most: int, label: str
) -> int:
    """`source`'s bytes written to `scratch` (the caller removes it if this raises); how
    many. MediaTooLarge past `most` bytes, ProviderError when they cannot be had."""
    if source.size is not None and source.size > most:
        raise MediaTooLarge()
    try:
        url = httpx.URL(source.url)
    except httpx.InvalidURL:
        raise ProviderError(
            f"{label} gave a download address that is not a URL", retry=False
        ) from None
    if url.scheme not in SCHEMES or not url.host:
        raise ProviderError(f"{label} gave a download address that is not http(s)", retry=False)
    written = 0
    try:
        async with http.stream("GET", url, headers=source.headers) as response:
            if response.status_code != httpx.codes.OK:
                raise ProviderError(
                    f"{label} answered {response.status_code} to the download", retry=False
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > most:
                raise MediaTooLarge()
            with scratch.open("wb") as out:
                async for chunk in response.aiter_bytes(CHUNK):  # decoded: a gzip bomb stops too
                    written += len(chunk)
                    if written > most:
                        raise MediaTooLarge()
                    out.write(chunk)
    except httpx.TimeoutException:
        raise ProviderError(f"{label}'s download did not answer in time", retry=True) from None
    except httpx.HTTPError as error:
        raise ProviderError(
            f"{label}'s download failed ({type(error).__name__})", retry=True
        ) from None
    return written
