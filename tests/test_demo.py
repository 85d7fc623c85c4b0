"""`porch demo` runs the whole email loop on loopback: the visitor's message reaches the
demo mailbox by real SMTP, a reply typed there comes back by real SMTP into the chat."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import string
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright

from relay.catalogue import LANGUAGES, catalogue
from relay.demo.mailbox import preferred_language
from tests.support import CHROMIUM, CHROMIUM_ARGS, free_port, open_live_url, porch_command


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


# -- the mailbox page: its style, its CSP, its language ------------------------------------


@contextlib.asynccontextmanager
async def running_demo(data_dir: Path) -> AsyncIterator[str]:
    """`porch demo` in its own process, as a person runs it: its origin, once it is up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORCH_")}
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *porch_command(),
        "demo",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        await asyncio.wait_for(process.stdout.readline(), 15)  # the banner: it is up
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


async def mailbox_with_one_email(client: httpx.AsyncClient, origin: str) -> str:
    """The mailbox page once the owner's notification of a new message has arrived."""
    await client.post(
        "/v1/sites/demo/threads", json={"body": "Any rye today?", "page": f"{origin}/"}
    )
    async with asyncio.timeout(20):  # the outbox sends it a few seconds later
        while "Any rye today?" not in (page := (await client.get("/demo/mailbox")).text):
            await asyncio.sleep(0.2)
    return page


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


async def test_mailbox_page_is_styled_by_its_stylesheet_under_a_strict_csp(tmp_path: Path) -> None:
    async with (
        running_demo(tmp_path) as origin,
        httpx.AsyncClient(base_url=origin, headers={"origin": origin}) as client,
    ):
        page = await mailbox_with_one_email(client, origin)
        response = await client.get("/demo/mailbox")
        css = await client.get("/demo/mailbox.css")
    tags = tags_of(page)
    sheets = [a["href"] for t, a in tags if t == "link" and a.get("rel") == "stylesheet"]
    assert sheets == ["/demo/mailbox.css"]
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ".mail" in css.text and "prefers-color-scheme: dark" in css.text
    # Nothing inline: no style attribute, no <style>, no script of any kind.
    assert [t for t, a in tags if "style" in a] == []
    assert not {"style", "script"} & {t for t, _ in tags}
    assert not [name for _, a in tags for name in a if name.startswith("on")]
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "script-src" not in policy
    assert css.headers["content-security-policy"] == policy
    assert response.headers["referrer-policy"] == "no-referrer"  # links carry tokens


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        missing = "Debian's Chromium is not installed at /usr/bin/chromium"
        if os.environ.get("CI"):  # CI must run the browser tests, never skip them
            pytest.fail(missing)
        pytest.skip(missing)
    return CHROMIUM


async def test_the_browser_applies_the_stylesheet_and_the_csp_blocks_nothing(
    tmp_path: Path, chromium: str
) -> None:
    async with running_demo(tmp_path) as origin:
        async with httpx.AsyncClient(base_url=origin, headers={"origin": origin}) as client:
            await mailbox_with_one_email(client, origin)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            refused: list[str] = []
            page.on("console", lambda message: refused.append(message.text))
            await page.goto(f"{origin}/demo/mailbox")
            card = await page.eval_on_selector(
                ".mail", "e => getComputedStyle(e).borderTopLeftRadius"
            )
            button = await page.eval_on_selector(
                ".reply .primary", "e => getComputedStyle(e).backgroundColor"
            )
            wide = await page.evaluate("document.documentElement.scrollWidth")
            await browser.close()
    assert refused == []  # a CSP violation is reported on the console
    assert card == "14px" and button == "rgb(47, 111, 78)"  # the inbox's green
    assert wide <= 390  # nothing overflows a phone's width


async def test_mailbox_page_speaks_the_readers_language(tmp_path: Path) -> None:
    async with (
        running_demo(tmp_path) as origin,
        httpx.AsyncClient(base_url=origin, headers={"origin": origin}) as client,
    ):
        await mailbox_with_one_email(client, origin)
        french = await client.get("/demo/mailbox", headers={"accept-language": "fr-CA,en;q=0.5"})
        english = await client.get("/demo/mailbox", headers={"accept-language": "de, en;q=0.8"})
        chosen = await client.get("/demo/mailbox?lang=en", headers={"accept-language": "fr"})
        # A reply with nothing to answer: a clear notice, in the page's language, and
        # nothing sent.
        refused = await client.post(
            "/demo/mailbox/reply", data={"mail": "999", "text": "Hello", "lang": "fr"}
        )
        notice = await client.get(refused.headers["location"])
    assert '<html lang="fr">' in french.text
    assert "La messagerie du commerçant" in french.text and "Envoyer la réponse" in french.text
    assert "1 e-mail" in french.text and 'hreflang="en"' in french.text
    assert '<html lang="en">' in english.text and "Send reply" in english.text
    assert '<html lang="en">' in chosen.text
    assert refused.status_code == 303
    assert refused.headers["location"] == "/demo/mailbox?lang=fr&unsent=1"
    assert "Rien n’a été envoyé" in notice.text


def test_accept_language_ranks_by_quality_then_order() -> None:
    assert preferred_language("") == "en"
    assert preferred_language("fr-FR,fr;q=0.9,en;q=0.8") == "fr"
    assert preferred_language("en;q=0.4, fr;q=0.7") == "fr"
    assert preferred_language("de, fr;q=0.5, en;q=0.5") == "fr"  # same q: first one
    assert preferred_language("fr;q=0, en;q=0.1") == "en"  # q=0: not this one
    assert preferred_language("fr;q=banana, *") == "en"  # unreadable: ignored


def test_every_mailbox_text_exists_in_every_language_with_the_same_placeholders() -> None:
    source = (Path(__file__).resolve().parents[1] / "relay" / "demo" / "mailbox.py").read_text()
    used = set(re.findall(r'"(server\.mailbox\.[a-z_.]+)"', source))
    used |= {f"server.mailbox.{key}" for key in ("from", "to", "reply_to", "sent", "not_sent")}
    used |= {f"server.mailbox.count.{form}" for form in ("one", "other")}
    assert len(used) > 15, used  # the scan found the page's keys
    texts = catalogue()
    for key in sorted(used):
        forms = {language: texts[language].get(key) for language in LANGUAGES}
        assert all(forms.values()), f"{key} is missing in {[k for k, v in forms.items() if not v]}"
        names = {
            frozenset(n for _, n, _, _ in string.Formatter().parse(v) if n)
            for v in forms.values()
            if v
        }
        assert len(names) == 1, forms
