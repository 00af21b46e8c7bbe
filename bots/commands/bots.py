"""``chatbot bots``: the bots the bots file defines, and where it was read from."""

from __future__ import annotations

import argparse

from bots.registry import bots_config
from bots.settings import Settings

NAME = "bots"
HELP = "list the bots the bots file defines (and where it was read from)"
CONSOLE_LOG_LEVEL = "WARNING"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


async def run(args: argparse.Namespace, settings: Settings) -> int:
    config = bots_config()
    print(f"# bots file: {config.path}")
    for entry in config.bots.values():
        where = ", ".join(entry.platforms) or "no platform of its own"
        state = "" if entry.enabled else " (disabled)"
        extras = []
        if entry.profile.modes:
            extras.append(f"modes: {', '.join(mode.name for mode in entry.profile.modes)}")
        if entry.profile.models:
            extras.append(f"models: {', '.join(entry.profile.models)}")
        more = f" [{'; '.join(extras)}]" if extras else ""
        print(f"{entry.name}{state}: {entry.profile.description} (runs on: {where}){more}")
    return 0
