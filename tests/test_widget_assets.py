"""How the relay serves the widget: budgets, compression, caching, versioning."""

from __future__ import annotations

import json
import re

import pytest

from relay.assets import asset_dir
from relay.web.widget import EMBED_CACHE, MODULE_CACHE, Widget, without_comment_lines
from tests.support import RunningRelay

EMBED_BUDGET = 4 * 1024  # brotli bytes: all a page pays before any interaction
UI_BUDGET = 20 * 1024 + 128  # brotli bytes: the whole conversation UI, JS + CSS + catalogue
# Photos and files: imported with import() only when the visitor opens the panel (fetched
# ahead, so an attach works offline), attaches, or a message carries files. Not part of
# what loading the chat costs, so a budget of their own.
LAZY = ("files.js", "uploads.js", "filestore.js")
LAZY_BUDGET = 6 * 1024  # brotli bytes
# The owner's answers on the visitor's side: imported with import() when a visitor first
# types with no conversation yet, or an automatic answer is shown.
ANSWERS = ("answers.js",)
ANSWERS_BUDGET = 3 * 1024  # brotli bytes
# Notifications of replies: push.js is imported with import() once there is a
# conversation in a browser with Web Push; porch-sw.js is the service worker the site's
# /porch-sw.js imports, never loaded by the chat.
PUSH = ("push.js", "porch-sw.js")
PUSH_BUDGET = 3 * 1024  # brotli bytes


def test_size_budgets(capsys: pytest.CaptureFixture[str]) -> None:
    widget = Widget()
    embed = len(widget.embed.brotli)
    ui = sum(
        len(a.brotli) for name, a in widget.modules.items() if name not in LAZY + ANSWERS + PUSH
    )
    lazy = sum(len(widget.modules[name].brotli) for name in LAZY)
    answers = sum(len(widget.modules[name].brotli) for name in ANSWERS)
    push = sum(len(widget.modules[name].brotli) for name in PUSH)
    with capsys.disabled():
        print(
            f"\nwidget sizes (brotli): embed {embed} B of {EMBED_BUDGET}; "
            f"UI {ui} B of {UI_BUDGET}; photos and files {lazy} B of {LAZY_BUDGET}; "
            f"answers {answers} B of {ANSWERS_BUDGET}; push {push} B of {PUSH_BUDGET} ("
            + ", ".join(f"{n} {len(a.brotli)}" for n, a in sorted(widget.modules.items()))
            + ")"
        )
    assert embed <= EMBED_BUDGET
    assert ui <= UI_BUDGET
    assert lazy <= LAZY_BUDGET
    assert answers <= ANSWERS_BUDGET
    assert push <= PUSH_BUDGET


def test_the_lazy_modules_are_only_imported_lazily() -> None:
    """No module imports them statically (that would load them with the chat), except
    each other: uploads.js brings filestore.js."""
    for path in asset_dir("widget").glob("*.js"):
        for name in LAZY + ANSWERS + PUSH:
            static = re.search(rf"^import .* from '\./{re.escape(name)}';", path.read_text(), re.M)
            assert not static or path.name in LAZY, (path.name, name)


def test_every_language_has_the_menu_and_its_continue_in_app_items() -> None:
    """The ⋯ menu reads menu.<action> and, per messaging app the site has,
    menu.continue_<kind> (view.js's APPS): every language the widget is served has each."""
    view = (asset_dir("widget") / "view.js").read_text()
    listed = re.search(r"^const APPS = \[([^\]]*)\];", view, re.MULTILINE)
    assert listed, "view.js no longer lists the app kinds as `const APPS = [...]`"
    kinds = re.findall(r"'(\w+)'", listed.group(1))
    assert kinds == ["telegram", "whatsapp", "messenger"]
    served = json.loads(Widget().modules["messages.json"].body)
    english_menu = {key for key in served["en"] if key.startswith("menu.")}
    assert {f"menu.continue_{kind}" for kind in kinds} <= english_menu
    for language, texts in served.items():
        assert {key for key in texts if key.startswith("menu.")} == english_menu, language
        for kind in kinds:  # each language names the app itself: "Continuer sur WhatsApp"
            assert kind in texts[f"menu.continue_{kind}"].lower(), (language, kind)


def test_modules_are_served_without_their_comment_lines() -> None:
    widget = Widget()
    for name in ("app.js", "panel.js", "conversation.js"):
        source = (asset_dir("widget") / name).read_text().splitlines()
        served = widget.modules[name].body.decode().splitlines()
        assert any(line.lstrip().startswith("//") for line in source)
        assert served == [line for line in source if not line.lstrip().startswith("//")]
    # Only whole lines: a // after code may be in a string or a URL.
    code = b"  // why\nconst url = 'https://r.example'; // kept\n//\nstart();\n"
    assert without_comment_lines(code) == b"const url = 'https://r.example'; // kept\nstart();\n"
    assert widget.embed.body.decode().startswith("// Porch embed")  # the embed is as written


def test_embed_has_version_and_launcher_text_filled_in() -> None:
    widget = Widget()
    text = widget.embed.body.decode()
    assert "__PORCH_VERSION__" not in text and "__PORCH_LAUNCHER_TEXT__" not in text
    assert f'"{widget.version}"' in text
    assert '"Ouvrir la discussion"' in text


async def test_embed_is_compressed_and_revalidated(relay: RunningRelay) -> None:
    async with relay.client(origin=None) as client:
        br = await client.get("/widget.js", headers={"accept-encoding": "br, gzip"})
        gz = await client.get("/widget.js", headers={"accept-encoding": "gzip"})
        plain = await client.get("/widget.js", headers={"accept-encoding": "identity"})
        again = await client.get("/widget.js", headers={"if-none-match": br.headers["etag"]})
    assert br.headers["content-encoding"] == "br"
    assert gz.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert br.text == gz.text == plain.text  # httpx decodes both
    assert br.headers["cache-control"] == EMBED_CACHE
    assert br.headers["content-type"].startswith("text/javascript")
    assert again.status_code == 304 and again.content == b""


async def test_modules_are_versioned_immutable_and_cors_readable(relay: RunningRelay) -> None:
    version = Widget().version
    async with relay.client(origin=None) as client:
        module = await client.get(f"/widget/{version}/app.js")
        old = await client.get("/widget/000000000000/app.js")
        missing = await client.get(f"/widget/{version}/secrets.py")
        raw = await client.get(f"/widget/{version}/styles.css", headers={"accept-encoding": "br"})
    assert module.status_code == 200
    assert module.headers["cache-control"] == MODULE_CACHE
    assert module.headers["access-control-allow-origin"] == "*"
    assert old.status_code == missing.status_code == 404
    assert old.json()["error"] == "not_found"
    assert raw.headers["content-encoding"] == "br"
    assert raw.text.startswith("/*")  # httpx decoded it: valid brotli of the stylesheet
