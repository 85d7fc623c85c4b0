"""`porch answers import|export|list|ask`: a site's automatic answers (relay/answers)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from relay.cli.common import load_config, with_store
from relay.errors import CommandError
from relay.sites.settings import LANGUAGE

# The answers' code (stemmers, matching) loads only for these commands: see common.py.
if TYPE_CHECKING:
    from relay.models import Site
    from relay.store import Store


async def _site(store: Store, site_id: str) -> Site:
    site = await store.get_site(site_id)
    if site is None:
        raise CommandError(f"no site {site_id!r} (see `porch site list`)")
    return site


def run_answers_import(args: argparse.Namespace) -> None:
    from relay.answers.library import BadFile, read_csv, terms_of

    config = load_config(args)
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"cannot read {args.file}: {error}") from None

    async def imported(store: Store) -> int:
        site = await _site(store, args.site)
        try:
            answers = read_csv(text, site.id, LANGUAGE.of(site))
        except BadFile as error:
            raise CommandError(f"{args.file}: nothing imported:\n{error}") from None
        rows = [(answer, terms_of(answer)) for answer in answers]
        languages = {answer.language for answer in answers} | {
            answer.language for answer in await store.site_answers(site.id)
        }
        return await store.replace_answers(site.id, rows, languages=languages)

    count = with_store(config, imported)
    print(f"Imported {count} answers: they are now the site's whole list.")


def run_answers_export(args: argparse.Namespace) -> None:
    from relay.answers.library import write_csv

    config = load_config(args)

    async def exported(store: Store) -> str:
        await _site(store, args.site)
        return write_csv(await store.site_answers(args.site))

    sys.stdout.write(with_store(config, exported))


def run_answers_list(args: argparse.Namespace) -> None:
    config = load_config(args)

    async def listed(store: Store) -> list[dict[str, object]]:
        await _site(store, args.site)
        return [answer.to_json() for answer in await store.site_answers(args.site)]

    print(json.dumps(with_store(config, listed), indent=2, ensure_ascii=False))


def run_answers_ask(args: argparse.Namespace) -> None:
    from relay.answers.finder import Finder

    config = load_config(args)

    async def asked(store: Store) -> dict[str, object]:
        site = await _site(store, args.site)
        language = args.language or LANGUAGE.of(site)
        return (await Finder(store).find(site.id, args.text, language)).to_json()

    print(json.dumps(with_store(config, asked), indent=2, ensure_ascii=False))
