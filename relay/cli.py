"""The `porch` command. Every subcommand has --help; every error is one line and a
non-zero exit, naming the bad value."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import re
import shlex
import socket
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from relay import demo
from relay.assets import asset_dir
from relay.config import FIELDS, Config, env_var, flag
from relay.demo_mailbox import DemoMailbox
from relay.errors import ConfigError
from relay.inputs import EMAIL
from relay.mail.smtp_forwarder import RelayForwarder
from relay.mail.smtp_ingress import start_smtp_ingress
from relay.models import Site
from relay.origins import normalize_origin
from relay.store import Store
from relay.tokens import Tokens, new_secret_key

DEMO_SITE = "demo"
DEMO_OWNER = "owner@dupont.example"
DEMO_REPLY_DOMAIN = "reply.dupont.localhost"
DEMO_NOTIFY_DELAY = 3  # seconds: the demo mailbox fills while the visitor watches
SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
LANGUAGES = ("en", "fr")
SECRET_FILE = "secret_key"
LOG_FORMAT = "%(levelname)-9s %(name)s: %(message)s"  # inside the demo's data dir


class CommandError(Exception):
    """A one-line failure the user can act on (exit 1)."""


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        sys.exit(2)
    try:
        args.run(args)
    except ConfigError as error:
        print(f"porch: {error}", file=sys.stderr)
        sys.exit(2)
    except CommandError as error:
        print(f"porch: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="porch",
        description="Porch: persistent website messaging for small businesses.",
        epilog="Every setting can also come from its PORCH_* environment variable.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    settings = settings_parser()

    def command(
        name: str,
        run: Callable[[argparse.Namespace], None],
        help: str,
        parent: Any = commands,
        with_settings: bool = True,
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(
            name, help=help, description=help, parents=[settings] if with_settings else []
        )
        sub.set_defaults(run=run)
        return sub

    command(
        "keygen", run_keygen, "Print a new secret key for PORCH_SECRET_KEYS.", with_settings=False
    )
    command("serve", run_serve, "Run the relay (needs PORCH_SECRET_KEYS).")
    command(
        "smtp",
        run_smtp,
        "Listen for replies by SMTP (--smtp-port) and hand them to a running relay "
        "(--public-url) through its signed /v1/inbound/raw.",
    )
    command("demo", run_demo, "Run the relay with a demo bakery site; prints the URL.")

    site = commands.add_parser(
        "site", help="Register and list sites.", description="Register and list sites."
    )
    site_commands = site.add_subparsers(title="commands", metavar="COMMAND")
    add = command(
        "add", run_site_add, "Register a site and print its <script> snippet.", parent=site_commands
    )
    add.add_argument("--name", required=True, help="The business's name, shown in the widget.")
    add.add_argument(
        "--origin",
        action="append",
        required=True,
        metavar="URL",
        help="An origin whose pages embed the widget (repeatable).",
    )
    add.add_argument(
        "--owner-email",
        action="append",
        required=True,
        metavar="EMAIL",
        help="An address that receives and answers messages (repeatable).",
    )
    add.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="EMAIL",
        help="Another address the owner may reply from (repeatable).",
    )
    add.add_argument("--id", help="Public id used in the snippet (default: from the name).")
    add.add_argument("--greeting", default="", help="First line visitors see.")
    add.add_argument("--greeting-fr", default="", help="The greeting for French pages.")
    add.add_argument("--language", default="en", choices=LANGUAGES, help="Default language.")
    add.add_argument("--color", default="#2f6f4e", help="Accent colour, #rrggbb.")
    add.add_argument(
        "--retention-days",
        type=int,
        default=0,
        metavar="N",
        help="Erase conversations idle longer than N days (0: keep).",
    )
    command("list", run_site_list, "List registered sites.", parent=site_commands)
    secret = command(
        "secret",
        run_site_secret,
        "Print the site's identity secret (for Porch('identify') hashes).",
        parent=site_commands,
    )
    secret.add_argument("site", help="The site's id.")
    secret.add_argument(
        "--rotate",
        action="store_true",
        help="Make a new one: hashes made with the old one stop verifying.",
    )

    owner = commands.add_parser(
        "owner", help="Owner credentials.", description="Owner credentials."
    )
    owner_commands = owner.add_subparsers(title="commands", metavar="COMMAND")
    token = command(
        "token",
        run_owner_token,
        "Print an owner token for a site's owner API.",
        parent=owner_commands,
    )
    token.add_argument("--site", required=True, help="The site's id.")

    mail = commands.add_parser("mail", help="The email bridge.", description="The email bridge.")
    mail_commands = mail.add_subparsers(title="commands", metavar="COMMAND")
    command(
        "status",
        run_mail_status,
        "Outgoing mail: counts, failures, suppressed addresses.",
        parent=mail_commands,
    )
    inspect_cmd = command(
        "inspect",
        run_mail_inspect,
        "Print how Porch reads an email (JSON); touches nothing.",
        parent=mail_commands,
        with_settings=False,
    )
    inspect_cmd.add_argument("file", type=Path, help="An .eml file (raw RFC 5322 message).")

    visitor = commands.add_parser(
        "visitor",
        help="Answer access and erasure requests.",
        description="Answer access and erasure requests.",
    )
    visitor_commands = visitor.add_subparsers(title="commands", metavar="COMMAND")
    for name, run, text in (
        ("export", run_visitor_export, "Print everything stored about a visitor (JSON)."),
        ("delete", run_visitor_delete, "Erase a visitor and all their conversations."),
    ):
        sub_command = command(name, run, text, parent=visitor_commands)
        sub_command.add_argument(
            "who", metavar="EMAIL_OR_ID", help="The visitor's email (every site) or id."
        )
    purge = command(
        "purge",
        run_purge,
        "Erase conversations idle longer than their site's retention (the relay does it daily).",
    )
    purge.add_argument("--dry-run", action="store_true", help="Only list what would go.")

    threads = command("threads", run_threads, "List conversations, latest first.")
    threads.add_argument("--site", help="Only this site's.")

    reply = command(
        "reply", run_reply, "Reply to a thread as the owner, through the running relay."
    )
    reply.add_argument("thread", help="The thread id (see `porch threads`).")
    reply.add_argument("text", help="The reply.")
    return parser


def settings_parser() -> argparse.ArgumentParser:
    """A --flag for every Config field, with its help, env variable and default."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("settings")
    for name, f in FIELDS.items():
        shown = ",".join(f.default) if isinstance(f.default, tuple) else f.default
        group.add_argument(
            flag(name),
            dest=f"setting_{name}",
            metavar=name.upper(),
            help=f"{f.metadata['help']} [{env_var(name)}; default: {shown or 'none'}]",
        )
    return parser


