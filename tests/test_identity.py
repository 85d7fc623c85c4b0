"""Verified identity: a signed-in user has one thread on every device; a forged hash
grants nothing; an anonymous thread started before login is merged, nothing doubled."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import subprocess

import httpx

from tests.pg import BOTH_ENGINES
from tests.support import RunningRelay, bearer, porch_command, relay_env, start_thread

pytestmark = BOTH_ENGINES


def site_secret(relay: RunningRelay) -> str:
    env = relay_env(relay)
    result = subprocess.run(
        [*porch_command(), "site", "secret", "alpha"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


def signed(secret: str, user: str) -> dict[str, str]:
    return {
        "id": user,
        "hash": hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest(),
    }


async def identify(
    client: httpx.AsyncClient, body: dict[str, str], token: str | None = None
) -> dict[str, object]:
    response = await client.post(
        "/v1/sites/alpha/identify", json=body, headers=bearer(token) if token else {}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_secret_is_stable_until_rotated(relay: RunningRelay) -> None:
    first, again = site_secret(relay), site_secret(relay)
    assert first == again and len(first) >= 43
    env = relay_env(relay)
    rotated = subprocess.run(
        [*porch_command(), "site", "secret", "alpha", "--rotate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    assert rotated != first
    async with relay.client() as client:
        stale = await identify(client, signed(first, "user-1"))
    assert stale == {"verified": False}
    async with relay.client() as client:
        config = (await client.get("/v1/sites/alpha/config")).text
    assert rotated not in config  # never public


async def test_anonymous_thread_merges_into_the_user_on_every_device(relay: RunningRelay) -> None:
    secret = site_secret(relay)
    async with relay.client() as laptop, relay.client() as phone:
        # The phone, signed in earlier, already has the user's thread.
        started_phone = await start_thread(
            phone, "from the phone", identity=signed(secret, "user-42")
        )
        anonymous = await start_thread(laptop, "before login")
        merged = await identify(
            laptop, {**signed(secret, "user-42"), "name": "Ann"}, anonymous["token"]
        )
        assert merged["verified"] is True
        assert merged["thread"]["id"] == started_phone["thread"]["id"]  # type: ignore[index]
        history = await laptop.get("/v1/thread", headers=bearer(str(merged["token"])))
        bodies = [m["body"] for m in history.json()["messages"]]
        seqs = [m["seq"] for m in history.json()["messages"]]
        old_token = await laptop.get("/v1/thread", headers=bearer(anonymous["token"]))
    assert sorted(bodies) == ["before login", "from the phone"] and seqs == sorted(seqs)
    assert old_token.status_code == 401  # the anonymous visitor is gone, merged
    assert relay.counts()["threads"] == 1 and relay.counts()["messages"] == 2


async def test_forged_hash_grants_nothing(relay: RunningRelay) -> None:
    secret = site_secret(relay)
    async with relay.client() as client:
        owner_of_42 = await start_thread(client, "private", identity=signed(secret, "user-42"))
        intruder = await start_thread(client, "hello")
        forged = await identify(
            client, {"id": "user-42", "hash": "0" * 64, "name": "Mallory"}, intruder["token"]
        )
        history = await client.get("/v1/thread", headers=bearer(intruder["token"]))
    assert forged == {"verified": False}
    assert [m["body"] for m in history.json()["messages"]] == ["hello"]
    assert relay.counts()["threads"] == 2
    with relay.db() as db:
        names = dict(db.execute("SELECT id, name FROM visitors").fetchall())
        external = dict(db.execute("SELECT id, external_id FROM visitors").fetchall())
    intruder_visitor = next(v for v, e in external.items() if e is None)
    assert names[intruder_visitor] == "Mallory"  # a display name, and nothing else
    assert owner_of_42["thread"]["id"] != intruder["thread"]["id"]


async def test_merge_with_concurrent_sends_doubles_nothing(relay: RunningRelay) -> None:
    secret = site_secret(relay)
    async with relay.client() as client:
        await start_thread(client, "signed in first", identity=signed(secret, "user-7"))
        anonymous = await start_thread(client, "anon 0", client_id="anon-start-0000000")

        async def send(i: int) -> int:
            response = await client.post(
                "/v1/thread/messages",
                headers=bearer(anonymous["token"]),
                json={"body": f"anon {i}", "client_id": f"a{i}"},
            )
            return response.status_code

        sends = [asyncio.create_task(send(i)) for i in range(1, 20)]
        merged = await identify(client, signed(secret, "user-7"), anonymous["token"])
        statuses = await asyncio.gather(*sends)
        history = await client.get("/v1/thread", headers=bearer(str(merged["token"])))
    acked = {f"anon {i}" for i, status in zip(range(1, 20), statuses, strict=True) if status == 201}
    bodies = [m["body"] for m in history.json()["messages"]]
    assert len(bodies) == len(set(bodies)), "a message was doubled"
    assert acked <= set(bodies), "an acknowledged message was lost in the merge"
    assert {"signed in first", "anon 0"} <= set(bodies)


async def test_a_client_id_both_threads_have_is_merged_once(relay: RunningRelay) -> None:
    """The same client_id in the anonymous thread and the user's (sent from both, or
    chosen so): the merge keeps both messages, once each, instead of failing."""
    secret = site_secret(relay)
    same = {"client_id": "same-id-0123456789"}
    async with relay.client() as laptop, relay.client() as phone:
        on_phone = await start_thread(phone, "hello", identity=signed(secret, "user-7"))
        sent = await phone.post(
            "/v1/thread/messages",
            headers=bearer(on_phone["token"]),
            json={"body": "from the phone", **same},
        )
        assert sent.status_code == 201
        anonymous = await start_thread(laptop, "before login", **same)
        merged = await identify(laptop, signed(secret, "user-7"), anonymous["token"])
        history = await laptop.get("/v1/thread", headers=bearer(merged["token"]))  # type: ignore[arg-type]
    bodies = sorted(m["body"] for m in history.json()["messages"])
    assert bodies == ["before login", "from the phone", "hello"]


async def test_files_sent_before_login_move_with_the_merge(relay: RunningRelay) -> None:
    secret = site_secret(relay)
    pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
    async with relay.client() as laptop, relay.client() as phone:
        await start_thread(phone, "from the phone", identity=signed(secret, "user-7"))
        anonymous = await start_thread(laptop, "before login")
        token = anonymous["token"]
        sent = await laptop.post(
            "/v1/thread/attachments",
            files={"file": ("plan.pdf", pdf, "application/pdf")},
            headers=bearer(token),
        )
        unsent = await laptop.post(  # uploaded, not yet sent: still theirs to send after
            "/v1/thread/attachments",
            files={"file": ("later.pdf", pdf + b"\n", "application/pdf")},
            headers=bearer(token),
        )
        message = await laptop.post(
            "/v1/thread/messages", json={"attachments": [sent.json()["id"]]}, headers=bearer(token)
        )
        assert message.status_code == 201, message.text
        merged = await identify(laptop, signed(secret, "user-7"), token)
        user = str(merged["token"])
        history = (await laptop.get("/v1/thread", headers=bearer(user))).json()["messages"]
        files = [a for m in history for a in m["attachments"]]
        downloaded = await laptop.get(files[0]["url"])
        later = await laptop.post(
            "/v1/thread/messages", json={"attachments": [unsent.json()["id"]]}, headers=bearer(user)
        )
    assert [f["name"] for f in files] == ["plan.pdf"]
    assert downloaded.status_code == 200 and downloaded.content == pdf
    assert later.status_code == 201  # the upload moved to the user's thread too
