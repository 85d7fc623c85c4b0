"""`porch demo` runs the whole email loop on loopback: the visitor's message reaches the
demo mailbox by real SMTP, a reply typed there comes back by real SMTP into the chat."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import httpx

from tests.support import free_port, open_live_url, porch_command


async def test_demo_mailbox_round_trip(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORCH_")}
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *porch_command(),
        "demo",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        await asyncio.wait_for(process.stdout.readline(), 15)  # the banner: it is up
        origin = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=origin, headers={"origin": origin}) as client:
            started = (
                await client.post(
                    "/v1/sites/demo/threads",
                    json={"body": "Do you make gluten-free bread?", "page": f"{origin}/"},
                )
            ).json()
            live = await open_live_url(
                f"ws://127.0.0.1:{port}/v1/live",
                started["token"],
                since=started["message"]["seq"],
                origin=origin,
            )
            # The notification is sent by the outbox a few seconds later; nothing in
            # the demo announces it but the page itself, so look until it is there.
            async with asyncio.timeout(20):
                while "Do you make gluten-free bread?" not in (
                    page := (await client.get("/demo/mailbox")).text
                ):
                    await asyncio.sleep(0.2)
            assert "r+" in page and "via Boulangerie Dupont" in page
            index = re.search(r'name="mail" value="(\d+)"', page)
            assert index is not None
            sent = await client.post(
                "/demo/mailbox/reply", data={"mail": index.group(1), "text": "Yes, on Fridays."}
            )
            assert sent.status_code == 303
            while True:  # the automatic demo answer may come first
                message = (await live.next("message", timeout=15))["message"]
                if message["via"] == "email":
                    break
            await live.ws.close()
        assert message["body"] == "Yes, on Fridays." and message["author"] == "owner"
    finally:
        process.terminate()
        await process.wait()
