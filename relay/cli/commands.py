"""What each `porch` command does (the parser in relay/cli/main.py maps names to these).

What only some commands need is imported inside them, so that the others start fast
(relay/cli/common.py says which)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from relay.cli.common import (
    DEMO_NOTIFY_DELAY,
    DEMO_OWNER,
    DEMO_REPLY_DOMAIN,
    DEMO_SITE,
    LOG_FORMAT,
    SITE_ID,
    free_site_id,
    load_config,
    require_secret,
    with_store,
)
from relay.config import FIELDS, Config, env_var, flag
from relay.errors import CommandError, ConfigError
from relay.sites import settings as site_settings
from relay.sites.checks import BadValue

if TYPE_CHECKING:
    from relay.models import Site
    from relay.store import Store

# -- commands -----------------------------------------------------------------------


def run_keygen(args: argparse.Namespace) -> None:
    from relay.tokens import new_secret_key

    print(new_secret_key())


def run_serve(args: argparse.Namespace) -> None:
    from relay.cli.serving import serve

    config = load_config(args, demo_key=False)  # a real relay needs a real key
    require_secret(config)
    serve(config)


def run_smtp(args: argparse.Namespace) -> None:
    import asyncio
    import logging

    from relay.channels.email.smtp_forwarder import RelayForwarder
    from relay.channels.email.smtp_ingress import start_smtp_ingress

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
    from relay.assets import asset_dir
    from relay.cli.serving import demo_origins, demo_secret, free_port, serve
    from relay.demo import setup as demo
    from relay.demo.mailbox import DemoMailbox
    from relay.models import Site
    from relay.tokens import Tokens

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
            # A bakery's week, so the widget shows opening times and, at night or on
            # Sunday, the automatic "back on Monday at 07:00" reply.
            "timezone": "Europe/Paris",
            "hours": {  # as the demo page says
                day: [["07:00", "19:00"]] for day in ("tue", "wed", "thu", "fri", "sat", "sun")
            },
            "reply_time_minutes": 30,
            # The customers' words for what the FAQ says otherwise ("celiac?" is answered).
            "synonyms": ["coeliac, celiac, gluten-free", "car park, parking, park"],
            # The demo's mailbox is on loopback under a made-up domain: no DNS to check
            # its replies' sender against (and none needed to run the demo offline).
            "sender_checks": "off",
        },
    )
    with_store(config, lambda store: store.add_site(site, replace=True))
    with_store(config, demo.seed_answers)  # ask the chat "do you deliver?"
    tokens = Tokens(config.secret_keys)
    flags = demo_flags(config)
    banner = (
        f"Porch demo running: {config.base_url}/\n"
        f"  site id: {DEMO_SITE}, data in {config.data_dir}/\n"
        f"  the owner's inbox: {config.base_url}/inbox/#login={tokens.login_token(DEMO_OWNER)}\n"
        f"    (the link works once; ask /inbox for another: it lands in the mailbox below)\n"
        f"  the owner's mailbox: {config.base_url}/demo/mailbox\n"
        f"  from a terminal:   porch threads {flags}\n"
        f"                     porch reply THREAD 'your text' {flags}\n"
        f"  owner token (API): {tokens.owner_token(DEMO_SITE)}"
    )
    setup = demo.Setup(flags, DemoMailbox(config.smtp_port), mailbox_port)
    serve(config, site_dir=asset_dir("site"), banner=banner, demo_setup=setup)


def demo_flags(config: Config) -> str:
    """The flags other `porch` commands need to reach this demo's data and relay."""
    import shlex

    flags = ["--data-dir", shlex.quote(str(config.data_dir))]
    if config.port != FIELDS["port"].default:
        flags += ["--port", str(config.port)]
    if config.host != FIELDS["host"].default:
        flags += ["--host", shlex.quote(config.host)]
    return " ".join(flags)


