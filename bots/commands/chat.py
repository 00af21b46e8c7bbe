"""``chatbot chat``: talk to a bot in this terminal, or pipe messages in, one per line."""

from __future__ import annotations

import argparse

from adapters.terminal import TerminalChat
from bots.app import open_engine
from bots.registry import bot_names_help
from bots.settings import Settings

NAME = "chat"
HELP = "talk to a bot in this terminal (or pipe messages in, one per line)"
CONSOLE_LOG_LEVEL = "WARNING"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bot", help=f"which bot: {bot_names_help()}; default: CHATBOT_BOT or 'default'")
    parser.add_argument(
        "--session", default="default", help="conversation id (console:<ID>); default: default"
    )


async def run(args: argparse.Namespace, settings: Settings) -> int:
    async with open_engine(settings, args.bot, check_model=True) as engine:
        return await TerminalChat(engine, session=args.session).run()
