"""The `porch` command. Every subcommand has --help; every error is one line and a
non-zero exit, naming the bad value."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from relay.catalogue import LANGUAGES
from relay.channels.apps import OPTIONS
from relay.cli.answers import (
    run_answers_ask,
    run_answers_export,
    run_answers_import,
    run_answers_list,
)
from relay.cli.channel import run_channel_add, run_channel_list, run_channel_remove
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
from relay.cli.push import run_push_keys
from relay.config import FIELDS, env_var, flag
from relay.errors import CommandError, ConfigError
from relay.sites import settings as site_settings
from relay.sites.checks import SENDER_CHECKS


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

    channel = commands.add_parser(
        "channel",
        help="A site's accounts on messaging apps (Telegram, WhatsApp, Messenger).",
        description="A site's accounts on messaging apps (Telegram, WhatsApp, Messenger).",
    )
    channel_commands = channel.add_subparsers(title="commands", metavar="COMMAND")
    channel_add = command(
        "add",
        run_channel_add,
        "Connect an account; prints the channel with its webhook URL (never its secrets).",
        parent=channel_commands,
    )
    channel_add.add_argument("site", help="The site's id.")
    channel_add.add_argument("kind", choices=sorted(OPTIONS), help="The app.")
    for name in sorted({name for names in OPTIONS.values() for name in names}):
        channel_add.add_argument(f"--{name.replace('_', '-')}", dest=name, help=f"({name})")
    channel_add.add_argument(
        "--template", help="WhatsApp: an approved template's name, for outside the 24 hours."
    )
    channel_list = command(
        "list", run_channel_list, "The site's channels, as JSON.", parent=channel_commands
    )
    channel_list.add_argument("site", help="The site's id.")
    channel_remove = command(
        "remove", run_channel_remove, "Disconnect an account.", parent=channel_commands
    )
    channel_remove.add_argument("site", help="The site's id.")
    channel_remove.add_argument("channel", help="The channel's id (see `porch channel list`).")

    answers = commands.add_parser(
        "answers",
        help="A site's automatic answers (the owner's own, sent when one matches surely).",
        description="A site's automatic answers (the owner's own, sent when one matches surely).",
    )
    answers_commands = answers.add_subparsers(title="commands", metavar="COMMAND")
    answers_import = command(
        "import",
        run_answers_import,
        "Make a CSV file the site's list (columns question, answer, language, alternatives "
        "separated by ' | '); a bad row is reported by line and nothing is imported.",
        parent=answers_commands,
    )
    answers_import.add_argument("site", help="The site's id.")
    answers_import.add_argument("file", help="The CSV file (UTF-8).")
    for name, run, text in (
        ("export", run_answers_export, "Print the site's list as CSV (what import reads)."),
        ("list", run_answers_list, "The site's answers, as JSON."),
    ):
        command(name, run, text, parent=answers_commands).add_argument(
            "site", help="The site's id."
        )
    answers_ask = command(
        "ask",
        run_answers_ask,
        "Print, as JSON, what the relay would answer to TEXT and why; changes nothing.",
        parent=answers_commands,
    )
    answers_ask.add_argument("site", help="The site's id.")
    answers_ask.add_argument("text", help="What a visitor writes.")
    answers_ask.add_argument("--language", choices=LANGUAGES, help="Default: the site's.")

    push = commands.add_parser(
        "push",
        help="Web Push: notifications on owners' and visitors' devices.",
        description="Web Push: notifications on owners' and visitors' devices.",
    )
    push_commands = push.add_subparsers(title="commands", metavar="COMMAND")
    command(
        "keys",
        run_push_keys,
        "Print the installation's VAPID public key (base64url), making the key pair on "
        "first use: the applicationServerKey browsers subscribe with.",
        parent=push_commands,
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
    inspect_cmd.add_argument(
        "--sender-checks",
        choices=SENDER_CHECKS,
        default="dmarc",
        help="The site policy to judge the sender by (default dmarc).",
    )
    inspect_cmd.add_argument(
        "--peer-ip", metavar="IP", help="The address that delivered it by SMTP (checks SPF)."
    )
    inspect_cmd.add_argument("--helo", metavar="NAME", help="Its SMTP HELO name.")
    inspect_cmd.add_argument("--mail-from", metavar="ADDRESS", help="Its SMTP MAIL FROM.")
    inspect_cmd.add_argument(
        "--no-checks", action="store_true", help="Only read it: no sender checks, no DNS."
    )

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
            "who",
            metavar="EMAIL_OR_ID",
            help="The visitor's email or app address (phone number, chat id), every site; or id.",
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
        "snapshot, verified, then renamed into place; its photos and files go to DEST.blobs/.",
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
    copy_db.add_argument(
        "--blobs",
        type=Path,
        metavar="DIR",
        help="Where the installation's photos and files are (default: blobs/ beside FROM).",
    )

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
