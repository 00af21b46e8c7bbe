"""The ``chatbot`` command. Subcommands live in :mod:`bots.commands`, one module each."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

from bots.app import secrets_of
from bots.bot_settings import file_secrets
from bots.commands import commands
from bots.registry import bots_config
from bots.settings import load_settings
from core.errors import ConfigError, ModelError, ModelUnavailable
from core.log_setup import configure_logging

log = logging.getLogger("chatbot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatbot", description="An LLM chat bot for the terminal and chat platforms."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in sorted(commands().items()):
        module.add_arguments(sub.add_parser(name, help=module.HELP))
    return parser


def bots_file_secrets() -> list[str]:
    """The credentials the bots file names, for log redaction (none when the file does not load: the
    command that needs it reports why)."""
    try:
        return file_secrets(bots_config())
    except ConfigError:
        return []


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = commands()[args.command]
    for stream in (sys.stdin, sys.stdout):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
    try:
        settings = load_settings()
        configure_logging(
            level=settings.log_level,
            log_file=settings.log_file,
            console_level=getattr(command, "CONSOLE_LOG_LEVEL", "WARNING"),
            secrets=secrets_of(settings) + bots_file_secrets(),
            json_lines=settings.json_logs,
        )
        result: int = asyncio.run(command.run(args, settings))
        return result
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModelError as exc:
        # Only a server we could not reach gets the "is it running" hint; other errors carry their own.
        hint = (
            ". Is the server running? Check OPENAI_BASE_URL and OPENAI_API_KEY."
            if isinstance(exc, ModelUnavailable) and str(exc).startswith("cannot reach")
            else ""
        )
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # anything else that stops the command: one line, the traceback only at DEBUG
        log.debug("chatbot %s failed", args.command, exc_info=True)
        print(f"error: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
