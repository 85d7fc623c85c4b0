"""A real DNS server on loopback (dnslib), UDP and TCP on one ephemeral port, answering
from records a test sets: NXDOMAIN for any other name, SERVFAIL for names marked failing,
and no answer at all for names marked silent (a timeout, for the client).

    with FakeDns() as dns:
        dns.txt("_dmarc.example.com", "v=DMARC1; p=reject")
        Resolver([dns.address])
"""

from __future__ import annotations

import threading
from collections import Counter
from types import TracebackType
from typing import Any, Self

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSLogger, DNSServer

TTL = 300
TXT_CHUNK = 255  # bytes in one character-string of a TXT record (RFC 1035 §3.3.14)
POLL_SECONDS = 0.01
BIND_ATTEMPTS = 20  # a free UDP port may be taken for TCP; another is tried


class FakeDns:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], list[Any]] = {}
        self._failing: set[str] = set()
        self._silent: set[str] = set()
        self.queries: Counter[tuple[str, str]] = Counter()  # (name, type): times asked
        self._servers: list[DNSServer] = []
        self.port = 0

    @property
    def address(self) -> str:
        """What Resolver takes: "127.0.0.1:PORT"."""
        return f"127.0.0.1:{self.port}"

    def txt(self, name: str, *records: str | bytes) -> None:
        """TXT records at `name`, long ones split into 255-byte strings as DNS needs."""
        for record in records:
            data = record.encode() if isinstance(record, str) else record
            chunks = [data[i : i + TXT_CHUNK] for i in range(0, len(data), TXT_CHUNK)]
            self._add(name, "TXT", TXT(chunks or [b""]))

    def a(self, name: str, *addresses: str) -> None:
        for address in addresses:
            if ":" in address:
                self._add(name, "AAAA", AAAA(address))
            else:
                self._add(name, "A", A(address))

    def mx(self, name: str, host: str, preference: int = 10) -> None:
        self._add(name, "MX", MX(host, preference))

    def fail(self, name: str) -> None:
        """SERVFAIL for every question about `name`."""
        with self._lock:
            self._failing.add(_key(name))

    def recover(self, name: str) -> None:
        """Answer questions about `name` again, after fail()."""
        with self._lock:
            self._failing.discard(_key(name))

    def silence(self, name: str) -> None:
        """No answer at all for `name`: the client times out."""
        with self._lock:
            self._silent.add(_key(name))

    def asked(self, kind: str | None = None) -> int:
        """Questions received, of one type or all."""
        with self._lock:
            return sum(n for (_, qtype), n in self.queries.items() if kind in (None, qtype))

    def _add(self, name: str, kind: str, rdata: Any) -> None:
        with self._lock:
            self._records.setdefault((_key(name), kind), []).append(rdata)

    # dnslib's resolver interface: one call per question, from the server's threads.
    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        name, kind = _key(str(request.q.qname)), QTYPE[request.q.qtype]
        reply = request.reply()
        with self._lock:
            self.queries[(name, kind)] += 1
            if name in self._silent:
                raise DNSError(f"silenced: {name}")  # the handler then sends nothing
            if name in self._failing:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            found = self._records.get((name, kind), [])
            exists = any(known == name for known, _ in self._records)
        for rdata in found:
            reply.add_answer(RR(request.q.qname, getattr(QTYPE, kind), rdata=rdata, ttl=TTL))
        if not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply

    def start(self) -> None:
        quiet = DNSLogger(logf=lambda _: None)
        for _ in range(BIND_ATTEMPTS):
            udp = DNSServer(self, address="127.0.0.1", port=0, logger=quiet)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self, address="127.0.0.1", port=port, tcp=True, logger=quiet)
            except OSError:
                udp.server.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                # serve_forever looks for a stop request this often: stop() waits for it.
                threading.Thread(
                    target=server.server.serve_forever,
                    kwargs={"poll_interval": POLL_SECONDS},
                    daemon=True,
                ).start()
            return
        raise RuntimeError(f"fake DNS: no port free for both UDP and TCP in {BIND_ATTEMPTS} tries")

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()  # returns once its serving thread has left the loop
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _key(name: str) -> str:
    return name.lower().rstrip(".")
