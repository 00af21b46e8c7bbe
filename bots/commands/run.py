"""``chatbot run``: the bot on every platform whose token is set."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from bots.app import PLATFORM_KEYS, PLATFORM_MODULES, configured_platforms, open_engine, running_platforms
from bots.registry import bot_names_help
from bots.settings import Settings

NAME = "run"
HELP = "run the bot on every platform whose token is set"
CONSOLE_LOG_LEVEL = "INFO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bot", help=f"which bot: {bot_names_help()}")
    parser.add_argument(
        "--platform",
        action="append",
        choices=sorted(PLATFORM_MODULES),
        help="only this platform (repeatable)",
    )


async def run(args: argparse.Namespace, settings: Settings) -> int:
    names = args.platform or configured_platforms(settings)
    if not names:
        lines = "\n".join(f"  {name}: set {keys}" for name, keys in PLATFORM_KEYS.items())
        print(f"error: no platform is configured. In .env or the environment:\n{lines}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with (
        open_engine(settings, args.bot, check_model=True) as engine,
        running_platforms(settings, engine, names),
    ):
        print(f"running {engine.bot.name} on {', '.join(names)}; Ctrl-C to stop", file=sys.stderr)
        await stop.wait()
    return 0
