"""How the relay serves the widget: budgets, compression, caching, versioning."""

from __future__ import annotations

import pytest

from relay.assets import asset_dir
from relay.web.widget import EMBED_CACHE, MODULE_CACHE, Widget, without_comment_lines
from tests.support import RunningRelay

EMBED_BUDGET = 4 * 1024  # brotli bytes: all a page pays before any interaction
UI_BUDGET = 20 * 1024  # brotli bytes: the whole conversation UI, JS + CSS + catalogue


def test_size_budgets(capsys: pytest.CaptureFixture[str]) -> None:
    widget = Widget()
    embed = len(widget.embed.brotli)
    ui = sum(len(asset.brotli) for asset in widget.modules.values())
    with capsys.disabled():
        print(
            f"\nwidget sizes (brotli): embed {embed} B of {EMBED_BUDGET}; "
            f"UI {ui} B of {UI_BUDGET} ("
            + ", ".join(f"{n} {len(a.brotli)}" for n, a in sorted(widget.modules.items()))
            + ")"
        )
    assert embed <= EMBED_BUDGET
    assert ui <= UI_BUDGET


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
