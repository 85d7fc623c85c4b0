"""A real IMAP server for tests: Debian's Dovecot on a loopback port, with its own config,
mail and logs in a temporary directory, started in the foreground as our child process.

Any user name logs in with PASSWORD, each user with a mailbox of its own, so every test
can take a fresh user instead of a fresh server.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
OPENSSL = "/usr/bin/openssl"
PACKAGE = "dovecot-imapd"
PASSWORD = "secret"
STARTUP_TIMEOUT = 10.0  # seconds; Dovecot answers in well under one
INSTALL_TIMEOUT = 300.0  # seconds for apt-get, which may have to download
POLL_INTERVAL = 0.02  # seconds between checks while waiting for a state

# Dovecot refuses to run its login and mail processes as root: as root we use the users
# the Debian package creates and nobody:nogroup for mail; as anyone else, ourselves.
ROOT_CONFIG = """
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
"""
USER_CONFIG = """
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
"""
CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
{tls}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{dir}/mail/%u
first_valid_uid = 0
# Shows "IDLE" in the imap process title while a client idles: tests wait for that.
verbose_proctitle = yes
{users}
service imap-login {{
  inet_listener {listener} {{
    address = 127.0.0.1
    port = {port}
    ssl = {listener_ssl}
  }}
}}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%u
}}
"""


# With tls=True: a certificate made for 127.0.0.1 at start, that clients must be told
# to trust (its file is Dovecot.certificate).
TLS_CONFIG = """
ssl = required
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
"""


class Unavailable(Exception):
    """Dovecot is not installed and cannot be installed here; says why."""


def ensure_installed() -> None:
    """Install Dovecot with apt-get when it is missing and we may (as root)."""
    if Path(DOVECOT).exists():
        return
    if os.geteuid() != 0:
        raise Unavailable(f"{DOVECOT} is missing; `apt-get install -y {PACKAGE}` needs root")
    for command in (
        ["apt-get", "install", "-y", PACKAGE],
        ["apt-get", "update"],
        ["apt-get", "install", "-y", PACKAGE],
    ):
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode == 0 and Path(DOVECOT).exists():
            return
    raise Unavailable(f"apt-get install {PACKAGE} failed:\n{done.stdout}\n{done.stderr}")


class Dovecot:
    def __init__(self, port: int, *, tls: bool = False) -> None:
        self.port = port
        self.tls = tls
        self.dir = Path(tempfile.mkdtemp(prefix="porch-dovecot-"))
        self.config = self.dir / "dovecot.conf"
        self.certificate = self.dir / "cert.pem"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Dovecot:
        # Dovecot's unprivileged processes must be able to reach the mail below DIR.
        self.dir.chmod(0o755)
        (self.dir / "mail").mkdir()
        if os.geteuid() == 0:
            users, uid, gid = ROOT_CONFIG, "nobody", "nogroup"
            shutil.chown(self.dir / "mail", "nobody", "nogroup")
        else:
            me = pwd.getpwuid(os.geteuid())
            users = USER_CONFIG.format(user=me.pw_name, group=_group_name(me.pw_gid))
            uid, gid = str(me.pw_uid), str(me.pw_gid)
        if self.tls:
            self._make_certificate()
        self.config.write_text(
            CONFIG.format(
                dir=self.dir,
                port=self.port,
                users=users,
                uid=uid,
                gid=gid,
                password=PASSWORD,
                tls=TLS_CONFIG.format(dir=self.dir) if self.tls else "ssl = no",
                listener="imaps" if self.tls else "imap",
                listener_ssl="yes" if self.tls else "no",
            )
        )
        # -F: stay in the foreground, so the server is our child and stops with it.
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._greets():
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(
                    f"dovecot exited with {self.process.returncode}: {stderr}\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"dovecot did not answer on port {self.port} within "
                    f"{STARTUP_TIMEOUT} s\n{self.log()}"
                )
            time.sleep(POLL_INTERVAL)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STARTUP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, user: str, folder: str = "INBOX", query: str = "") -> str:
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{user}:{PASSWORD}@127.0.0.1:{self.port}/{folder}{query}"

    def client_context(self) -> ssl.SSLContext:
        """Verifies the server as a careful client does, trusting our certificate."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    @contextlib.contextmanager
    def connect(self, user: str) -> imaplib.IMAP4:  # type: ignore[misc]
        """A logged-in imaplib client, logged out after."""
        client = (
            imaplib.IMAP4_SSL(
                "127.0.0.1", self.port, ssl_context=self.client_context(), timeout=STARTUP_TIMEOUT
            )
            if self.tls
            else imaplib.IMAP4("127.0.0.1", self.port, timeout=STARTUP_TIMEOUT)
        )
        try:
            client.login(user, PASSWORD)
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a message as a mail server would leave it: unseen, no flags."""
        with self.connect(user) as client:
            when = imaplib.Time2Internaldate(time.time())
            status, _ = client.append(f'"{folder}"', "", when, raw)
            assert status == "OK", f"APPEND to {user}/{folder} failed: {status}"

    def flags(self, user: str, folder: str = "INBOX") -> list[set[str]]:
        """The flags of every message in the folder, in order."""
        with self.connect(user) as client:
            status, count = client.select(f'"{folder}"', readonly=True)  # imaplib won't quote
            assert status == "OK", f"SELECT {folder} failed for {user}: {count}"
            if count == [b"0"]:  # FETCH 1:* of an empty folder is an error
                return []
            status, data = client.fetch("1:*", "(FLAGS)")
            assert status == "OK", f"FETCH in {folder} failed for {user}: {data}"
        # \Recent only says which session saw the message first: not ours to check.
        return [
            {flag.decode() for flag in imaplib.ParseFlags(line)} - {"\\Recent"}
            for line in data
            if isinstance(line, bytes)
        ]

    def idling(self, user: str) -> bool:
        """Whether an imap process of `user` is inside IDLE right now (its process title
        says so, thanks to verbose_proctitle)."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "imap" in title and f"[{user} " in title and "IDLE" in title:
                return True
        return False

    def kick(self, user: str) -> None:
        """Drop every IMAP connection of `user`, as a server restart would."""
        done = subprocess.run(
            [DOVEADM, "-c", str(self.config), "kick", user],
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
        )
        assert done.returncode == 0, f"doveadm kick failed: {done.stderr}"

    def _greets(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                if not self.tls:
                    return sock.recv(64).startswith(b"* OK")
                with self.client_context().wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                    return tls.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def _make_certificate(self) -> None:
        done = subprocess.run(
            [
                OPENSSL,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(self.dir / "key.pem"),
                "-out",
                str(self.certificate),
            ],
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
        )
        assert done.returncode == 0, f"openssl could not make a certificate: {done.stderr}"


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def wait_until(check: object, what: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """Poll `check()` until it is true; fail saying what did not happen."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL_INTERVAL)
