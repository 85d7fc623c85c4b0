"""The IMAP ingress: replies land in an existing mailbox (no MX change needed) and a
poller inside the relay hands each new one to the pipeline.

    connect → LOGIN → SELECT folder → loop:
        SEARCH what we have not processed → FETCH each → pipeline → flag (or move) it
        IDLE until the server announces new mail (EXISTS) or IDLE_SECONDS pass

PORCH_IMAP_URL is imaps://user:password@host[:993]/FOLDER[?move=DONE_FOLDER] (imap://
for plain IMAP on port 143; user and password percent-encoded). A processed message is
flagged \\Seen and $PorchDone, and moved to DONE_FOLDER when one is named. Connection
errors end the session; the poller reconnects with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import ssl
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import aioimaplib  # type: ignore[import-untyped,unused-ignore]

from relay.channels.backoff import equal_jitter
from relay.channels.email.inbound import Pipeline
from relay.channels.email.smtp_ingress import MAX_MESSAGE_BYTES

log = logging.getLogger("porch.imap")
T = TypeVar("T")

# RFC 2177: a server may drop a client idle for 30 minutes, so IDLE is re-issued at
# least every 29; 25 leaves room for slow links and clock drift.
IDLE_SECONDS = 25 * 60.0
# Servers without IDLE (rare) are searched this often instead.
POLL_SECONDS = 60.0
# One command's answer, or the server's greeting; a large FETCH resets it as data comes.
COMMAND_TIMEOUT = 30.0
# Reconnect after 1, 2, 4 … seconds (each with jitter, so that many relays restarted
# together do not hit the server in step), never waiting more than 5 minutes.
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
# Only mail delivered this recently is looked at: connected to a mailbox with years of
# history, the poller would otherwise download all of it once. A reply held up longer
# than this (the relay down for two weeks) is stale anyway.
LOOKBACK_DAYS = 14
# A message on which the pipeline itself failed this often (a bug, not a network error)
# is left alone until the relay restarts, so that it cannot block the mail behind it.
MAX_ATTEMPTS = 3
# The keyword that marks a message as processed. Searching for its absence rather than
# for UNSEEN still finds a reply that someone read in a mail client before we did.
DONE_KEYWORD = "$PorchDone"
DEFAULT_FOLDER = "INBOX"
PORTS = {"imap": 143, "imaps": 993}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

EXISTS = re.compile(rb"^\d+ EXISTS$")
BODY_LITERAL = re.compile(rb"BODY\[\](?:<\d+>)? \{(\d+)\}$")
UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
PERMANENTFLAGS = re.compile(rb"\[PERMANENTFLAGS \(([^)]*)\)\]")


class MailboxError(Exception):
    """The server said NO or BAD, or answered something we cannot use."""


@dataclass(frozen=True)
class Mailbox:
    tls: bool
    host: str
    port: int
    user: str
    password: str = ""
    folder: str = DEFAULT_FOLDER
    move_to: str | None = None

    @classmethod
    def parse(cls, url: str) -> Mailbox:
        """imaps://user:pass@host:993/INBOX?move=Porch; ValueError says what is wrong."""
        parts = urlsplit(url)
        if parts.scheme not in PORTS:
            raise ValueError(f"PORCH_IMAP_URL: expected imap:// or imaps://, got {parts.scheme!r}")
        if not parts.hostname or not parts.username:
            raise ValueError(
                "PORCH_IMAP_URL: expected imaps://user:password@host/FOLDER, got no user or no host"
            )
        try:
            port = parts.port or PORTS[parts.scheme]
        except ValueError:
            where = parts.netloc.rpartition("@")[2]  # never the password
            raise ValueError(f"PORCH_IMAP_URL: expected host:port, got {where!r}") from None
        folder = unquote(parts.path.lstrip("/")) or DEFAULT_FOLDER
        moves = parse_qs(parts.query).get("move")
        move_to = moves[-1] if moves else None
        for name in (folder, move_to or ""):
            if not name.isascii() or any(c in name for c in "\r\n\0"):
                raise ValueError(f"PORCH_IMAP_URL: expected an ASCII folder name, got {name!r}")
        return cls(
            tls=parts.scheme == "imaps",
            host=parts.hostname,
            port=port,
            user=unquote(parts.username),
            password=unquote(parts.password or ""),
            folder=folder,
            move_to=move_to,
        )

    def __str__(self) -> str:  # for logs: never the password
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.folder}"


async def poll_mailbox(pipeline: Pipeline, url: str, *, idle_seconds: float = IDLE_SECONDS) -> None:
    """Run forever: process the mailbox's new mail, reconnecting after any failure."""
    mailbox = Mailbox.parse(url)
    if not mailbox.tls and not _loopback(mailbox.host):
        log.warning("imap: %s is plain IMAP: the password crosses the network unencrypted", mailbox)
    await Poller(pipeline, mailbox, idle_seconds).run()


