"""Using Web Push to make the relay call what it must not, or to reach someone else's
devices: endpoints on the relay's own network in every spelling (at subscribe time,
for visitors and owners), a site origin an owner points at that network for the
/porch-sw.js check, and one visitor removing or taking over another's device."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from tests.fakes.push_service import FakePushService
from tests.pg import BOTH_ENGINES
from tests.push.test_visitor_api import FakeSite, ask, rows, subscription, visitor
from tests.push.test_visitor_api import fake_site as a_fake_site
from tests.support import RunningRelay, bearer

pytestmark = BOTH_ENGINES
fake_site = a_fake_site  # the push tests' fixture: a site on loopback


@pytest.fixture
def push_service() -> Iterator[FakePushService]:
    with FakePushService() as service:
        yield service


# Every way of naming the relay's own network that a URL parser may accept.
INTERNAL = [
    "https://127.0.0.1/push/x",
    "https://2130706433/push/x",  # 127.0.0.1 as one number
    "https://127.1/push/x",
    "https://localhost/push/x",
    "https://[::1]/push/x",
    "https://[::ffff:127.0.0.1]/push/x",
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.1/push/x",
    "https://192.168.1.1/push/x",
    "https://[fc00::1]/push/x",
    "https://[fec0::1]/push/x",
    "http://8.8.8.8/push/x",  # public, but not https
    "https://user:pw@8.8.8.8/push/x",
]


@pytest.mark.parametrize("endpoint", INTERNAL)
async def test_a_visitor_cannot_point_the_relay_at_its_own_network(
    relay: RunningRelay, push_service: FakePushService, endpoint: str
) -> None:
    device = push_service.new_subscription()
    async with relay.client() as client:
        _, auth = await visitor(client)
        answer = await client.post(
            "/v1/thread/push", json=subscription(device, endpoint=endpoint), headers=auth
        )
    assert answer.status_code == 422, answer.text
    assert rows(relay) == []


async def test_an_owners_origin_on_the_relays_network_is_never_fetched(
    make_relay: Callable[..., RunningRelay], fake_site: FakeSite
) -> None:
    relay = make_relay()  # nothing allowed: the fake site is on loopback

    async def register() -> None:
        alpha = await relay.services.store.get_site("alpha")
        site = replace(alpha, origins=(*alpha.origins, fake_site.origin))
        await relay.services.store.add_site(site, replace=True)

    await relay.call(register())
    fake_site.answer = "js"
    async with relay.client() as client:
        answer = await ask(client, fake_site.origin)
    assert answer.json() == {"served": False}
    assert fake_site.asked == []


async def test_a_visitor_cannot_remove_or_take_another_visitors_device(
    make_relay: Callable[..., RunningRelay], push_service: FakePushService
) -> None:
    relay = make_relay(push_endpoint_allow=(push_service.origin,))
    device = push_service.new_subscription()
    async with relay.client() as client:
        owner_of_it, auth = await visitor(client)
        kept = await client.post("/v1/thread/push", json=subscription(device), headers=auth)
        assert kept.status_code == 201
        _, other = await visitor(client)
        gone = await client.request(
            "DELETE", "/v1/thread/push", json={"endpoint": device.endpoint}, headers=other
        )
        assert gone.status_code == 204  # the same answer, and nothing removed
        everything = await client.request("DELETE", "/v1/thread/push", headers=other)
        assert everything.status_code == 204
        forged = await client.post(
            "/v1/thread/push", json=subscription(device), headers=bearer("forged")
        )
        assert forged.status_code == 401
    [row] = rows(relay)
    assert row["visitor_id"] == owner_of_it and row["endpoint"] == device.endpoint
