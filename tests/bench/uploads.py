"""Uploads: throughput and the relay's memory while many visitors upload large files at
once (issue 16). The relay must stream each file to disk, never hold it whole.

Text: VISITORS visitors, each with its thread, POST one TEXT_BYTES file at the same
moment to /v1/thread/attachments (multipart/form-data, one part `file`, as the widget
sends it). The files are plain UTF-8 text (numbered ASCII lines, each file its own
first line), so the relay judges them `text/plain` and keeps them as sent, with no
re-encoding: what is measured is receiving, parsing, checking (the whole file is
decoded as UTF-8), hashing, fsyncing and storing a file. TEXT_BYTES is the site's
default limit (max_file_mb = 10, MB = 1,000,000 bytes), which a file may reach.
Each upload must answer 201 with its size and `text/plain`, and its blob must be on
disk under its SHA-256 with that size.

JPEG: a few visitors upload a 12-megapixel JPEG each (noise, so ~9 MB: the worst case
for a codec), which the relay decodes and encodes afresh (relay/attachments/images.py,
two at a time): shown for context, without a target, since a decoded photo has to be
in memory. Also the RSS the relay still holds once those rounds are over.

Baseline: a bare uvicorn app (upload_server.py) that writes each request body to a
file as it arrives, with no multipart parsing: the same requests, byte for byte, in
the same run. Rounds alternate between the two servers, a warm-up round of each first;
rates are the median of the rest, MB (1,000,000 bytes) of file per second from the
first request sent to the last answer.

Memory: the server's peak RSS (VmHWM, reset through /proc/PID/clear_refs before each
round, so every moment counts and not only samples) minus its RSS before the round;
the largest over the counted rounds, in MB. A relay that buffered whole files would
grow by about VISITORS × TEXT_BYTES = 200 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import io
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from relay.attachments.blobs import LocalBlobs
from relay.config import Config
from tests.bench import clients, servers
from tests.bench.harness import Machine, Row, at_least_ratio, at_most, log, noisy
from tests.support import bearer

MB = 1_000_000  # as the site's max_file_mb counts (relay/web/attachments.py)
VISITORS = 20  # uploading at once, one file each, one connection each
TEXT_BYTES = 10 * MB  # the default max_file_mb: the largest file a site takes as shipped
JPEGS = 4  # visitors uploading a photo at once: twice what the relay decodes at a time
JPEG_SIZE = (4000, 3000)  # 12 megapixels, a phone's photo; decoded as RGB, 36 MB
JPEG_QUALITY = 85  # uniform noise at 85 is ~9 MB, under the 10 MB limit
ROUNDS = 4  # per server and load, the first a warm-up not counted
RSS_TARGET_MB = 50  # a quarter of what buffering 20 files would take; see the README
HTTP_TIMEOUT = 60.0  # seconds for one upload; a loaded 2-core machine needs a few
CREATED = 201
LINE = b"%08d the quick brown fox jumps over the lazy dog, then files its tax return\n"


@dataclass(frozen=True)
class Upload:
    name: str
    content: bytes
    mime: str  # what the client says; the relay judges the bytes
    digest: str  # SHA-256 of content


@dataclass(frozen=True)
class Round:
    rate: float  # MB of file per second
    growth: float  # peak RSS minus RSS before, MB
    cpu_per_mb: float  # the server's CPU milliseconds per MB of file
    others: float  # share of the machine other processes used meanwhile


def upload(name: str, content: bytes, mime: str) -> Upload:
    return Upload(name, content, mime, hashlib.sha256(content).hexdigest())


def text_files(round_name: str) -> list[Upload]:
    """VISITORS text files of TEXT_BYTES, each different from its first line on, so each
    is a blob of its own."""
    lines = b"".join(LINE % n for n in range(TEXT_BYTES // len(LINE) + 1))
    files = []
    for visitor in range(VISITORS):
        first = f"notes of visitor {visitor}, round {round_name}\n".encode()
        content = (first + lines)[:TEXT_BYTES]
        files.append(upload(f"notes-{visitor}.txt", content, "text/plain"))
    return files


def jpeg_files() -> list[Upload]:
    """JPEGS photos of uniform noise (no two alike); the same ones every round."""
    files = []
    for n in range(JPEGS):
        width, height = JPEG_SIZE
        image = Image.frombytes("RGB", JPEG_SIZE, os.urandom(width * height * 3))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=JPEG_QUALITY)
        files.append(upload(f"photo-{n}.jpg", out.getvalue(), "image/jpeg"))
    if max(len(f.content) for f in files) > TEXT_BYTES:
        raise RuntimeError("a benchmark JPEG is over the 10 MB limit: lower JPEG_QUALITY")
    return files


async def measure(
    server: servers.Server, name: str, files: list[Upload], send: Callable[[], Awaitable[None]]
) -> Round:
    """Run `send` (every upload at once) on `server`; its rate, memory and CPU."""
    total = sum(len(f.content) for f in files) / MB
    machine = Machine(server.pid)
    before = server.rss_kib()
    server.reset_peak_rss()
    cpu = server.cpu_seconds()
    started = time.perf_counter()
    await send()
    elapsed = time.perf_counter() - started
    peak = server.peak_rss_kib()
    result = Round(
        total / elapsed,
        (peak - before) * 1024 / MB,
        (server.cpu_seconds() - cpu) * 1000 / total,
        machine.others(),
    )
    log(
        f"    {name}: {len(files)} files, {total:.0f} MB in {elapsed:.2f} s,"
        f" {result.rate:.0f} MB/s; RSS {before * 1024 / MB:.0f} MB, peak +{result.growth:.1f}"
        f" MB; CPU {result.cpu_per_mb:.1f} ms/MB; others {result.others:.0%}"
    )
    return result


class Visitors:
    """Visitors of the relay, each with a thread, uploading one file each per round."""

    def __init__(self, relay: servers.Relay, http: httpx.AsyncClient, tokens: list[str]) -> None:
        self.relay = relay
        self.http = http
        self.tokens = tokens
        self.blobs = LocalBlobs.of_data_dir(relay.data_dir)
        self.stored = 0

    async def send(self, files: list[Upload], kind: str) -> None:
        answers = await asyncio.gather(
            *(self.one(token, f) for token, f in zip(self.tokens, files, strict=False))
        )
        for f, answer in zip(files, answers, strict=True):
            self.check(f, answer, kind)
        self.stored += len(files)

    async def one(self, token: str, f: Upload) -> dict[str, Any]:
        response = await self.http.post(
            "/v1/thread/attachments",
            files={"file": (f.name, f.content, f.mime)},
            headers=bearer(token),
        )
        if response.status_code != CREATED:
            raise RuntimeError(f"upload {f.name}: {response.status_code} {response.text[:200]}")
        answer: dict[str, Any] = response.json()
        return answer

    def check(self, f: Upload, answer: dict[str, Any], kind: str) -> None:
        """The answer says what was kept, and the blob is there with that size."""
        if answer["type"] != kind:
            raise RuntimeError(f"{f.name} was kept as {answer['type']}, not {kind}")
        if kind == "text/plain" and answer["size"] != len(f.content):
            raise RuntimeError(f"{f.name}: {answer['size']} bytes kept of {len(f.content)}")
        # Text is kept as sent: its blob is named by the digest of what we sent.
        blob = self.blobs.path(f.digest) if kind == "text/plain" else self.kept(answer["id"])
        if not blob.is_file() or blob.stat().st_size != answer["size"]:
            raise RuntimeError(f"{f.name}: no blob of {answer['size']} bytes at {blob}")

    def kept(self, attachment: str) -> Path:
        """The blob of a re-encoded upload, whose digest only the relay knows."""
        with contextlib.closing(self.database()) as db:
            row = db.execute("SELECT digest FROM attachments WHERE id = ?", (attachment,))
            return self.blobs.path(row.fetchone()[0])

    def count(self) -> int:
        with contextlib.closing(self.database()) as db:
            return int(db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0])

    def database(self) -> sqlite3.Connection:
        path = Config(data_dir=self.relay.data_dir).database_path
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


class Bare:
    """The same requests to the baseline, each body checked on its disk and removed."""

    def __init__(self, server: servers.Server, http: httpx.AsyncClient, directory: Path) -> None:
        self.server = server
        self.http = http
        self.directory = directory

    async def send(self, files: list[Upload]) -> None:
        await asyncio.gather(*(self.one(f) for f in files))

    async def one(self, f: Upload) -> None:
        request = self.http.build_request(
            "POST", "/upload", files={"file": (f.name, f.content, f.mime)}
        )
        response = await self.http.send(request)
        if response.status_code != CREATED:
            raise RuntimeError(f"bare upload: {response.status_code} {response.text[:200]}")
        path = self.directory / response.json()["name"]
        if path.stat().st_size != int(request.headers["content-length"]):
            raise RuntimeError(f"bare upload: {path.stat().st_size} bytes on disk")
        path.unlink()


def http_client(url: str, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        trust_env=False,
        timeout=HTTP_TIMEOUT,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def kept_mb(server: servers.Server, before: dict[int, int]) -> float:
    """RSS now minus RSS `before` (by pid): what the rounds left behind, in MB."""
    after = server.rss_kib()
    log(
        f"  pid {server.pid}: RSS {before[server.pid] * 1024 / MB:.0f} MB before the JPEG"
        f" rounds, {after * 1024 / MB:.0f} MB after"
    )
    return (after - before[server.pid]) * 1024 / MB


def median(rounds: list[Round], field: Callable[[Round], float]) -> float:
    return statistics.median(field(r) for r in rounds[1:])  # the warm-up is not counted


def largest_growth(rounds: list[Round]) -> float:
    return max(r.growth for r in rounds[1:])


def noise(*sides: list[Round]) -> str:
    return noisy(r.others for side in sides for r in side[1:])  # the warm-ups not counted


async def run() -> list[Row]:
    log(
        f"uploads: {ROUNDS} rounds per server (the first a warm-up) of {VISITORS} text files"
        f" of {TEXT_BYTES / MB:g} MB at once, then of {JPEGS} JPEGs of"
        f" {JPEG_SIZE[0]}×{JPEG_SIZE[1]}"
    )
    ours: dict[str, list[Round]] = {"text": [], "jpeg": []}
    bare: dict[str, list[Round]] = {"text": [], "jpeg": []}
    with tempfile.TemporaryDirectory(prefix="porch-bench-uploads-") as tmp:
        async with (
            servers.relay() as relay,
            servers.upload_server(Path(tmp)) as baseline,
            http_client(relay.http_url, VISITORS) as relay_http,
            http_client(baseline.http_url, VISITORS) as bare_http,
        ):
            visitors = Visitors(relay, relay_http, await clients.start_threads(relay, VISITORS))
            base = Bare(baseline, bare_http, Path(tmp))
            for n in range(ROUNDS):
                files = text_files(f"r{n}")
                send = functools.partial(visitors.send, files, "text/plain")
                ours["text"].append(await measure(relay, f"relay text r{n}", files, send))
                send = functools.partial(base.send, files)
                bare["text"].append(await measure(baseline, f"bare text r{n}", files, send))
            photos = jpeg_files()
            before = {relay.pid: relay.rss_kib(), baseline.pid: baseline.rss_kib()}
            for n in range(ROUNDS):
                send = functools.partial(visitors.send, photos, "image/jpeg")
                ours["jpeg"].append(await measure(relay, f"relay jpeg r{n}", photos, send))
                send = functools.partial(base.send, photos)
                bare["jpeg"].append(await measure(baseline, f"bare jpeg r{n}", photos, send))
            kept = {server.pid: kept_mb(server, before) for server in (relay, baseline)}
            if visitors.count() != visitors.stored:
                raise RuntimeError(f"{visitors.count()} attachments stored, not {visitors.stored}")
            left = list(visitors.blobs.scratch.iterdir())
            if left:
                raise RuntimeError(f"{len(left)} scratch files left in {visitors.blobs.scratch}")

    text, text_bare = ours["text"], bare["text"]
    jpeg, jpeg_bare = ours["jpeg"], bare["jpeg"]
    return [
        Row(
            f"uploads, {VISITORS} × {TEXT_BYTES / MB:g} MB text at once (MB/s)",
            median(text, lambda r: r.rate),
            "MB/s",
            median(text_bare, lambda r: r.rate),
            at_least_ratio(0.5, "bare streaming server"),
            noise(text, text_bare),
        ),
        Row(
            "  relay RSS growth during uploads (MB)",
            largest_growth(text),
            "MB",
            largest_growth(text_bare),
            at_most(RSS_TARGET_MB, "MB"),
            f"buffering would take {VISITORS * TEXT_BYTES / MB:.0f} MB",
        ),
        Row(
            "  server CPU per MB uploaded (ms)",
            median(text, lambda r: r.cpu_per_mb),
            "ms",
            median(text_bare, lambda r: r.cpu_per_mb),
        ),
        Row(
            f"uploads, {JPEGS} × 12-megapixel JPEG at once (MB/s)",
            median(jpeg, lambda r: r.rate),
            "MB/s",
            median(jpeg_bare, lambda r: r.rate),
            note=noise(jpeg, jpeg_bare),
        ),
        Row(
            "  relay RSS growth, JPEGs re-encoded (MB)",
            largest_growth(jpeg),
            "MB",
            largest_growth(jpeg_bare),
        ),
        Row(
            # The bare server keeps nothing (±1 MB, logged): a ratio to it would be noise.
            "  relay RSS kept after the JPEG rounds (MB)",
            kept[relay.pid],
            "MB",
        ),
    ]
