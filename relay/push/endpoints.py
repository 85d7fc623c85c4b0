"""What a push endpoint may be. A browser gives the endpoint, so anyone can give one: it
is a URL the relay will POST to, and left unchecked it would let a visitor make the
relay call its own network (server-side request forgery: a metadata service at
169.254.169.254, an admin page on localhost). Only https on public addresses passes,
unless the endpoint's origin is listed in PORCH_PUSH_ENDPOINT_ALLOW.

check_endpoint() is the syntax; resolve() (and check_resolved() at subscribe time) also
looks the host up, and the sender connects to exactly the addresses it vetted, so a
name cannot pass the check and then resolve elsewhere (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from relay.errors import UnprocessableRequest
from relay.inputs import normalize_origin

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Real endpoints are 100 to 300 characters (FCM, Mozilla autopush, Apple, WNS); the
# bound keeps a stored row and a request line small.
MAX_ENDPOINT_CHARS = 2048
# A name that takes longer to resolve is treated as not resolving (retried at send time).
RESOLVE_TIMEOUT = 5.0  # seconds
# Lookups of names a visitor or an owner gave run on threads of their own: a name on a
# DNS server that never answers ties up one of these until the system resolver gives
# up, never the threads the relay's file work runs on.
RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="push-dns")
REASON = "push_endpoint"  # the error's `reason`, for clients to pick their own wording


class EndpointUnresolved(UnprocessableRequest):
    """The endpoint's host did not resolve: refused when subscribing, retried when sending."""


def check_endpoint(url: str, allow: frozenset[str]) -> str:
    """`url` if it may be a push endpoint by its syntax: an absolute https URL with a
    host, no user or password, no fragment, at most MAX_ENDPOINT_CHARS; http also for
    an origin in `allow` (normalised origins, see relay.config.Config.push_allow)."""
    _parse(url, allow)
    return url


async def check_resolved(url: str, allow: frozenset[str]) -> None:
    """check_endpoint(), and every address the host resolves to is public (or the
    origin is allowed). Raises UnprocessableRequest (EndpointUnresolved if the name
    did not resolve)."""
    await resolve(url, allow)


async def resolve(url: str, allow: frozenset[str]) -> list[IPAddress]:
    """The addresses to connect to for `url`, each vetted as check_resolved() says."""
    parts = _parse(url, allow)
    host = parts.hostname or ""
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = await _look_up(host, parts.port or _default_port(parts.scheme))
    if _origin(parts) in allow:
        return addresses
    for address in addresses:
        kind = non_public_kind(address)
        if kind:
            shown = host if str(address) == host else f"{host} ({address})"
            raise UnprocessableRequest(
                f"push endpoints must be on a public address; {shown} is {kind}",
                reason=REASON,
            )
    return addresses


def non_public_kind(address: IPAddress) -> str | None:
    """What kind of address this is, if not one on the public internet; else None. An
    IPv4 address inside IPv6 (::ffff:10.0.0.1, 6to4) is judged as that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return non_public_kind(embedded)
    for kind, test in (
        ("a loopback address", address.is_loopback),
        ("the unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
        ("a site-local address", getattr(address, "is_site_local", False)),  # fec0::/10
        ("not globally reachable", not address.is_global),
    ):
        if test:
            return kind
    return None


async def _look_up(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        found = await asyncio.wait_for(
            loop.run_in_executor(RESOLVER, _getaddrinfo, host, port), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError) as error:
        raise EndpointUnresolved(
            f"the push endpoint's host {host!r} does not resolve ({error or 'timed out'})",
            reason=REASON,
        ) from None
    # getaddrinfo's order (RFC 6724: reachable families first) is the order to try.
    addresses = [ipaddress.ip_address(str(info[4][0])) for info in found]
    if not addresses:
        raise EndpointUnresolved(f"the push endpoint's host {host!r} has no address", reason=REASON)
    return list(dict.fromkeys(addresses))


def _getaddrinfo(host: str, port: int) -> list[Any]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _parse(url: str, allow: frozenset[str]) -> SplitResult:
    def refuse(problem: str) -> UnprocessableRequest:
        return UnprocessableRequest(f"not a push endpoint: {problem}", reason=REASON)

    if not isinstance(url, str) or not url:
        raise refuse("expected an https URL")
    if len(url) > MAX_ENDPOINT_CHARS:
        raise refuse(f"at most {MAX_ENDPOINT_CHARS} characters, got {len(url)}")
    shown = url if len(url) <= 80 else url[:80] + "…"
    # It goes on a request line as it is: printable ASCII only (no spaces, no CR/LF).
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise refuse(f"spaces, control or non-ASCII characters in {shown!r}")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise refuse(f"a bad port in {shown!r}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise refuse(f"expected an absolute https URL, got {shown!r}")
    if "@" in parts.netloc:
        raise refuse("a user name or password in the URL")
    if parts.fragment or url.endswith("#"):
        raise refuse("a #fragment in the URL")
    if parts.scheme == "http" and _origin(parts) not in allow:
        raise refuse(f"expected https, got {shown!r}")
    return parts


def _origin(parts: SplitResult) -> str:
    """As Config.push_allow spells origins (relay.inputs.normalize_origin)."""
    return normalize_origin(f"{parts.scheme}://{parts.netloc}")


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


async def pinned(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    addresses: list[IPAddress],
    headers: dict[str, str],
    body: bytes | None,
    limit: int,
) -> tuple[int, httpx.Headers, bytes]:
    """`method` `url` at the first of `addresses` (as resolve() vetted them) that takes a
    connection, naming the URL's host (Host header, TLS server name and certificate
    check) as if it had resolved it itself; no redirect followed. The status, headers
    and at most `limit` bytes of the answer. The caller bounds the time it takes."""
    parts = urlsplit(url)
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    for index, address in enumerate(addresses):
        host = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{host.replace('%', '%25')}:{parts.port}" if parts.port else host
        try:
            async with client.stream(
                method,
                urlunsplit(parts._replace(netloc=netloc)),
                content=body,
                headers={**headers, "Host": parts.netloc},
                extensions=extensions,
                follow_redirects=False,
            ) as response:
                answer = b""
                async for chunk in response.aiter_raw():
                    answer += chunk
                    if len(answer) >= limit:
                        break
                return response.status_code, response.headers, answer[:limit]
        except httpx.ConnectError:
            if index == len(addresses) - 1:
                raise
    raise AssertionError("resolve() returns at least one address")
