"""Photos and files in the widget, in real Chromium against a real relay: attached from
the file chooser or pasted, sent with a progress bar, shown as thumbnails and chips,
downloaded, refused for their size before any upload, and queued offline (also over a
reload) to be sent once."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import (
    BrowserContext,
    Dialog,
    FilePayload,
    Page,
    Request,
    Route,
    expect,
    sync_playwright,
)

from tests.e2e.conftest import Stage, screenshot
from tests.e2e.test_widget import (
    LAUNCHER,
    PANEL,
    PUSH_CHECK,
    STORED_VISITOR,
    only_thread,
    open_and_send,
)
from tests.support import CHROMIUM, CHROMIUM_ARGS
from tests.test_attachments import PDF

CLIP = "porch-chat .composer-row .attach"
TRAY = "porch-chat .tray"
INPUT = "porch-chat textarea"
ALERT = "porch-chat .alert"
PENDING = "porch-chat .message.pending"
UPLOADS = "/v1/thread/attachments"
REFUSED = "415 (Unsupported Media Type)"

# A PNG made in the page and pasted into the composer, as a screenshot tool would.
PASTE_PNG = """async () => {
  const canvas = document.createElement('canvas');
  canvas.width = 40; canvas.height = 30;
  const context = canvas.getContext('2d');
  context.fillStyle = '#c0392b';
  context.fillRect(0, 0, 40, 30);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  const data = new DataTransfer();
  data.items.add(new File([blob], 'image.png', { type: 'image/png' }));
  const input = document.querySelector('porch-chat').shadowRoot.querySelector('textarea');
  const paste = { clipboardData: data, bubbles: true, cancelable: true };
  input.dispatchEvent(new ClipboardEvent('paste', paste));
}"""


# A text file dropped on the panel: the hint shows while it is dragged over.
DROP_TEXT = """() => {
  const data = new DataTransfer();
  data.items.add(new File(['2 baguettes, 1 rye'], 'order.txt', { type: 'text/plain' }));
  const panel = document.querySelector('porch-chat').shadowRoot.querySelector('.panel');
  const drag = (type) => panel.dispatchEvent(
    new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
  drag('dragover');
  const hinted = panel.classList.contains('dropping') && getComputedStyle(panel, '::after').content;
  drag('drop');
  return hinted;
}"""


def photo(name: str = "cake.jpg") -> FilePayload:
    """A JPEG photo, as a phone's camera would give it (with EXIF the relay strips)."""
    image = Image.new("RGB", (320, 240), (200, 120, 60))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, exif=exif)
    return {"name": name, "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def choose(page: Page, *files: FilePayload) -> None:
    """The visitor presses the paperclip and picks files in the chooser."""
    with page.expect_file_chooser() as chooser:
        page.locator(CLIP).click()
    assert chooser.value.is_multiple()
    chooser.value.set_files(list(files))


def owner_headers(stage: Stage) -> dict[str, str]:
    return {"authorization": f"Bearer {stage.relay.owner_token()}"}


def uploads_of(page: Page) -> list[Request]:
    """The upload requests the page makes from now on."""
    seen: list[Request] = []
    page.on("request", lambda r: seen.append(r) if r.url.endswith(UPLOADS) else None)
    return seen


def test_a_photo_from_the_file_chooser_reaches_the_thread(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/"))
    page.locator(LAUNCHER).click()
    # Images (a phone offers its camera), PDF, plain text, office documents: the site's types.
    expect(page.locator("porch-chat input[type=file]")).to_have_attribute(
        "accept", "image/*,.pdf,.txt,.docx,.xlsx,.pptx,.odt,.ods,.odp"
    )
    expect(page.locator(CLIP)).to_have_attribute("aria-label", "Attach a photo or file")
    choose(page, photo())
    tray = page.locator(TRAY)
    expect(tray.locator("li")).to_have_count(1)
    expect(tray.locator("img")).to_have_attribute("src", re.compile("^blob:"))
    expect(tray.locator(".name")).to_have_text("cake.jpg")
    screenshot(page, "attachments-tray")
    assert serious_violations(page) == []
    page.locator(INPUT).fill("Like this one, with three tiers")
    page.locator(INPUT).press("Enter")
    expect(tray).to_be_hidden()
    # No conversation yet: the text starts it, the photo follows as the next message.
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    thumb = page.locator("porch-chat .message.visitor .files a.thumb")
    expect(thumb).to_have_attribute("target", "_blank")
    image = thumb.locator("img")
    expect(image).to_have_attribute("alt", "cake.jpg")
    page.wait_for_function(
        "() => document.querySelector('porch-chat').shadowRoot"
        ".querySelector('.files img').naturalWidth === 320"
    )
    messages = stage.messages(only_thread(stage))
    assert [m["body"] for m in messages] == ["Like this one, with three tiers", ""]
    [attached] = messages[1]["attachments"]
    assert attached["type"] == "image/jpeg" and attached["name"] == "cake.jpg"
    sent = httpx.get(attached["url"]).content
    assert b"PhoneMaker" not in sent  # re-encoded: the camera's EXIF is gone
    screenshot(page, "attachments-photo")
    assert serious_violations(page) == []


def serious_violations(page: Page) -> list[dict[str, Any]]:
    axe = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()
    page.evaluate(axe)
    result: dict[str, Any] = page.evaluate(
        "axe.run({include: [['porch-chat']]}, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_a_pasted_image_and_a_dropped_file_are_sent(stage: Stage, page: Page) -> None:
    page.goto(stage.url("/"))
    page.locator(LAUNCHER).click()
    expect(page.locator(TRAY)).to_have_count(1)  # the photos and files part is here
    page.evaluate(PASTE_PNG)
    expect(page.locator(TRAY).locator("li .name")).to_have_text("image.png")
    expect(page.locator(INPUT)).to_have_value("")  # the picture was taken, not pasted as text
    assert page.evaluate(DROP_TEXT) == '"Drop files here to send them"'
    expect(page.locator(TRAY).locator("li .name")).to_have_text(["image.png", "order.txt"])
    expect(page.locator(PANEL)).not_to_have_class(re.compile("dropping"))
    page.locator(INPUT).press("Enter")
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    expect(page.locator(STORED_VISITOR).last.locator(".files img")).to_have_attribute(
        "alt", "image.png"
    )
    # No text and no conversation yet: the files' names start it, the files follow.
    first, last = stage.messages(only_thread(stage))
    assert (first["body"], first["attachments"]) == ("image.png, order.txt", [])
    assert last["body"] == ""
    assert [(a["name"], a["type"]) for a in last["attachments"]] == [
        ("image.png", "image/png"),
        ("order.txt", "text/plain"),
    ]


def test_the_owner_sends_a_pdf_and_the_visitor_downloads_it(stage: Stage, page: Page) -> None:
    page.clock.install()  # the page's clock, moved on below; time runs as usual meanwhile
    page.goto(stage.url("/"))
    open_and_send(page, "Do you have a price list?")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    thread = only_thread(stage)
    uploaded = httpx.post(
        f"{stage.relay.url}/v1/owner/threads/{thread}/attachments",
        files={"file": ("prices.pdf", PDF, "application/pdf")},
        headers=owner_headers(stage),
    )
    assert uploaded.status_code == 201, uploaded.text
    sent = httpx.post(
        f"{stage.relay.url}/v1/owner/threads/{thread}/messages",
        json={"body": "Here it is", "attachments": [uploaded.json()["id"]]},
        headers=owner_headers(stage),
    )
    assert sent.status_code == 201, sent.text
    chip = page.locator("porch-chat .message.owner .files a.chip")
    expect(chip).to_contain_text("prices.pdf")
    expect(chip.locator(".size")).to_have_text(f"{len(PDF)} bytes")
    screenshot(page, "attachments-chip")
    with page.expect_download() as download:
        chip.click()
    assert download.value.suggested_filename == "prices.pdf"
    assert Path(download.value.path()).read_bytes() == PDF
    # 51 minutes on, the link is near its end: the thread is read again for a fresh one
    # before the download starts.
    page.clock.fast_forward("51:00")
    reading = page.expect_request(lambda r: "/v1/thread?since=" in r.url)
    with reading as reread, page.expect_download() as again:
        chip.click()
    assert reread.value.url.endswith(f"?since={sent.json()['seq'] - 1}")
    assert Path(again.value.path()).read_bytes() == PDF


def test_a_file_over_the_sites_limit_is_refused_before_any_upload(stage: Stage, page: Page) -> None:
    with stage.relay.db() as db:
        (settings,) = db.execute("SELECT settings FROM sites WHERE id = 'alpha'").fetchone()
        db.execute(
            "UPDATE sites SET settings = ? WHERE id = 'alpha'",
            (json.dumps({**json.loads(settings), "max_file_mb": 1}),),
        )
    uploads = uploads_of(page)
    page.goto(stage.url("/"))
    page.locator(LAUNCHER).click()
    big: FilePayload = {
        "name": "plans.pdf",
        "mimeType": "application/pdf",
        "buffer": PDF + b"0" * 1_000_000,
    }
    choose(page, big)
    expect(page.locator(ALERT)).to_have_text("plans.pdf is too large: files up to 1 MB.")
    expect(page.locator(TRAY)).to_be_hidden()
    open_and_send(page, "The plans are too big, I will email them")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    assert uploads == []
    assert stage.messages(only_thread(stage))[0]["attachments"] == []


def test_a_refused_file_says_why_and_the_rest_goes_without_uploading_again(
    stage: Stage, context: BrowserContext
) -> None:
    page = context.new_page()  # the browser logs the relay's 415: expected here, and only it
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    uploads = uploads_of(page)
    page.goto(stage.url("/"))
    open_and_send(page, "Two files")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    dialogs: list[str] = []

    def dialog(opened: Dialog) -> None:
        dialogs.append(opened.message)
        opened.dismiss()

    page.on("dialog", dialog)
    hostile = "<img src=x onerror=alert(1)>.html"  # a name is text, never markup
    web_page: FilePayload = {"name": hostile, "mimeType": "text/html", "buffer": b"<p>x"}
    choose(page, photo(), web_page)
    expect(page.locator(TRAY).locator("li .name")).to_have_text(["cake.jpg", hostile])
    page.locator(INPUT).press("Enter")
    pending = page.locator(PENDING)
    refusal = f"{hostile}: this type of file is not accepted."
    expect(pending.locator(".files .error")).to_have_text(refusal)
    expect(page.locator(ALERT)).to_have_text(refusal)
    expect(pending.locator(".meta")).to_contain_text("Not sent")
    pending.get_by_role("button", name=f"Cancel {hostile}").click()
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    [_, sent] = stage.messages(only_thread(stage))
    assert [a["name"] for a in sent["attachments"]] == ["cake.jpg"]
    assert len(uploads) == 2  # the photo once, the web page once: no upload again
    assert errors == [f"Failed to load resource: the server responded with a status of {REFUSED}"]
    assert dialogs == []


def test_a_file_attached_offline_is_sent_once_back_online(
    stage: Stage, context: BrowserContext, page: Page
) -> None:
    uploads = uploads_of(page)
    page.goto(stage.url("/"))
    with page.expect_response(PUSH_CHECK):  # not in flight as the network goes
        open_and_send(page, "Online first")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    expect(page.locator(TRAY)).to_have_count(1)  # the photos and files part is here
    context.set_offline(True)
    choose(page, photo("leak.jpg"), photo("tap.jpg"))
    page.locator(INPUT).press("Enter")
    pending = page.locator(PENDING)
    expect(pending).to_contain_text("Waiting for connection")
    expect(pending.locator("progress")).to_have_count(2)
    expect(pending.locator("progress").first).to_have_attribute("aria-label", "Sending leak.jpg")
    pending.get_by_role("button", name="Cancel tap.jpg").click()  # one goes, the other stays
    expect(pending.locator(".files .name")).to_have_text(["leak.jpg"])
    screenshot(page, "attachments-offline")
    context.set_offline(False)
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    expect(page.locator(PENDING)).to_have_count(0)
    messages = stage.messages(only_thread(stage))
    assert [[a["name"] for a in m["attachments"]] for m in messages] == [[], ["leak.jpg"]]
    assert len(uploads) == 1


def test_a_reload_while_offline_keeps_the_file_and_sends_it_once(
    stage: Stage, offline_capable: Page
) -> None:
    page = offline_capable
    context = page.context
    worker = ServiceWorker(page, stage)
    uploads = uploads_of(page)
    page.goto(stage.url("/"))
    with page.expect_response(PUSH_CHECK):  # not in flight as the network goes
        open_and_send(page, "Online first")
    expect(page.locator(STORED_VISITOR)).to_have_count(1)
    expect(page.locator(TRAY)).to_have_count(1)
    worker.offline(context, True)
    choose(page, photo("leak.jpg"))
    page.locator(INPUT).press("Enter")
    expect(page.locator(PENDING)).to_contain_text("Waiting for connection")
    page.evaluate(WATCH_KEPT)
    page.wait_for_function("window.kept?.length === 1")  # its bytes are on disk
    page.reload()
    page.locator(LAUNCHER).click()
    expect(page.locator(PENDING)).to_contain_text("Waiting for connection")
    expect(page.locator(PENDING).locator(".files .name")).to_have_text("leak.jpg")
    worker.offline(context, False)
    expect(page.locator(STORED_VISITOR)).to_have_count(2)
    expect(page.locator(STORED_VISITOR).last.locator(".files img")).to_have_attribute(
        "alt", "leak.jpg"
    )
    messages = stage.messages(only_thread(stage))
    assert [len(m["attachments"]) for m in messages] == [0, 1]
    assert len(uploads) == 1
    # Sent: its bytes are no longer kept in the browser.
    page.evaluate(WATCH_KEPT)
    page.wait_for_function("window.kept?.length === 0")


# window.kept: the keys of the files whose bytes the widget keeps in IndexedDB for the
# site, read again and again (no event tells a page that IndexedDB changed). Creates no
# database when there is none yet.
WATCH_KEPT = """(function watch() {
  const open = indexedDB.open('porch:alpha');
  const again = (keys) => { window.kept = keys; setTimeout(watch, 20); };
  open.onupgradeneeded = () => open.transaction.abort();
  open.onerror = () => again([]);
  open.onsuccess = () => {
    const request = open.result.transaction('files').objectStore('files').getAllKeys();
    request.onsuccess = () => { open.result.close(); again(request.result); };
  };
})()"""


# Chromium checks that a page may reach a loopback address ("local network access") by
# the address its document came from; a document a route serves came from none.
LOOPBACK_FROM_A_ROUTED_PAGE = "--disable-features=LocalNetworkAccessChecks"


@pytest.fixture
def offline_capable() -> Iterator[Page]:
    """A page in a browser of its own, where a page served by a route (a stand-in for
    the site's service worker) may still reach the relay on loopback."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, LOOPBACK_FROM_A_ROUTED_PAGE]
        )
        page = browser.new_context().new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        yield page
        browser.close()
    assert not errors, f"the page logged errors: {errors}"


class ServiceWorker:
    """What a site's service worker does for a page that works offline: the page, the
    widget's files and the site's config from the last visit while the network is gone.
    (A route, because Playwright's routing turns the HTTP cache off.) The relay's API is
    left to the network: offline, it fails."""

    def __init__(self, page: Page, stage: Stage) -> None:
        self.kept: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.cut = False
        self.relay = stage.relay.url
        self.page = stage.url("/")
        page.route("**/*", self.serve)

    def offline(self, context: BrowserContext, offline: bool) -> None:
        self.cut = offline
        context.set_offline(offline)

    def serve(self, route: Route) -> None:
        url = route.request.url
        cached = url == self.page or url.startswith(
            (f"{self.relay}/widget", f"{self.relay}/v1/sites/alpha/config")
        )
        if not cached or route.request.method != "GET":
            route.continue_()
        elif self.cut:
            status, headers, body = self.kept[url]
            route.fulfill(status=status, headers=headers, body=body)
        else:
            response = route.fetch()
            self.kept[url] = (response.status, response.headers, response.body())
            route.fulfill(response=response)
