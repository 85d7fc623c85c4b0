"""One frozen Config, declared once: each setting has a default, a help line, an
environment variable (PORCH_<NAME>) and a CLI flag (--name-with-dashes).

The README's settings table is checked against SETTINGS by tests/test_config.py.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from relay.clock import Clock, parse_instant
from relay.errors import ConfigError
from relay.inputs import normalize_origin


def setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Config:
    data_dir: Path = setting(
        Path("porch-data"), "Directory for the SQLite database and demo files."
    )
    database: Path | None = setting(None, "SQLite file; default DATA_DIR/porch.sqlite3.")
    database_url: str = setting(
        "", "PostgreSQL instead of SQLite: postgresql://user:pass@host:5432/dbname."
    )
    host: str = setting("127.0.0.1", "Interface the relay listens on.")
    port: int = setting(8000, "TCP port the relay listens on.")
    public_url: str = setting("", "URL visitors reach the relay at; default http://HOST:PORT.")
    secret_keys: tuple[str, ...] = setting(
        (), "Comma-separated signing keys, newest first; older ones still verify."
    )
    max_body_chars: int = setting(4000, "Longest message body accepted, in characters.")
    max_request_bytes: int = setting(65536, "Largest HTTP request body accepted, in bytes.")
    ws_max_frame_bytes: int = setting(65536, "Largest WebSocket frame accepted, in bytes.")
    ws_frames_per_minute: int = setting(
        300,
        "Frames one live socket may send per minute (messages, typing, reads, pings); past "
        "it the socket is closed with 4429.",
    )
    visitor_messages_per_minute: int = setting(20, "Messages one visitor may send per minute.")
    ip_messages_per_minute: int = setting(60, "Messages one IP address may send per minute.")
    threads_per_ip_per_hour: int = setting(10, "New conversations one IP may start per hour.")
    visitor_uploads_per_minute: int = setting(
        60, "Photos and files one visitor may upload per minute (a message carries up to 10)."
    )
    suggestions_per_minute: int = setting(
        120, "Answer suggestions one IP may ask for per minute (the widget, while typing)."
    )
    forwarded_allow_ips: str = setting(
        "", "Proxy addresses trusted for X-Forwarded-For (comma-separated, '*' for any)."
    )
    sqlite_synchronous: str = setting(
        "FULL", "SQLite synchronous pragma: FULL survives power loss, NORMAL only crashes."
    )
    log_level: str = setting("info", "Log level: debug, info, warning, error.")
    smtp_url: str = setting(
        "", "Outgoing mail server: smtp://user:pass@host:587 (STARTTLS) or smtps://…:465."
    )
    mail_from: str = setting("", "Sender address of notifications; default notify@REPLY_DOMAIN.")
    reply_domain: str = setting("", "Domain of reply addresses (r+TAG@REPLY_DOMAIN).")
    smtp_port: int = setting(0, "Port of the inbound SMTP listener for replies (0: off).")
    imap_url: str = setting("", "Mailbox polled for replies: imaps://user:pass@host/INBOX.")
    owner_notify_delay: int = setting(
        20, "Seconds to gather a visitor's consecutive messages into one email."
    )
    visitor_notify_delay: int = setting(
        300, "Seconds an owner reply may stay unseen before it is emailed to the visitor."
    )
    reply_tag_days: int = setting(
        90,
        "Days a conversation may go without a message before its reply addresses stop "
        "working (0: never).",
    )
    dns_servers: tuple[str, ...] = setting(
        (),
        "Nameservers (IP or IP:port, comma-separated) for checking who sent inbound mail "
        "(DKIM, SPF, DMARC); default: the system's.",
    )
    trusted_authserv_ids: tuple[str, ...] = setting(
        (),
        "authserv-ids of the servers whose Authentication-Results headers are believed "
        "(your mailbox's or inbound provider's), comma-separated.",
    )
    inbound_secret: str = setting("", "HMAC key for POST /v1/inbound/raw (edge mail workers).")
    inbound_basic_auth: str = setting(
        "", "user:password for the Postmark and SendGrid inbound webhooks."
    )
    mailgun_signing_key: str = setting("", "Mailgun webhook signing key.")
    telegram_api_url: str = setting(
        "https://api.telegram.org", "Telegram Bot API base URL (a proxy, or a fake in tests)."
    )
    meta_api_url: str = setting(
        "https://graph.facebook.com/v21.0",
        "Meta Graph API base URL with its pinned version (WhatsApp, Messenger).",
    )
    app_send_timeout: int = setting(
        15, "Seconds one call to a messaging app's API may take before it is retried."
    )
    push_endpoint_allow: tuple[str, ...] = setting(
        (),
        "Comma-separated origins pushes may go to although not public HTTPS addresses "
        "(a private push service, tests).",
    )
    visitor_push_delay: int = setting(
        60,
        "Seconds an owner reply may stay unread before it is pushed to the visitor (0: at once).",
    )
    push_subject: str = setting(
        "",
        "Contact push services may reach (mailto: or https: URL); default mailto:MAIL_FROM, "
        "else the https PUBLIC_URL.",
    )
    clock_start: str = setting(
        "", "Start the clock of business hours at this ISO-8601 instant (tests, demos)."
    )

    @property
    def clock(self) -> Clock:
        return Clock(parse_instant(self.clock_start) if self.clock_start else None)

    @property
    def mail_enabled(self) -> bool:
        return bool(self.smtp_url)

    @property
    def mail_sender(self) -> str:
        return self.mail_from or f"notify@{self.reply_domain}"

    @property
    def push_allow(self) -> frozenset[str]:
        """PUSH_ENDPOINT_ALLOW as normalised origins (what relay/push/endpoints.py compares)."""
        return frozenset(normalize_origin(origin) for origin in self.push_endpoint_allow)

    @property
    def push_contact(self) -> str:
        """The VAPID `sub` (RFC 8292 section 2.1): who a push service may write to about
        our pushes. Without PUSH_SUBJECT: the address notifications come from, else the
        relay's https URL, else notify@ its host (enough for the claim's syntax)."""
        if self.push_subject:
            return self.push_subject
        if self.mail_from or self.reply_domain:
            return f"mailto:{self.mail_sender}"
        if self.base_url.startswith("https://"):
            return self.base_url
        return f"mailto:notify@{urlsplit(self.base_url).hostname or 'localhost'}"

    @property
    def database_path(self) -> Path:
        return self.database or self.data_dir / "porch.sqlite3"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def load(cls, environ: Mapping[str, str], **overrides: Any) -> Config:
        """Build from PORCH_* variables, then overrides (CLI flags, tests) on top.

        Every value is checked; the error names the setting and the bad value.
        """
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            env_name = env_var(f.name)
            if env_name in environ:
                values[f.name] = parse_value(f, environ[env_name], env_name)
        for name, value in overrides.items():
            if value is None:
                continue
            f = FIELDS[name]
            values[name] = parse_value(f, value, flag(name)) if isinstance(value, str) else value
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        for name in (
            "port",
            "max_body_chars",
            "max_request_bytes",
            "ws_max_frame_bytes",
            "ws_frames_per_minute",
            "visitor_messages_per_minute",
            "ip_messages_per_minute",
            "threads_per_ip_per_hour",
            "suggestions_per_minute",
            "visitor_uploads_per_minute",
            "owner_notify_delay",
            "visitor_notify_delay",
            "app_send_timeout",
            "visitor_push_delay",
            "reply_tag_days",
        ):
            value = getattr(self, name)
            if value < 0 or (value == 0 and name not in ZERO_ALLOWED) or value > 2**31:
                raise ConfigError(f"{env_var(name)}: expected a positive number, got {value!r}")
        if self.smtp_port < 0 or self.smtp_port > 65535:
            raise ConfigError(
                f"{env_var('smtp_port')}: expected a port up to 65535, got {self.smtp_port}"
            )
        if self.smtp_url:
            _check_server_url("smtp_url", self.smtp_url, ("smtp", "smtps"))
        if self.imap_url:
            _check_server_url("imap_url", self.imap_url, ("imap", "imaps"))
        if self.database_url:
            _check_server_url("database_url", self.database_url, ("postgresql", "postgres"))
        if (self.smtp_url or self.smtp_port or self.imap_url) and not self.reply_domain:
            raise ConfigError(
                f"{env_var('reply_domain')} is needed for email: replies come "
                "back to r+TAG@REPLY_DOMAIN"
            )
        # Both end up in address headers (relay/mail/compose.py): plain addresses only.
        if self.mail_from:
            _check_address(
                "mail_from", self.mail_from, self.mail_from, "a plain address like notify@x.com"
            )
        if self.reply_domain:
            _check_address(
                "reply_domain", f"r+t@{self.reply_domain}", self.reply_domain, "a domain name"
            )
        if self.inbound_basic_auth and ":" not in self.inbound_basic_auth:
            raise ConfigError(f"{env_var('inbound_basic_auth')}: expected user:password")
        if self.port > 65535:
            raise ConfigError(f"{env_var('port')}: expected a port up to 65535, got {self.port}")
        if self.sqlite_synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ConfigError(
                f"{env_var('sqlite_synchronous')}: expected FULL, NORMAL or EXTRA, "
                f"got {self.sqlite_synchronous!r}"
            )
        if self.log_level not in {"debug", "info", "warning", "error"}:
            raise ConfigError(
                f"{env_var('log_level')}: expected debug, info, warning or error, "
                f"got {self.log_level!r}"
            )
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{env_var('public_url')}: expected an http(s) URL, got {self.public_url!r}"
            )
        for name in ("telegram_api_url", "meta_api_url"):
            if not getattr(self, name).startswith(("http://", "https://")):
                raise ConfigError(
                    f"{env_var(name)}: expected an http(s) URL, got {getattr(self, name)!r}"
                )
        for origin in self.push_endpoint_allow:
            try:
                normalize_origin(origin)
            except ValueError as error:
                raise ConfigError(f"{env_var('push_endpoint_allow')}: {error}") from None
        for server in self.dns_servers:
            _check_nameserver(server)
        if self.push_subject:
            _check_push_subject(self.push_subject)
        if self.clock_start:
            try:
                parse_instant(self.clock_start)
            except ValueError as error:
                raise ConfigError(f"{env_var('clock_start')}: {error}") from None
        for key in self.secret_keys:
            if len(key) < 32:
                raise ConfigError(
                    f"{env_var('secret_keys')}: each key needs at least 32 characters, "
                    f"got one of {len(key)}; make one with `porch keygen`"
                )


def _check_nameserver(server: str) -> None:
    """An IP address, optionally with a port: "9.9.9.9", "127.0.0.1:5353", "[::1]:53"."""
    host, port = server, "53"
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif server.count(":") == 1:
        host, port = server.split(":")
    try:
        ipaddress.ip_address(host)
        if not 0 < int(port) < 65536:
            raise ValueError(port)
    except ValueError:
        raise ConfigError(
            f"{env_var('dns_servers')}: expected IP or IP:port, got {server!r}"
        ) from None


# Settings where 0 means "off" or "any free port".
ZERO_ALLOWED = {
    "port",
    "owner_notify_delay",
    "visitor_notify_delay",
    "visitor_push_delay",
    "reply_tag_days",
}

FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _check_address(name: str, address: str, given: str, expected: str) -> None:
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError):  # the stdlib's parser raises either
        raise ConfigError(f"{env_var(name)}: expected {expected}, got {given!r}") from None


def _check_push_subject(subject: str) -> None:
    """mailto:<plain address> or an https URL: what push services take as VAPID `sub`."""
    if subject.startswith("mailto:"):
        _check_address("push_subject", subject[7:], subject, "mailto:you@example.com or https://…")
        return
    parts = urlsplit(subject)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise ConfigError(
            f"{env_var('push_subject')}: expected mailto:you@example.com or an https:// URL, "
            f"got {subject!r}"
        )


def _check_server_url(name: str, url: str, schemes: tuple[str, ...]) -> None:
    """scheme://[user:password@]host[:port]; errors never repeat the password."""
    parts = urlsplit(url)
    shown = parts._replace(netloc=parts.hostname or "").geturl() if parts.password else url
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError(f"{env_var(name)}: the port is not a number in {shown!r}") from None
    if parts.scheme not in schemes or not parts.hostname:
        expected = " or ".join(f"{s}://host" for s in schemes)
        raise ConfigError(f"{env_var(name)}: expected {expected}, got {shown!r}")


def env_var(name: str) -> str:
    return "PORCH_" + name.upper()


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_value(f: dataclasses.Field[Any], raw: str, source: str) -> Any:
    kind = str(f.type)
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{source}: expected a whole number, got {raw!r}") from None
    if kind.startswith("Path"):
        return Path(raw) if raw else None
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