def run_site_add(args: argparse.Namespace) -> None:
    from relay.models import Site
    from relay.web.widget import snippet

    config = load_config(args)
    if args.id is not None and not SITE_ID.fullmatch(args.id):
        raise CommandError(
            f"--id: expected 2-40 lowercase letters, digits and dashes, got {args.id!r}"
        )
    _, changes, texts = given_settings(args, "add", CommandError)
    for key, (_, given) in texts.items():
        changes[key] = given
    # What `site add` always stored, so a new site's row shows it (defaults unless given).
    stored = {}
    for setting in site_settings.SETTINGS:
        if setting.on_add:
            stored[setting.key] = setting.default
            if setting.per_language:
                stored[setting.texts_key] = {}

    async def add(store: Store) -> Site:
        name = site_settings.NAME.check(changes["name"])
        site_id = args.id or await free_site_id(store, name)
        if args.id and await store.get_site(args.id):
            raise CommandError(f"--id: a site {args.id!r} already exists")
        blank = Site(id=site_id, name=name, owner_emails=(), origins=(), settings=stored)
        return await store.add_site(
            site_settings.apply_changes(blank, changes, site_settings.SITE_ADD)
        )

    site = with_store(config, add)
    print(f"Registered site {site.id!r} ({site.name}) for {', '.join(site.origins)}.")
    print("Paste this into every page, just before </body>:\n")
    print(snippet(config, site.id))


def flag_dest(setting: site_settings.Setting[Any], language: str | None) -> str:
    """Where argparse keeps a site setting's flag (relay/cli/main.py adds them)."""
    return f"site_{setting.key}" + (f"_{language}" if language else "")


def given_settings(
    args: argparse.Namespace, command: str, error: type[Exception]
) -> tuple[list[str], dict[str, Any], dict[str, tuple[site_settings.Setting[Any], dict[str, Any]]]]:
    """The site settings given as flags: (the flags, JSON key -> value, texts key ->
    (setting, {language: text})). Each value is checked here, so the error names the
    flag; applying them checks again, all or nothing."""
    given: list[str] = []
    changes: dict[str, Any] = {}
    texts: dict[str, tuple[site_settings.Setting[Any], dict[str, Any]]] = {}
    for flag_name, setting, language in site_settings.flags(command):
        raw = getattr(args, flag_dest(setting, language))
        if raw is None or setting.flag is None:
            continue
        given.append(flag_name)
        value = setting.flag.read(raw)
        try:
            setting.check(value)
        except BadValue as bad:
            raise error(f"{flag_name}: {bad}") from None
        if language is None:
            changes[setting.key] = value
        else:
            texts.setdefault(setting.texts_key, (setting, {}))[1][language] = value
    return given, changes, texts


def run_site_set(args: argparse.Namespace) -> None:
    config = load_config(args)
    given, changes, texts = given_settings(args, "set", ConfigError)
    if not given:
        every = ", ".join(name for name, _, _ in site_settings.flags("set"))
        raise ConfigError(f"nothing to change: give one or more of {every}")

    async def update(store: Store) -> Site:
        site = await store.get_site(args.site)
        if site is None:
            raise CommandError(f"no site {args.site!r} (see `porch site list`)")
        for key, (setting, given_texts) in texts.items():  # the other languages' texts stay
            changes[key] = {**setting.texts(site), **given_texts}
        changed = site_settings.apply_changes(site, changes, site_settings.SITE_SET)
        return await store.add_site(changed, replace=True)

    site = with_store(config, update)
    print(f"Updated site {site.id!r}: {', '.join(given)}.")
    print(describe_hours(site, config.clock.now()))


def describe_hours(site: Site, now: datetime) -> str:
    """One line to check the hours just set against the relay's clock."""
    from relay.sites.availability import opening, site_zone

    state = opening(site.settings, now)
    zone = site_zone(site.settings)
    if not state.has_hours:
        return "No business hours: always open."
    if state.open_now:
        return f"Business hours in {zone.key}: open now."
    if state.next_open is None:
        return f"Business hours in {zone.key}: closed, and not open in the coming weeks."
    opens = state.next_open.astimezone(zone)
    return f"Business hours in {zone.key}: closed now, opens {opens:%A %Y-%m-%d %H:%M}."


def run_site_list(args: argparse.Namespace) -> None:
    sites = with_store(load_config(args), lambda store: store.list_sites())
    if not sites:
        print("No sites yet: add one with `porch site add`.")
    for site in sites:
        print(f"{site.id}\t{site.name}\t{' '.join(site.origins)}\t{' '.join(site.owner_emails)}")


