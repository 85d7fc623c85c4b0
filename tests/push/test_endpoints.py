"""The SSRF guard: only https endpoints on public addresses, unless allowed."""

from __future__ import annotations

import ipaddress

import pytest

from relay.errors import UnprocessableRequest
from relay.inputs import normalize_origin
from relay.push.endpoints import (
    MAX_ENDPOINT_CHARS,
    EndpointUnresolved,
    check_endpoint,
    check_resolved,
    non_public_kind,
    resolve,
)

PUBLIC = "https://8.8.8.8/push/abc"  # a literal public address: no DNS needed
UNPROCESSABLE = 422


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://fcm.googleapis.com/fcm/send/x", "expected https"),
        ("ftp://push.example/x", "expected an absolute https URL"),
        ("/push/x", "expected an absolute https URL"),
        ("https:///x", "expected an absolute https URL"),
        ("https://user:pw@push.example/x", "user name or password"),
        ("https://user@push.example/x", "user name or password"),
        ("https://push.example/x#frag", "#fragment"),
        ("https://push.example:port/x", "bad port"),
        ("https://push.example/a b", "spaces"),
        ("https://push.example/x\r\nHost: evil", "control"),
        ("https://push.example/" + "a" * MAX_ENDPOINT_CHARS, f"at most {MAX_ENDPOINT_CHARS}"),
        ("", "expected an https URL"),
    ],
)
async def test_bad_syntax_is_refused_saying_why(url: str, said: str) -> None:
    with pytest.raises(UnprocessableRequest) as refused:
        check_endpoint(url, frozenset())
    assert refused.value.status == UNPROCESSABLE and said in refused.value.message
    with pytest.raises(UnprocessableRequest):  # and again at send time
        await check_resolved(url, frozenset())


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://127.0.0.1/x", "loopback"),
        ("https://127.1.2.3:8443/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.1/x", "private"),
        ("https://192.168.1.1/x", "private"),
        ("https://172.16.0.1/x", "private"),
        ("https://[fc00::1]/x", "private"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://[::ffff:127.0.0.1]/x", "loopback"),  # IPv4-mapped: judged as IPv4
        ("https://[::ffff:10.0.0.1]/x", "private"),
        ("https://0.0.0.0/x", "unspecified"),
        ("https://100.64.0.1/x", "not globally reachable"),  # carrier-grade NAT
        ("https://224.0.0.1/x", "multicast"),
        ("https://localhost/x", "loopback"),  # a name: judged by what it resolves to
        ("https://2130706433/x", "loopback"),  # 127.0.0.1 as one number, resolved
    ],
)
async def test_non_public_addresses_are_refused(url: str, kind: str) -> None:
    check_endpoint(url, frozenset())  # the syntax is fine: the address is not
    with pytest.raises(UnprocessableRequest) as refused:
        await check_resolved(url, frozenset())
    assert refused.value.status == UNPROCESSABLE
    assert "public address" in refused.value.message and kind in refused.value.message


async def test_a_public_address_passes() -> None:
    assert check_endpoint(PUBLIC, frozenset()) == PUBLIC
    await check_resolved(PUBLIC, frozenset())
    assert await resolve("https://[2001:4860:4860::8888]/x", frozenset()) == [
        ipaddress.ip_address("2001:4860:4860::8888")
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8125/push/abc",
        "https://127.0.0.1:8125/push/abc",
        "HTTP://127.0.0.1:8125/push/abc?x=1",
    ],
)
async def test_an_allowed_origin_passes_even_on_loopback_or_http(url: str) -> None:
    allow = frozenset({"http://127.0.0.1:8125", "https://127.0.0.1:8125"})
    assert check_endpoint(url, allow) == url
    await check_resolved(url, allow)


async def test_allowed_origins_are_exact() -> None:
    allow = frozenset({"http://127.0.0.1:8125"})
    for url in ("http://127.0.0.1:8126/x", "http://127.0.0.2:8125/x", "http://localhost:8125/x"):
        with pytest.raises(UnprocessableRequest):
            await check_resolved(url, allow)
    # default ports are normalised: https://push.example:443 is https://push.example
    check_endpoint("http://push.internal:80/x", frozenset({"http://push.internal"}))


async def test_a_name_that_does_not_resolve_is_refused_as_unresolved() -> None:
    with pytest.raises(EndpointUnresolved) as refused:
        await check_resolved("https://no-such-host.invalid/x", frozenset())
    assert refused.value.status == UNPROCESSABLE and "does not resolve" in refused.value.message


def test_public_addresses_are_told_apart() -> None:
    for public in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"):
        assert non_public_kind(ipaddress.ip_address(public)) is None
    for other in ("2002:7f00:1::", "64:ff9b::7f00:1", "2001:db8::1", "255.255.255.255"):
        assert non_public_kind(ipaddress.ip_address(other)) is not None


async def test_site_local_ipv6_is_not_public() -> None:
    # fec0::/10 (site-local, deprecated by RFC 3879) is still routed on some networks.
    with pytest.raises(UnprocessableRequest):
        await resolve("https://[fec0::1]/push/x", frozenset())


async def test_an_allowed_ipv6_origin_admits_no_other_address() -> None:
    # Without its brackets, http://[2001:db8::1]:8080 would read as the address
    # 2001:db8::1:8080 on port 80.
    allow = frozenset({normalize_origin("http://[2001:db8::1]:8080")})
    assert allow == {"http://[2001:db8::1]:8080"}
    with pytest.raises(UnprocessableRequest):
        await resolve("http://[2001:db8::1:8080]/x", allow)
