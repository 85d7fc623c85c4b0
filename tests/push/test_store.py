"""Where devices are kept (relay/store/push.py), on both engines: one row per endpoint,
found by visitor and by the site's owners, removed one by one, by endpoint, with the
owner's sessions and with the visitor's erasure."""

from __future__ import annotations

import dataclasses

import pytest

from relay.models import PushSubscription
from relay.store import Store
from tests.pg import BOTH_ENGINES, connect
from tests.support import ALPHA, BETA, talk

pytestmark = BOTH_ENGINES

OWNER = ALPHA.owner_emails[0]  # owner@alpha.example
KEYS = {"p256dh": "BPublicKeyOfTheDevice", "auth": "AuthSecret16bytes"}


def device(number: int, **holder: str | None) -> PushSubscription:
    fields = {"site_id": "alpha", **holder}
    return PushSubscription(id="", endpoint=f"https://push.example/send/{number}", **KEYS, **fields)


async def visitor(store: Store, site: str = "alpha") -> str:
    started = await talk(store).start(site, body="hi", client_id=None, name=None, page=None)
    return started.visitor


async def test_a_device_is_kept_and_found_by_its_visitor(store: Store) -> None:
    someone = await visitor(store)
    saved = await store.add_push_subscription(
        dataclasses.replace(device(1, visitor_id=someone), user_agent="Firefox on Android")
    )
    assert saved.id.startswith("push_") and saved.created_at
    assert (saved.endpoint, saved.p256dh, saved.auth) == (
        "https://push.example/send/1",
        KEYS["p256dh"],
        KEYS["auth"],
    )
    assert await store.push_subscription(saved.id) == saved
    assert await store.visitor_push_subscriptions(someone) == [saved]
    assert await store.visitor_push_subscriptions("v_nobody") == []
    assert await store.owner_push_subscriptions("alpha") == []  # a visitor's, not an owner's
    assert saved.to_json() == {
        "id": saved.id,
        "site": "alpha",
        "user_agent": "Firefox on Android",
        "created_at": saved.created_at,
    }


async def test_the_same_device_again_replaces_keys_and_holder(store: Store) -> None:
    first, second = await visitor(store), await visitor(store)
    saved = await store.add_push_subscription(device(1, visitor_id=first))
    # the same visitor, new keys: the same subscription, its id and age kept
    renewed = await store.add_push_subscription(
        dataclasses.replace(device(1, visitor_id=first), p256dh="BNewKey", auth="NewAuth")
    )
    assert (renewed.id, renewed.created_at) == (saved.id, saved.created_at)
    assert (renewed.p256dh, renewed.auth) == ("BNewKey", "NewAuth")
    # the browser passes to another visitor: theirs now, under a new id
    taken = await store.add_push_subscription(device(1, visitor_id=second))
    assert taken.id != saved.id and taken.visitor_id == second
    assert await store.visitor_push_subscriptions(first) == []
    assert await store.visitor_push_subscriptions(second) == [taken]
    with connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM push_subscriptions").fetchone()[0] == 1


async def test_an_owners_devices_are_told_of_every_site_they_answer(store: Store) -> None:
    both = dataclasses.replace(BETA, owner_emails=(OWNER, "owner@beta.example"))
    await store.add_site(both)
    phone = await store.add_push_subscription(device(1, owner_email="Owner@Alpha.example"))
    laptop = await store.add_push_subscription(device(2, owner_email="owner@beta.example"))
    assert phone.owner_email == OWNER  # kept lowercased
    assert await store.owner_push_subscriptions("alpha") == [phone]
    # Both made within the same millisecond: "oldest first" cannot order them.
    both_devices = await store.owner_push_subscriptions("beta")
    assert sorted(both_devices, key=lambda d: d.endpoint) == [phone, laptop]
    assert await store.owner_push_subscriptions("beta", "OWNER@beta.example") == [laptop]
    assert await store.owner_push_subscriptions("alpha", "owner@beta.example") == []
    # an address taken off a site's owners is no longer told of it
    await store.add_site(
        dataclasses.replace(both, owner_emails=("owner@beta.example",)), replace=True
    )
    assert await store.owner_push_subscriptions("beta") == [laptop]


async def test_devices_are_removed_by_id_by_endpoint_and_with_sessions(store: Store) -> None:
    sessions = [await store.start_session(OWNER, f"jti-{n}", "Firefox") for n in range(2)]
    one, two, three = [
        await store.add_push_subscription(device(n, owner_email=OWNER, session_id=session))
        for n, session in ((1, sessions[0].id), (2, sessions[0].id), (3, sessions[1].id))
    ]
    assert await store.remove_push_subscription(one.id) is True
    assert await store.remove_push_subscription(one.id) is False
    assert await store.remove_push_endpoint(three.endpoint) is True
    assert await store.remove_push_endpoint(three.endpoint) is False
    assert await store.owner_push_subscriptions("alpha") == [two]
    # "sign out everywhere": the devices of the revoked sessions go
    revoked = await store.revoke_sessions(OWNER)
    assert await store.remove_session_push_subscriptions(revoked) == 1
    assert await store.owner_push_subscriptions("alpha") == []
    assert await store.remove_session_push_subscriptions([]) == 0


async def test_erasing_a_visitor_erases_their_devices(store: Store) -> None:
    erased, kept = await visitor(store), await visitor(store)
    await store.add_push_subscription(device(1, visitor_id=erased))
    await store.add_push_subscription(device(2, visitor_id=erased))
    other = await store.add_push_subscription(device(3, visitor_id=kept))
    await store.delete_visitor(erased)
    assert await store.visitor_push_subscriptions(erased) == []
    assert await store.visitor_push_subscriptions(kept) == [other]
    with connect(store) as db:
        endpoints = [row[0] for row in db.execute("SELECT endpoint FROM push_subscriptions")]
    assert endpoints == [other.endpoint]


async def test_a_subscription_is_a_visitors_or_an_owners() -> None:
    with pytest.raises(ValueError, match="visitor's or an owner's"):
        device(1)
    with pytest.raises(ValueError, match="visitor's or an owner's"):
        device(1, visitor_id="v_1", owner_email=OWNER)


async def test_an_installation_secret_is_made_once(store: Store) -> None:
    made: list[str] = []

    def make() -> str:
        made.append(f"secret-{len(made)}")
        return made[-1]

    assert await store.installation_secret("test", make) == "secret-0"
    assert await store.installation_secret("test", make) == "secret-0"
    assert made == ["secret-0"]