def run_site_secret(args: argparse.Namespace) -> None:
    from relay.tokens import new_secret_key

    async def secret(store: Store) -> str:
        site = await store.get_site(args.site)
        if site is None:
            raise CommandError(f"no site {args.site!r} (see `porch site list`)")
        current = site_settings.IDENTITY_SECRET.of(site)
        if isinstance(current, str) and not args.rotate:
            return current
        fresh = new_secret_key()
        settings = {**site.settings, site_settings.IDENTITY_SECRET.key: fresh}
        await store.add_site(dataclasses.replace(site, settings=settings), replace=True)
        return fresh

    print(with_store(load_config(args), secret))


def run_owner_token(args: argparse.Namespace) -> None:
    from relay.tokens import Tokens

    config = load_config(args)
    require_secret(config)
    if with_store(config, lambda store: store.get_site(args.site)) is None:
        raise CommandError(f"--site: no site {args.site!r} (see `porch site list`)")
    print(Tokens(config.secret_keys).owner_token(args.site))


def run_owner_login(args: argparse.Namespace) -> None:
    from relay.tokens import Tokens

    config = load_config(args)
    require_secret(config)
    email = args.email.strip().lower()
    if not with_store(config, lambda store: store.owner_sites(email)):
        raise CommandError(
            f"{args.email!r} is not an owner address of any site (see `porch site list`)"
        )
    token = Tokens(config.secret_keys).login_token(email)
    print(f"{config.base_url}/inbox/#login={token}")
    print("The link works once, for 15 minutes.", file=sys.stderr)


def run_owner_logout(args: argparse.Namespace) -> None:
    email = args.email.strip().lower()

    async def sign_out(store: Store) -> list[str]:
        revoked = await store.revoke_sessions(email)
        await store.remove_owner_push_subscriptions(email)  # and its phones are told no more
        return revoked

    revoked = with_store(load_config(args), sign_out)
    print(f"{len(revoked)} inbox session(s) of {email} signed out")


def run_mail_status(args: argparse.Namespace) -> None:
    status = with_store(load_config(args), lambda store: store.delivery_status())
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


def run_mail_unsuppress(args: argparse.Namespace) -> None:
    lifted = with_store(load_config(args), lambda store: store.unsuppress(args.address))
    if not lifted:
        raise CommandError(f"{args.address!r} is not suppressed (see `porch mail status`)")
    print(f"Lifted {lifted} suppression(s): {args.address} gets mail again.")


def run_mail_inspect(args: argparse.Namespace) -> None:
    from relay.channels.email.reading import UnreadableEmail, inspect

    try:
        raw = args.file.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {args.file}: {error.strerror}") from None
    try:
        found = inspect(raw).to_json()
    except UnreadableEmail as error:
        raise ConfigError(f"{args.file} is not an email: {error}") from None
    if not args.no_checks:
        found["authentication"] = _sender_checks(raw, args)
    print(json.dumps(found, ensure_ascii=False, indent=2))


def _sender_checks(raw: bytes, args: argparse.Namespace) -> dict[str, Any]:
    """Who really sent it, as the relay would judge it with these settings: the checks'
    findings and the decision under --sender-checks (DNS lookups, nothing written)."""
    from relay.channels.email.authentication import Envelope, Resolver, authenticate

    config = Config.load(os.environ)
    envelope = None
    if args.peer_ip:
        envelope = Envelope(args.peer_ip, args.helo, args.mail_from or "")
    try:
        resolver = Resolver(config.dns_servers)
    except ValueError as error:
        raise ConfigError(f"cannot check the sender: {error}") from None
    trusted = frozenset(name.lower() for name in config.trusted_authserv_ids)
    checks = authenticate(raw, envelope, resolver=resolver, trusted_authserv_ids=trusted)
    decision = checks.decide(args.sender_checks)
    return {**checks.to_json(), "decision": dataclasses.asdict(decision)}


