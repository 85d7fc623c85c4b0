"""Photos and files in the owner's inbox, in real Chromium against a real relay: a
visitor's photo arrives live as a thumbnail (its expired link renewed), the list
previews a message made only of files, the owner answers with a PDF from the file
chooser that the visitor downloads, a file the site does not take says why and sends
nothing, and a pasted image and a dropped file go out together."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.conftest import Stage, running_stage, screenshot
from tests.e2e.test_inbox import assert_accessible, device, record_posts, visitor_writes
from tests.e2e.test_inbox_apps import open_inbox, open_thread
from tests.support import ALPHA, bearer, seed_sites
from tests.test_attachments import PDF, png_with_gps

NOT_FOUND = 404  # what an expired download link answers
UNSUPPORTED = 415
PDF_TYPE = "application/pdf"
PHOTO_WIDTH = 64  # png_with_gps() is 64×48
TRAY = "Files to send"
NOT_ACCEPTED = (
    "This kind of file is not accepted. Send a photo, a PDF, a text or an office document."
)
# A paste of an image, as Chromium makes it: the clipboard holds it as a file.
PASTE_IMAGE = """(box, photo) => {
    const bytes = Uint8Array.from(atob(photo), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
    const paste = { clipboardData: data, bubbles: true, cancelable: true };
    box.dispatchEvent(new ClipboardEvent('paste', paste));
}"""
# What a drag from the desktop carries.
DRAGGED_FILE = """() => {
    const data = new DataTransfer();
    const recipe = new File(['Sponge, cream, strawberries.'], 'recipe.txt', { type: 'text/plain' });
    data.items.add(recipe);
    return data;
}"""


class Visitor:
    """A visitor through the HTTP API, as the widget talks to it: no browser needed."""

    def __init__(self, stage: Stage, first: str) -> None:
        started = visitor_writes(stage, first)
        self.relay = stage.relay.url
        self.thread = str(started["thread"]["id"])
        self.headers = {**bearer(started["token"]), "origin": stage.pages}

    def send(self, body: str, *files: tuple[str, bytes]) -> dict[str, Any]:
        ids = []
        for name, data in files:
            sent = httpx.post(
                f"{self.relay}/v1/thread/attachments",
                files={"file": (name, data, "application/octet-stream")},
                headers=self.headers,
            )
            assert sent.status_code == 201, sent.text
            ids.append(sent.json()["id"])
        message = httpx.post(
            f"{self.relay}/v1/thread/messages",
            json={"body": body, "client_id": f"c-{len(ids)}-{body[:8]}", "attachments": ids},
            headers=self.headers,
        )
        assert message.status_code == 201, message.text
        return message.json()  # type: ignore[no-any-return]

    def history(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.relay}/v1/thread", headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["messages"]  # type: ignore[no-any-return]


def choose(page: Page, *files: tuple[str, str, bytes]) -> None:
    """Files picked in the chooser the paperclip opens: (name, type, bytes)."""
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    assert chooser.value.is_multiple()
    chooser.value.set_files(
        [{"name": name, "mimeType": kind, "buffer": data} for name, kind, data in files]
    )


def chip(page: Page, name: str) -> Any:
    return page.get_by_role("list", name=TRAY).get_by_role("listitem").filter(has_text=name)


def stored_attachments(stage: Stage) -> int:
    with stage.relay.db() as db:
        return int(db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0])


def test_a_visitors_photo_arrives_live_as_a_thumbnail_and_the_list_previews_it(
    browser: Browser, stage: Stage
) -> None:
    visitor = Visitor(stage, "Here is the cake I want")
    with device(browser, allow=frozenset({NOT_FOUND})) as inbox:
        # The first download the page asks for answers as an hour-old link would.
        expired: list[str] = []

        def expire_the_first(route: Route) -> None:
            if expired:
                route.continue_()
            else:
                expired.append(route.request.url)
                route.fulfill(status=NOT_FOUND, json={"error": "not_found"})

        inbox.route(re.compile(r"/v1/attachments/"), expire_the_first)
        open_inbox(inbox, stage)
        open_thread(inbox, "Here is the cake I want")
        reads: list[str] = []
        inbox.on("request", lambda r: reads.append(r.url) if "/api/threads/" in r.url else None)

        sent = visitor.send("", ("photo.png", png_with_gps()))
        message = inbox.get_by_role("log").locator(".message.visitor").last
        photo = message.get_by_role("img", name="photo.png")
        # It loads, once its link was renewed (the thread read again from it on).
        expect(photo).to_have_js_property("naturalWidth", PHOTO_WIDTH)
        assert len(expired) == 1
        renewal = f"/inbox/api/threads/{visitor.thread}?since={sent['seq'] - 1}"
        assert [url for url in reads if url.endswith(renewal)], reads
        assert photo.get_attribute("loading") == "lazy"
        expect(message.locator(".bubble")).to_have_count(0)  # no words: only the photo
        expect(inbox.locator("#announcer")).to_have_text("New message from Visitor: 📎 photo.png")
        row = inbox.locator(".threads .thread-item")
        expect(row.locator(".preview")).to_have_text("📎 photo.png")
        box = photo.bounding_box()
        assert box is not None and box["height"] <= 160

        # It opens full size in a tab of its own.
        link = message.get_by_role("link", name="photo.png")
        assert link.get_attribute("target") == "_blank"
        assert link.get_attribute("href") == photo.get_attribute("src")
        with inbox.context.expect_page() as opened:
            photo.click()
        tab = opened.value
        tab.wait_for_load_state()
        assert "/v1/attachments/" in tab.url
        assert tab.evaluate("document.images[0].naturalWidth") == PHOTO_WIDTH
        tab.close()

        # Two files: a chip for the PDF, with its size; the list counts them.
        visitor.send("", ("invoice.pdf", PDF), ("second.png", png_with_gps()))
        latest = inbox.get_by_role("log").locator(".message.visitor").last
        invoice = latest.get_by_role("link", name=re.compile("invoice.pdf"))
        expect(invoice).to_have_text(f"invoice.pdf{len(PDF)}B")
        assert invoice.get_attribute("download") == "invoice.pdf"
        expect(latest.get_by_role("img", name="second.png")).to_have_js_property(
            "naturalWidth", PHOTO_WIDTH
        )
        expect(row.locator(".preview")).to_have_text("📎 2 files")
        screenshot(inbox, "inbox-files")
        assert_accessible(inbox)

        # Loaded again, the list (whose last message has no links) previews the same.
        inbox.reload()
        expect(row.locator(".preview")).to_have_text("📎 2 files")
        expect(inbox.get_by_role("log").get_by_role("img", name="photo.png")).to_have_js_property(
            "naturalWidth", PHOTO_WIDTH
        )


def test_the_owner_answers_with_a_pdf_the_visitor_downloads(browser: Browser, stage: Stage) -> None:
    visitor = Visitor(stage, "Do you have a price list?")
    with device(browser) as inbox:
        with inbox.expect_websocket() as opened:
            open_inbox(inbox, stage)
        sent_frames: list[dict[str, Any]] = []
        opened.value.on("framesent", lambda payload: sent_frames.append(json.loads(payload)))
        open_thread(inbox, "Do you have a price list?")

        # The paperclip is reached from the reply box by keyboard, and opens the chooser.
        # (Choosers are intercepted from now on: a key press alone would race Playwright's
        # turning interception on, and Chromium would open its own, unseen.)
        inbox.on("filechooser", lambda chooser: None)
        reply = inbox.get_by_label("Reply to Visitor")
        reply.focus()
        inbox.keyboard.press("Shift+Tab")
        attach = inbox.get_by_role("button", name="Attach files")
        expect(attach).to_be_focused()
        with inbox.expect_file_chooser() as chooser:
            inbox.keyboard.press("Enter")
        chooser.value.set_files([{"name": "prices.pdf", "mimeType": PDF_TYPE, "buffer": PDF}])
        pdf = chip(inbox, "prices.pdf")
        expect(pdf).to_have_attribute("data-state", "ready")
        expect(pdf).to_contain_text(f"{len(PDF)}B")
        expect(pdf.get_by_role("button", name="Remove prices.pdf")).to_be_visible()
        reply.fill("Here is our price list.")
        reply.press("Enter")

        expect(inbox.get_by_role("list", name=TRAY)).to_be_hidden()
        mine = inbox.get_by_role("log").locator(".message.owner").last
        expect(mine).not_to_have_class(re.compile("pending"))
        expect(mine.locator(".bubble")).to_have_text("Here is our price list.")
        expect(mine.get_by_role("link", name=re.compile("prices.pdf"))).to_be_visible()
        expect(inbox.locator(".threads .preview")).to_have_text("You: Here is our price list.")
        [send] = [frame for frame in sent_frames if frame["type"] == "send"]
        assert send["body"] == "Here is our price list." and len(send["attachments"]) == 1

    owners = [m for m in visitor.history() if m["author"] == "owner"]
    assert [m["body"] for m in owners] == ["Here is our price list."]
    [file] = owners[0]["attachments"]
    assert (file["id"], file["name"], file["type"], file["size"]) == (
        send["attachments"][0],
        "prices.pdf",
        PDF_TYPE,
        len(PDF),
    )
    download = httpx.get(file["url"])
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-disposition"].startswith("attachment")


def test_a_file_the_site_does_not_take_says_why_and_nothing_is_sent(
    browser: Browser, tmp_path: Path
) -> None:
    with running_stage(tmp_path) as stage:
        settings = {**ALPHA.settings, "max_file_mb": 1}
        seed_sites(stage.relay.config, [replace(ALPHA, origins=(stage.pages,), settings=settings)])
        visitor = Visitor(stage, "Can I see the menu?")
        with device(browser, allow=frozenset({UNSUPPORTED})) as inbox:
            open_inbox(inbox, stage)
            open_thread(inbox, "Can I see the menu?")
            posts = record_posts(inbox)
            page_html = b"<!doctype html><script>alert(document.cookie)</script>"
            big = b"%PDF-1.4\n" + b"0" * 1_100_000  # past the site's 1 MB
            choose(inbox, ("menu.html", "text/html", page_html), ("big.pdf", PDF_TYPE, big))

            html = chip(inbox, "menu.html")
            expect(html.locator(".tray-error")).to_have_text(NOT_ACCEPTED)
            expect(html).to_have_class(re.compile("failed"))
            expect(html.get_by_role("button", name="Retry uploading menu.html")).to_be_hidden()
            too_big = chip(inbox, "big.pdf")
            expect(too_big.locator(".tray-error")).to_have_text(
                "Too large: this website takes files up to 1 MB."
            )
            expect(inbox.locator("#announcer")).to_have_text(
                f"menu.html could not be uploaded: {NOT_ACCEPTED}"
            )
            screenshot(inbox, "inbox-tray")
            assert_accessible(inbox)

            # Sending is refused, with or without words, and says what to do.
            reply = inbox.get_by_label("Reply to Visitor")
            reply.fill("Here it is")
            reply.press("Enter")
            expect(inbox.locator("#announcer")).to_have_text(
                "Remove or retry the files that could not be uploaded, then send."
            )
            expect(reply).to_have_value("Here it is")
            expect(inbox.get_by_role("log").locator(".message.owner")).to_have_count(0)

            # Removed, the reply goes without them; focus stays in the composer.
            html.get_by_role("button", name="Remove menu.html").click()
            too_big.get_by_role("button", name="Remove big.pdf").click()
            expect(inbox.get_by_role("list", name=TRAY)).to_be_hidden()
            expect(reply).to_be_focused()
            reply.press("Enter")
            expect(inbox.get_by_role("log").locator(".message.owner")).to_contain_text("Here it is")

        # The big file never left the browser; the page was refused and kept nowhere.
        uploads = [path for path in posts if path.endswith("/attachments")]
        assert uploads == [f"/inbox/api/threads/{visitor.thread}/attachments"]
        assert stored_attachments(stage) == 0
        stored = [(m["author"], m["body"], m["attachments"]) for m in visitor.history()]
        assert stored == [("visitor", "Can I see the menu?", []), ("owner", "Here it is", [])]


def test_a_pasted_image_and_a_dropped_file_are_uploaded_and_sent(
    browser: Browser, stage: Stage
) -> None:
    visitor = Visitor(stage, "What does the cake look like?")
    photo = base64.b64encode(png_with_gps()).decode()
    with device(browser) as inbox:
        open_inbox(inbox, stage)
        open_thread(inbox, "What does the cake look like?")
        reply = inbox.get_by_label("Reply to Visitor")
        reply.evaluate(PASTE_IMAGE, photo)
        pasted = chip(inbox, "image.png")
        expect(pasted.locator("img.tray-thumb")).to_have_js_property("naturalWidth", PHOTO_WIDTH)
        expect(pasted).to_have_attribute("data-state", "ready")
        # A file dropped on the conversation joins it.
        dropped = inbox.evaluate_handle(DRAGGED_FILE)
        log = inbox.get_by_role("log")
        log.dispatch_event("dragover", {"dataTransfer": dropped})
        expect(inbox.locator(".conversation")).to_have_class(re.compile("dropping"))
        log.dispatch_event("drop", {"dataTransfer": dropped})
        expect(inbox.locator(".conversation")).not_to_have_class(re.compile("dropping"))
        expect(chip(inbox, "recipe.txt")).to_have_attribute("data-state", "ready")

        reply.press("Enter")  # no words: the files alone
        mine = log.locator(".message.owner").last
        expect(mine).not_to_have_class(re.compile("pending"))
        expect(mine.locator(".bubble")).to_have_count(0)
        expect(mine.get_by_role("img", name="image.png")).to_have_js_property(
            "naturalWidth", PHOTO_WIDTH
        )
        expect(mine.get_by_role("link", name=re.compile("recipe.txt"))).to_be_visible()
        expect(inbox.locator(".threads .preview")).to_have_text("You: 📎 2 files")

    [sent] = [m for m in visitor.history() if m["author"] == "owner"]
    assert sent["body"] == ""
    assert [(a["name"], a["type"]) for a in sent["attachments"]] == [
        ("image.png", "image/png"),
        ("recipe.txt", "text/plain"),
    ]


def test_a_link_older_than_fifty_minutes_is_renewed_before_it_is_followed(
    browser: Browser, stage: Stage
) -> None:
    visitor = Visitor(stage, "The invoice, please")
    visitor.send("", ("invoice.pdf", PDF))
    with device(browser) as inbox:
        inbox.clock.install()  # the page's clock, moved on below; the relay's runs as ever
        open_inbox(inbox, stage)
        inbox.locator(".threads .thread-item a").click()
        link = inbox.get_by_role("log").get_by_role("link", name=re.compile("invoice.pdf"))
        expect(link).to_be_visible()
        # A renewal asks for the file's message and on (seq 2: since=1). A window focus
        # may refresh the whole thread (since=0) at any time: that is not a renewal.
        renewals: list[str] = []
        inbox.on("request", lambda r: renewals.append(r.url) if "?since=1" in r.url else None)

        with inbox.expect_download() as fresh:  # a fresh link is followed as it is
            link.click()
        assert fresh.value.suggested_filename == "invoice.pdf"
        assert renewals == []

        inbox.clock.fast_forward("51:00")
        with inbox.expect_download() as renewed:
            link.click()
        assert Path(renewed.value.path()).read_bytes() == PDF
        assert renewals, "the link was followed without being renewed"