class Poller:
    def __init__(self, pipeline: Pipeline, mailbox: Mailbox, idle_seconds: float) -> None:
        self.pipeline = pipeline
        self.mailbox = mailbox
        self.idle_seconds = idle_seconds
        self.failures: Counter[tuple[int, int]] = Counter()  # (uidvalidity, uid) -> errors

    async def run(self) -> None:
        attempt = 0
        while True:
            session = Session(self)
            try:
                await session.run()
            except (OSError, TimeoutError, aioimaplib.AioImapException, MailboxError) as error:
                reason = f"{type(error).__name__}: {error}".rstrip(": ")
            except Exception as error:  # a bug must not stop the mail: log it, go on
                log.exception("imap: unexpected error on %s", self.mailbox)
                reason = type(error).__name__
            # A session that worked (it processed the mailbox) starts the backoff again; one
            # that fails before that, every time, is retried ever more slowly.
            attempt = 1 if session.healthy else attempt + 1
            delay = backoff(attempt)
            log.info("imap: %s: %s; reconnecting in %.1f s", self.mailbox, reason, delay)
            await asyncio.sleep(delay)


def backoff(attempt: int) -> float:
    """Seconds to wait before reconnect number `attempt` (1, 2, …): "equal jitter"."""
    ceiling = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(attempt - 1, 30))
    return equal_jitter(ceiling)


class Session:
    """One connection: from LOGIN until the first error."""

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self.mailbox = poller.mailbox
        self.healthy = False  # true once the mailbox was read through
        self.lost = asyncio.Event()
        self.done: set[int] = set()  # processed in this session, whatever the server says
        self.client: Any = None
        self.keywords = False  # whether the folder takes our DONE_KEYWORD
        self.validity = 0  # UIDVALIDITY: UIDs mean the same messages while it stays

    async def run(self) -> None:
        try:
            await self.open()
            while True:
                await self.drain()
                self.healthy = True
                await self.wait_for_mail()
        finally:
            self.hang_up()

    async def open(self) -> None:
        """Connect, log in and select the folder."""
        mailbox = self.mailbox
        self.client = aioimaplib.IMAP4(
            host=mailbox.host,
            port=mailbox.port,
            timeout=COMMAND_TIMEOUT,
            conn_lost_cb=lambda error: self.lost.set(),
            ssl_context=ssl.create_default_context() if mailbox.tls else None,
        )
        await self.call("connect", self.client.wait_hello_from_server(), check=False)
        await self.call(
            "LOGIN", self.client.login(aioimaplib.quoted(mailbox.user), mailbox.password)
        )
        if mailbox.move_to:  # NO when it exists already, which is fine
            await self.call("CREATE", self.client.create(_quote(mailbox.move_to)), check=False)
        selected = await self.call("SELECT", self.client.select(_quote(mailbox.folder)))
        self.keywords = _keywords_allowed(selected.lines)
        self.validity = _uidvalidity(selected.lines)
        log.info("imap: watching %s", mailbox)

    async def drain(self) -> None:
        """Process everything not yet processed, until a search finds nothing new."""
        since = (datetime.now(UTC) - timedelta(days=LOOKBACK_DAYS)).date()
        todo = ("UNKEYWORD", DONE_KEYWORD) if self.keywords else ("UNSEEN",)
        criteria = (
            "UNDELETED",
            *todo,
            "SINCE",
            f"{since.day}-{MONTHS[since.month - 1]}-{since.year}",
        )
        while True:
            # Mail delivered since our last command is not in this SEARCH's result: the
            # server announces it (EXISTS) only as the SEARCH ends, and aioimaplib drops
            # that line. A NOOP sent right behind the SEARCH (gather starts them in order)
            # collects it; without it, that mail would wait for the next IDLE timeout.
            found, noop = await asyncio.gather(
                self.call("SEARCH", self.client.uid_search(*criteria, charset=None)),
                self.call("NOOP", self.client.noop()),
            )
            uids = [
                uid
                for uid in _uids(found.lines)
                if uid not in self.done and self.poller.failures[self.validity, uid] < MAX_ATTEMPTS
            ]
            for uid in sorted(uids):
                await self.process(uid)
            if not uids and not any(EXISTS.match(line) for line in _lines(noop.lines)):
                return

    async def process(self, uid: int) -> None:
        # PEEK leaves \Seen alone: if the pipeline fails, the message looks untouched.
        part = f"(BODY.PEEK[]<0.{MAX_MESSAGE_BYTES + 1}>)"
        fetched = await self.call("FETCH", self.client.uid("fetch", str(uid), part))
        raw = _literal(fetched.lines)
        if raw is None:  # expunged by someone else since the search
            self.done.add(uid)
            return
        if len(raw) > MAX_MESSAGE_BYTES:
            log.info("imap: message %s over %s bytes, not read", uid, MAX_MESSAGE_BYTES)
        else:
            try:
                outcome = await self.poller.pipeline.receive(raw, source="imap")
            except Exception:
                self.poller.failures[self.validity, uid] += 1
                raise
            if outcome.temporary:  # left unmarked: the next pass delivers it again
                return
        await self.mark_done(uid)
        self.done.add(uid)

    async def mark_done(self, uid: int) -> None:
        flags = f"(\\Seen {DONE_KEYWORD})" if self.keywords else "(\\Seen)"
        await self.call("STORE", self.client.uid("store", str(uid), "+FLAGS.SILENT", flags))
        target = self.mailbox.move_to
        if target is None:
            return
        if self.client.has_capability("MOVE"):
            await self.call("MOVE", self.client.uid("move", str(uid), _quote(target)))
            return
        await self.call("COPY", self.client.uid("copy", str(uid), _quote(target)))
        await self.call("STORE", self.client.uid("store", str(uid), "+FLAGS.SILENT", "(\\Deleted)"))
        if self.client.has_capability("UIDPLUS"):  # else it stays, flagged \Deleted
            await self.call("EXPUNGE", self.client.uid("expunge", str(uid)))

    async def wait_for_mail(self) -> None:
        """IDLE until the server announces new mail, or until it is time to re-issue."""
        if not self.client.has_capability("IDLE"):
            await self.unless_lost(asyncio.sleep(POLL_SECONDS))
            return
        timeout = self.poller.idle_seconds
        idle = await self.call("IDLE", self.client.idle_start(timeout=timeout), check=False)
        try:
            while self.client.has_pending_idle():
                # aioimaplib pushes STOP_WAIT_SERVER_PUSH itself when `timeout` is up.
                pushed = await self.unless_lost(
                    self.client.wait_server_push(timeout=timeout + COMMAND_TIMEOUT)
                )
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH or any(
                    EXISTS.match(line) for line in _lines(pushed)
                ):
                    break
        finally:
            if self.client.has_pending_idle() and not self.lost.is_set():
                self.client.idle_done()
        await self.call("IDLE", asyncio.wait_for(idle, COMMAND_TIMEOUT))

    async def call(self, what: str, work: Awaitable[Any], *, check: bool = True) -> Any:
        """Await one command, failing fast if the connection drops; NO/BAD raise."""
        response = await self.unless_lost(work)
        if check and getattr(response, "result", None) != "OK":
            text = b" ".join(_lines(getattr(response, "lines", []))).decode(errors="replace")
            raise MailboxError(f"{what}: expected OK, got {response.result} {text}".strip())
        return response

    async def unless_lost(self, work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        gone = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, gone):
                pending.cancel()  # no-op for the one that finished
        if task.done() and not task.cancelled():
            return task.result()
        raise ConnectionError("the server closed the connection")

    def hang_up(self) -> None:
        if self.client is None:
            return
        for task in [*self.client.tasks, *self.client.protocol.tasks]:
            task.cancel()
        transport = self.client.protocol.transport
        if transport is not None:
            transport.close()


