"""``chatbot run``: every bot the bots file enables, each on its platforms (or one bot with ``--bot``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from bots.app import PLATFORM_KEYS, PLATFORM_MODULES
from bots.fleet import plan_bots, running_bots
from bots.registry import bot_names_help, bots_config
from bots.reload import BotsFileReloader
from bots.settings import Settings

NAME = "run"
HELP = "run the bots of the bots file on their platforms (or one bot on every platform whose token is set)"
CONSOLE_LOG_LEVEL = "INFO"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bot", help=f"only this bot: {bot_names_help()}")
    parser.add_argument(
        "--platform",
        action="append",
        choices=sorted(PLATFORM_MODULES),
        help="only this platform (repeatable)",
    )
    parser.add_argument(
        "--no-watch", action="store_true", help="do not re-read the bots file when it changes"
    )


async def run(args: argparse.Namespace, settings: Settings) -> int:
    config = bots_config()
    plans = plan_bots(config, settings, bot=args.bot, only=args.platform)
    if not plans:
        lines = "\n".join(f"  {name}: set {keys}" for name, keys in PLATFORM_KEYS.items())
        print(
            "error: no platform is configured. List platforms per bot in the bots file "
            f"({config.path}; see docs/bots-file.md), or in .env or the environment:\n{lines}",
            file=sys.stderr,
        )
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with running_bots(settings, plans, check_model=True) as bots:
        running = "; ".join(f"{bot.entry.name} on {', '.join(bot.platforms)}" for bot in bots)
        print(f"running {running} (bots file {config.path}); Ctrl-C to stop", file=sys.stderr)
        watcher = None
        if not args.no_watch:
            reloader = BotsFileReloader(config, bots)
            watcher = asyncio.create_task(reloader.watch(stop=stop), name="bots-file-watch")
        await stop.wait()
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    return 0