def run_visitor_export(args: argparse.Namespace) -> None:
    async def export(store: Store) -> list[Any]:
        ids = await store.find_visitors(args.who)
        return [await store.export_visitor(visitor) for visitor in ids]

    found = with_store(load_config(args), export)
    if not found:
        raise CommandError(f"no visitor with the email or id {args.who!r}")
    print(json.dumps(found, ensure_ascii=False, indent=2))


def run_visitor_delete(args: argparse.Namespace) -> None:
    from relay.store.blobs import blobs_for

    async def erase(store: Store) -> tuple[int, int]:
        ids = await store.find_visitors(args.who)
        erased = 0
        blobs = blobs_for(store, config.data_dir)
        try:
            for visitor in ids:
                digests = await store.visitor_digests(visitor)
                erased += await store.delete_visitor(visitor)
                await store.forget_unused_blobs(blobs, digests)  # their photos and files too
        finally:
            await blobs.close()
        return len(ids), erased

    config = load_config(args)
    visitors, threads = with_store(config, erase)
    if not visitors:
        raise CommandError(f"no visitor with the email or id {args.who!r}")
    print(f"Erased {visitors} visitor(s) and {threads} conversation(s).")


def run_purge(args: argparse.Namespace) -> None:
    from relay.store.blobs import blobs_for

    config = load_config(args)

    async def purge(store: Store) -> list[tuple[str, str, str]]:
        found = await store.purge_idle(dry_run=args.dry_run)
        if not args.dry_run:  # unsent uploads and the files nothing holds any more go too
            await store.purge_unsent()
            blobs = blobs_for(store, config.data_dir)
            try:
                await store.forget_unused_blobs(blobs)
            finally:
                await blobs.close()
        return found

    found = with_store(config, purge)
    verb = "would erase" if args.dry_run else "erased"
    for site, thread, when in found:
        print(f"{verb}\t{site}\t{thread}\tidle since {when}")
    print(f"{len(found)} conversation(s) {verb}.")


def run_backup(args: argparse.Namespace) -> None:
    from relay.attachments.blobs import LocalBlobs
    from relay.store.backup import backup

    config = load_config(args, demo_key=False)  # a copy needs no key
    if config.database_url:
        raise ConfigError(
            f"porch backup copies a SQLite database, and {env_var('database_url')} is set: "
            "back up PostgreSQL with pg_dump -Fc (README: Deploy)"
        )
    blobs = LocalBlobs.of_data_dir(config.data_dir).root
    print(backup(config.database_path, args.dest, force=args.force, blobs=blobs).summary())


def run_migrate(args: argparse.Namespace) -> None:
    config = load_config(args, demo_key=False)
    if config.database_url:
        applied = _migrate_postgres(config.database_url)
    else:
        applied = _migrate_sqlite(config)
    print("\n".join(f"applied {name}" for name in applied) or "The database is up to date.")


def _migrate_sqlite(config: Config) -> list[str]:
    import contextlib
    import sqlite3

    from relay.store.migrate import apply_migrations

    try:
        with contextlib.closing(sqlite3.connect(config.database_path)) as db:
            return apply_migrations(db)
    except (OSError, sqlite3.Error) as error:
        raise CommandError(f"cannot migrate the database: {error}") from None


def _migrate_postgres(url: str) -> list[str]:
    import asyncio

    import asyncpg

    from relay.store.migrate import apply_pg_migrations

    async def migrate() -> list[str]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await apply_pg_migrations(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(migrate())
    except (OSError, asyncpg.PostgresError) as error:
        raise CommandError(f"cannot migrate the database: {error}") from None


def run_copy_db(args: argparse.Namespace) -> None:
    import asyncio

    from relay.store.copy import CopyError, copy_sqlite_to_postgres
    from relay.store.postgres import shown_url

    if not args.target.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"TO: expected a postgresql:// URL, got {args.target!r}")
    if not args.source.is_file():
        raise ConfigError(f"FROM: no SQLite database at {args.source}")
    try:
        copied = asyncio.run(copy_sqlite_to_postgres(args.source, args.target, args.blobs))
    except CopyError as error:
        raise CommandError(f"nothing copied: {error}") from None
    print(copied.summary(args.source, shown_url(args.target)))


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
    import httpx

    from relay.tokens import Tokens

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