def load_config(args: argparse.Namespace, *, demo_key: bool = True) -> Config:
    """Settings from env and flags. Commands other than `serve` also use the key that
    `porch demo` keeps in its data dir, so `porch reply` works against the demo."""
    overrides = {name: getattr(args, f"setting_{name}", None) for name in FIELDS}
    config = Config.load(os.environ, **overrides)
    demo_key_file = config.data_dir / SECRET_FILE
    if demo_key and not config.secret_keys and demo_key_file.exists():
        config = dataclasses.replace(config, secret_keys=(demo_key_file.read_text().strip(),))
    return config


def with_store(config: Config, work: Callable[[Store], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        store = Store(config.database_path, synchronous=config.sqlite_synchronous)
        try:
            await store.open()
        except (OSError, sqlite3.Error) as error:
            raise CommandError(
                f"cannot open the database {config.database_path}: {error} "
                "(--data-dir or --database)"
            ) from None
        try:
            return await work(store)
        except ValueError as error:  # the store's refusals, e.g. a site id taken meanwhile
            raise CommandError(str(error)) from None
        finally:
            await store.close()

    return asyncio.run(run())


# -- commands -----------------------------------------------------------------------


def run_keygen(args: argparse.Namespace) -> None:
    print(new_secret_key())


def run_serve(args: argparse.Namespace) -> None:
    config = load_config(args, demo_key=False)  # a real relay needs a real key
    require_secret(config)
    serve(config)


def run_smtp(args: argparse.Namespace) -> None:
    config = load_config(args, demo_key=False)
    for name in ("smtp_port", "inbound_secret", "reply_domain"):
        if not getattr(config, name):
            raise ConfigError(f"porch smtp needs {env_var(name)} (or {flag(name)})")

    async def listen() -> None:
        forwarder = RelayForwarder(config.base_url, config.inbound_secret)
        server = await start_smtp_ingress(
            forwarder, config.reply_domain, config.host, config.smtp_port
        )
        print(
            f"Porch SMTP ingress on {config.host}:{config.smtp_port}, for "
            f"r+…@{config.reply_domain}, handing replies to {config.base_url}",
            flush=True,
        )
        try:
            await server.serve_forever()
        finally:
            await forwarder.close()

    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT)
    try:
        asyncio.run(listen())
    except OSError as error:
        raise CommandError(
            f"cannot listen on {config.host}:{config.smtp_port}: {error.strerror}"
        ) from None


def run_demo(args: argparse.Namespace) -> None:
    config = load_config(args)
    if not config.secret_keys:
        config = dataclasses.replace(config, secret_keys=(demo_secret(config.data_dir),))
    # The whole email loop on loopback: outbox → a mailbox sink in the relay → replies
    # through the relay's SMTP ingress. Real SMTP both ways, no provider needed.
    mailbox_port, ingress_port = free_port(), free_port()
    config = dataclasses.replace(
        config,
        smtp_url=config.smtp_url or f"smtp://127.0.0.1:{mailbox_port}",
        smtp_port=config.smtp_port or ingress_port,
        reply_domain=config.reply_domain or DEMO_REPLY_DOMAIN,
        owner_notify_delay=min(config.owner_notify_delay, DEMO_NOTIFY_DELAY),
    )
    origins = demo_origins(config)
    site = Site(
        id=DEMO_SITE,
        name="Boulangerie Dupont",
        owner_emails=(DEMO_OWNER,),
        origins=origins,
        settings={
            "greeting": "Hello! Ask us about today's bread or a special order.",
            "greetings": {"fr": "Bonjour ! Une question sur le pain du jour ou une commande ?"},
            "language": "en",
            "color": "#9a4d1c",
        },
    )
    with_store(config, lambda store: store.add_site(site, replace=True))
    owner_token = Tokens(config.secret_keys).owner_token(DEMO_SITE)
    flags = demo_flags(config)
    banner = (
        f"Porch demo running: {config.base_url}/\n"
        f"  site id: {DEMO_SITE}, data in {config.data_dir}/\n"
        f"  owner token: {owner_token}\n"
        f"  see conversations: porch threads {flags}\n"
        f"  answer one:        porch reply THREAD 'your text' {flags}\n"
        f"  or by email:       {config.base_url}/demo/mailbox"
    )
    setup = demo.Setup(flags, DemoMailbox(config.smtp_port), mailbox_port)
    serve(config, site_dir=asset_dir("site"), banner=banner, demo_setup=setup)


def demo_flags(config: Config) -> str:
    """The flags other `porch` commands need to reach this demo's data and relay."""
    flags = ["--data-dir", shlex.quote(str(config.data_dir))]
    if config.port != FIELDS["port"].default:
        flags += ["--port", str(config.port)]
    if config.host != FIELDS["host"].default:
        flags += ["--host", shlex.quote(config.host)]
    return " ".join(flags)


def run_site_add(args: argparse.Namespace) -> None:
    config = load_config(args)
    try:
        origins = tuple(dict.fromkeys(normalize_origin(o) for o in args.origin))
    except ValueError as error:
        raise CommandError(f"--origin: {error}") from None
    for flag_name, email in [
        *(("--owner-email", e) for e in args.owner_email),
        *(("--alias", e) for e in args.alias),
    ]:
        if not EMAIL.match(email):
            raise CommandError(
                f"{flag_name}: expected an address like owner@shop.example, got {email!r}"
            )
    if args.retention_days < 0:
        raise CommandError(f"--retention-days: expected 0 or more, got {args.retention_days}")
    if not COLOR.match(args.color):
        raise CommandError(f"--color: expected #rrggbb, got {args.color!r}")
    if args.id is not None and not SITE_ID.match(args.id):
        raise CommandError(
            f"--id: expected 2-40 lowercase letters, digits and dashes, got {args.id!r}"
        )
    name = " ".join(args.name.split())
    if not name:
        raise CommandError("--name: expected the business's name, got nothing")

    async def add(store: Store) -> Site:
        site_id = args.id or await free_site_id(store, name)
        if args.id and await store.get_site(args.id):
            raise CommandError(f"--id: a site {args.id!r} already exists")
        site = Site(
            id=site_id,
            name=name,
            owner_emails=tuple(args.owner_email),
            origins=origins,
            settings={
                "greeting": args.greeting,
                "greetings": {"fr": args.greeting_fr} if args.greeting_fr else {},
                "language": args.language,
                "color": args.color,
                "reply_aliases": [alias.lower() for alias in args.alias],
                "retention_days": args.retention_days,
            },
        )
        return await store.add_site(site)

    site = with_store(config, add)
    print(f"Registered site {site.id!r} ({site.name}) for {', '.join(site.origins)}.")
    print("Paste this into every page, just before </body>:\n")
    print(snippet(config, site.id))


def run_site_list(args: argparse.Namespace) -> None:
    sites = with_store(load_config(args), lambda store: store.list_sites())
    if not sites:
        print("No sites yet: add one with `porch site add`.")
    for site in sites:
        print(f"{site.id}\t{site.name}\t{' '.join(site.origins)}\t{' '.join(site.owner_emails)}")


def run_site_secret(args: argparse.Namespace) -> None:
    async def secret(store: Store) -> str:
        site = await store.get_site(args.site)
        if site is None:
            raise CommandError(f"no site {args.site!r} (see `porch site list`)")
        current = site.settings.get("identity_secret")
        if isinstance(current, str) and not args.rotate:
            return current
        fresh = new_secret_key()
        settings = {**site.settings, "identity_secret": fresh}
        await store.add_site(dataclasses.replace(site, settings=settings), replace=True)
        return fresh

    print(with_store(load_config(args), secret))


def run_owner_token(args: argparse.Namespace) -> None:
    config = load_config(args)
    require_secret(config)
    if with_store(config, lambda store: store.get_site(args.site)) is None:
        raise CommandError(f"--site: no site {args.site!r} (see `porch site list`)")
    print(Tokens(config.secret_keys).owner_token(args.site))


def run_mail_status(args: argparse.Namespace) -> None:
    status = with_store(load_config(args), lambda store: store.mail_status())
    counts = status["counts"]
    print(
        "outbox: " + (", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "empty")
    )
    for problem in status["problems"]:
        state = "failed" if problem["status"] == "failed" else "retrying"
        print(
            f"{state}\t{problem['kind']}\t{problem['recipient']}\t{problem['thread_id']}\t"
            f"{problem['attempts']} tries\t{problem['last_error']}"
        )
    for entry in status["suppressed"]:
        print(f"suppressed\t{entry['address']}\t{entry['reason']}\tsince {entry['created_at']}")


def run_mail_inspect(args: argparse.Namespace) -> None:
    from relay.mail.reading import UnreadableEmail, inspect

    try:
        raw = args.file.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {args.file}: {error.strerror}") from None
    try:
        print(json.dumps(inspect(raw).to_json(), ensure_ascii=False, indent=2))
    except UnreadableEmail as error:
        raise ConfigError(f"{args.file} is not an email: {error}") from None


def run_visitor_export(args: argparse.Namespace) -> None:
    async def export(store: Store) -> list[Any]:
        ids = await store.find_visitors(args.who)
        return [await store.export_visitor(visitor) for visitor in ids]

    found = with_store(load_config(args), export)
    if not found:
        raise CommandError(f"no visitor with the email or id {args.who!r}")
    print(json.dumps(found, ensure_ascii=False, indent=2))


def run_visitor_delete(args: argparse.Namespace) -> None:
    async def erase(store: Store) -> tuple[int, int]:
        ids = await store.find_visitors(args.who)
        return len(ids), sum([await store.delete_visitor(visitor) for visitor in ids])

    visitors, threads = with_store(load_config(args), erase)
    if not visitors:
        raise CommandError(f"no visitor with the email or id {args.who!r}")
    print(f"Erased {visitors} visitor(s) and {threads} conversation(s).")


def run_purge(args: argparse.Namespace) -> None:
    found = with_store(load_config(args), lambda store: store.purge_idle(dry_run=args.dry_run))
    verb = "would erase" if args.dry_run else "erased"
    for site, thread, when in found:
        print(f"{verb}\t{site}\t{thread}\tidle since {when}")
    print(f"{len(found)} conversation(s) {verb}.")


def run_threads(args: argparse.Namespace) -> None:
    summaries = with_store(load_config(args), lambda store: store.list_threads(args.site))
    if not summaries:
        print("No conversations yet.")
    for summary in summaries:
        last = summary.last_message.body if summary.last_message else ""
        last = " ".join(last.split())
        print(
            f"{summary.thread.id}\t{summary.thread.site}\t{summary.thread.updated_at}\t"
            f"{summary.visitor_name or 'visitor'}\tunread {summary.unread}\t"
            f"{last[:60] + ('…' if len(last) > 60 else '')}"
        )


def run_reply(args: argparse.Namespace) -> None:
    config = load_config(args)
    require_secret(config)
    thread = with_store(config, lambda store: store.get_thread(args.thread))
    if thread is None:
        raise CommandError(f"no thread {args.thread!r} (see `porch threads`)")
    token = Tokens(config.secret_keys).owner_token(thread.site)
    url = f"{config.base_url}/v1/owner/threads/{thread.id}/messages"
    try:
        response = httpx.post(
            url, json={"body": args.text}, headers={"authorization": f"Bearer {token}"}, timeout=10
        )
    except httpx.HTTPError as error:
        raise CommandError(
            f"cannot reach the relay at {config.base_url} ({error}); "
            "is `porch serve` running there? (--public-url)"
        ) from None
    if response.status_code != 201:
        raise CommandError(f"the relay refused the reply: {response.status_code} {response.text}")
    print(f"Sent as message {response.json()['seq']} of {thread.id}.")


# -- helpers ------------------------------------------------------------------------


def require_secret(config: Config) -> None:
    if not config.secret_keys:
        raise ConfigError(
            f"{env_var('secret_keys')} is not set: make a key with `porch keygen` and run "
            f"`export {env_var('secret_keys')}=<key>` (comma-separate older keys after it)"
        )


def demo_secret(data_dir: Path) -> str:
    """The demo's own key, made once and kept (0600) so tokens survive restarts."""
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = new_secret_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


def demo_origins(config: Config) -> tuple[str, ...]:
    origin = normalize_origin(config.base_url)
    also = origin.replace("://127.0.0.1", "://localhost")
    return tuple(dict.fromkeys((origin, also)))


def free_port() -> int:
    """A port nobody listens on right now (the demo's internal mail servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def free_site_id(store: Store, name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:36].strip("-") or "site"
    candidate, n = base, 2
    while await store.get_site(candidate) is not None:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def snippet(config: Config, site_id: str) -> str:
    return f'<script src="{config.base_url}/widget.js" data-site="{site_id}" async></script>'


class _Server(uvicorn.Server):
    """uvicorn's server, printing our banner once the port is really bound."""

    banner = ""

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.banner:
            print(self.banner, flush=True)


def serve(
    config: Config,
    *,
    site_dir: Path | None = None,
    banner: str = "",
    demo_setup: demo.Setup | None = None,
) -> None:
    from relay.app import create_app  # keeps `porch keygen` and `--help` fast

    # uvicorn configures only its own loggers; ours (porch.mail, porch.inbound, …) too.
    logging.basicConfig(level=config.log_level.upper(), format=LOG_FORMAT)
    app = create_app(config, site_dir=site_dir, demo_setup=demo_setup)
    server = _Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            ws_max_size=config.ws_max_frame_bytes,
            # Per-message deflate costs ~300 KiB per socket; chat frames are tiny.
            ws_per_message_deflate=False,
            proxy_headers=bool(config.forwarded_allow_ips),
            forwarded_allow_ips=config.forwarded_allow_ips or None,
            lifespan="on",
        )
    )
    server.banner = banner or f"Porch relay running: {config.base_url}/"
    server.run()
    if not server.started:
        raise CommandError(
            f"could not start on {config.host}:{config.port} (is the port in use? try --port)"
        )
