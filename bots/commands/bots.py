"""``chatbot bots``: the bots this install knows."""

from __future__ import annotations

import argparse

from bots.registry import BOTS
from bots.settings import Settings

NAME = "bots"
HELP = "list the bots"
CONSOLE_LOG_LEVEL = "WARNING"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


async def run(args: argparse.Namespace, settings: Settings) -> int:
    for bot in BOTS.values():
        print(f"{bot.name}: {bot.description}")
    return 0