def _quote(name: str) -> str:
    return str(aioimaplib.quoted(name))


def _lines(lines: Sequence[Any]) -> list[bytes]:
    return [bytes(line) for line in lines if isinstance(line, bytes | bytearray)]


def _uids(lines: Sequence[Any]) -> list[int]:
    # Every line but the last (the tagged "Search completed") lists UIDs.
    return [int(word) for line in _lines(lines[:-1]) for word in line.split() if word.isdigit()]


def _literal(lines: Sequence[Any]) -> bytes | None:
    """The message bytes in a FETCH answer: the literal after `BODY[]<0> {N}`."""
    for line, following in zip(lines, lines[1:], strict=False):
        match = BODY_LITERAL.search(line) if isinstance(line, bytes) else None
        if match and isinstance(following, bytes | bytearray):
            if len(following) != int(match[1]):
                raise MailboxError(
                    f"FETCH: expected {match[1].decode()} bytes, got {len(following)}"
                )
            return bytes(following)
    return None


def _keywords_allowed(lines: Sequence[Any]) -> bool:
    """Whether SELECT's PERMANENTFLAGS lets us set our own keyword (\\* or it is there)."""
    for line in _lines(lines):
        match = PERMANENTFLAGS.search(line)
        if match:
            flags = match[1].split()
            return b"\\*" in flags or DONE_KEYWORD.encode() in flags
    return False


def _uidvalidity(lines: Sequence[Any]) -> int:
    for line in _lines(lines):
        match = UIDVALIDITY.search(line)
        if match:
            return int(match[1])
    return 0


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
