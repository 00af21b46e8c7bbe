"""The bots, by name (``--bot NAME``): those the bots file defines (see :mod:`bots.bots_file`)."""

from __future__ import annotations

from pathlib import Path

from bots.bots_file import BotEntry, BotsConfig, load_bots, locate
from core.bot_profile import BotProfile


def bots_config(path: Path | None = None) -> BotsConfig:
    """The bots file in effect (``CHATBOT_BOTS_FILE``, ``./bots.toml`` or the packaged one), validated."""
    return load_bots(path)


def get_entry(name: str, path: Path | None = None) -> BotEntry:
    """The bot called ``name`` in the bots file, or a :class:`core.errors.ConfigError` naming the choices."""
    return bots_config(path).get(name)


def get_bot(name: str, path: Path | None = None) -> BotProfile:
    return get_entry(name, path).profile


def bot_names_help() -> str:
    """For ``--bot`` help texts: where the names come from (the file is not read to build a parser)."""
    return f"a bot of the bots file ({locate().name}; `chatbot bots` lists them)"
