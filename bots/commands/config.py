"""``chatbot config check [FILE]``: validate a bots file; print every problem and exit 1 if it has any."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bots.bot_settings import missing_credentials
from bots.bots_file import BotsFileError, load_bots, locate
from bots.settings import Settings

NAME = "config"
HELP = "check a bots file (default: the one in effect) and list every problem"
CONSOLE_LOG_LEVEL = "WARNING"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="validate the bots file; exit 1 with its errors")
    check.add_argument("file", nargs="?", type=Path, help="the bots file (default: the one in effect)")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or locate()
    try:
        config = load_bots(path)
    except BotsFileError as exc:
        print(f"{path}: {len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}", file=sys.stderr)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    print(
        f"{path}: OK, {len(config.bots)} bot{'s' if len(config.bots) != 1 else ''}: {', '.join(config.bots)}"
    )
    for entry in config.bots.values():  # not errors: the variables may be set where the bots will run
        for platform in entry.platforms:
            missing = missing_credentials(entry, platform)
            if entry.enabled and missing:
                print(f"note: {entry.name} on {platform}: {', '.join(missing)} not set here")
    return 0
