"""The ``chatbot`` command: ``chat`` in a terminal, ``run`` on the configured platforms."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from bots.app import (
    PLATFORM_KEYS,
    PLATFORM_MODULES,
    configured_platforms,
    open_engine,
    running_platforms,
    secrets_of,
)
from bots.registry import BOTS
from core.config import Settings, load_settings
from core.errors import ConfigError, ModelError
from core.log_setup import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatbot", description="An LLM chat bot for the terminal and chat platforms."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="talk to a bot in this terminal (or pipe messages in, one per line)")
    chat.add_argument("--bot", help=f"which bot ({', '.join(BOTS)}); default: CHATBOT_BOT or 'default'")
    chat.add_argument("--session", default="default", help="conversation id (console:<ID>); default: default")
    run = sub.add_parser("run", help="run the bot on every platform whose token is set")
    run.add_argument("--bot", help=f"which bot ({', '.join(BOTS)})")
    run.add_argument(
        "--platform",
        action="append",
        choices=sorted(PLATFORM_MODULES),
        help="only this platform (repeatable)",
    )
    sub.add_parser("bots", help="list the bots")
    return parser


async def _chat(settings: Settings, bot: str | None, session: str) -> int:
    from adapters.terminal import TerminalChat

    async with open_engine(settings, bot, check_model=True) as engine:
        return await TerminalChat(engine, session=session).run()


async def _run(settings: Settings, bot: str | None, platforms: list[str] | None) -> int:
    names = platforms or configured_platforms(settings)
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
        open_engine(settings, bot, check_model=True) as engine,
        running_platforms(settings, engine, names),
    ):
        print(f"running {engine.bot.name} on {', '.join(names)}; Ctrl-C to stop", file=sys.stderr)
        await stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "bots":
        for bot in BOTS.values():
            print(f"{bot.name}: {bot.description}")
        return 0
    for stream in (sys.stdin, sys.stdout):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
    try:
        settings = load_settings()
        configure_logging(
            level=settings.log_level,
            log_file=settings.log_file,
            console_level="INFO" if args.command == "run" else "WARNING",
            secrets=secrets_of(settings),
        )
        if args.command == "chat":
            return asyncio.run(_chat(settings, args.bot, args.session))
        return asyncio.run(_run(settings, args.bot, args.platform))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModelError as exc:
        print(
            f"error: {exc}. Is the server running? Check OPENAI_BASE_URL and OPENAI_API_KEY.", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
