"""The `porch` command. Every subcommand has --help; every error is one line and a
non-zero exit, naming the bad value."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from relay.cli.commands import (
    flag_dest,
    run_backup,
    run_copy_db,
    run_demo,
    run_keygen,
    run_mail_inspect,
    run_mail_status,
    run_mail_unsuppress,
    run_migrate,
    run_owner_login,
    run_owner_logout,
    run_owner_token,
    run_purge,
    run_reply,
    run_serve,
    run_site_add,
    run_site_list,
    run_site_secret,
    run_site_set,
    run_smtp,
    run_threads,
    run_visitor_delete,
    run_visitor_export,
)
from relay.config import FIELDS, env_var, flag
from relay.errors import CommandError, ConfigError
from relay.sites import settings as site_settings


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
    add.add_argument("--id", help="Public id used in the snippet (default: from the name).")
    site_flags(add, "add")
    command("list", run_site_list, "List registered sites.", parent=site_commands)
    site_set = command(
        "set",
        run_site_set,
        "Change a site's settings; flags not given stay as they are.",
        parent=site_commands,
    )
    site_set.add_argument("site", help="The site's id.")
    site_flags(site_set, "set")
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
    login = command(
        "login",
        run_owner_login,
        "Print a sign-in link to the inbox (/inbox) for an owner address.",
        parent=owner_commands,
    )
    login.add_argument("email", help="An owner address of some site.")
    logout = command(
        "logout",
        run_owner_logout,
        "Sign an owner out of the inbox on every device (a lost phone).",
        parent=owner_commands,
    )
    logout.add_argument("email", help="The owner's address.")

    mail = commands.add_parser("mail", help="The email bridge.", description="The email bridge.")
    mail_commands = mail.add_subparsers(title="commands", metavar="COMMAND")
    command(
        "status",
        run_mail_status,
        "Outgoing mail: counts, failures, suppressed addresses.",
        parent=mail_commands,
    )
    unsuppress = command(
        "unsuppress",
        run_mail_unsuppress,
        "Write to an address again that unsubscribed or bounced (its owner asks).",
        parent=mail_commands,
    )
    unsuppress.add_argument("address", help="The address (any spelling of its mailbox).")
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
    backup_command = command(
        "backup",
        run_backup,
        "Copy the SQLite database to DEST while the relay runs: one consistent "
        "snapshot, verified, then renamed into place.",
    )
    backup_command.add_argument("dest", type=Path, metavar="DEST", help="The backup file.")
    backup_command.add_argument(
        "--force", action="store_true", help="Replace DEST if it already exists."
    )

    command(
        "migrate",
        run_migrate,
        "Apply the database migrations that are missing, and say which (the relay also "
        "does at start).",
    )
    copy_db = command(
        "copy-db",
        run_copy_db,
        "Copy a SQLite installation into an empty PostgreSQL database, every thread and "
        "seq as it is. Stop the relay first.",
        with_settings=False,
    )
    copy_db.add_argument("source", type=Path, metavar="FROM", help="The SQLite file.")
    copy_db.add_argument("target", metavar="TO", help="postgresql://user:pass@host/dbname")

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


def site_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """A flag per site setting that `porch site <command>` takes (relay/sites/settings.py):
    its help, syntax and, for a per-language one, a flag per other language."""
    group = parser.add_argument_group("site settings")
    for name, setting, language in site_settings.flags(command):
        flag = setting.flag
        assert flag is not None  # flags() yields only settings that have one
        if language is not None:
            help = f"Like {flag.name}, for pages in {site_settings.LANGUAGE_NAMES[language]}."
        else:
            notes = [setting.help]
            if flag.repeatable:
                notes.append("Repeatable" + (": replaces the list." if command == "set" else "."))
            notes.append(flag.usage)
            if command == "add" and setting.on_add and setting.default not in ("", [], None):
                notes.append(f"Default: {setting.default}.")
            help = " ".join(note for note in notes if note)
        group.add_argument(
            name,
            dest=flag_dest(setting, language),
            metavar=flag.metavar,
            action="append" if flag.repeatable and language is None else "store",
            required=flag.required and command == "add" and language is None,
            help=help,
        )
