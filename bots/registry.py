"""The bots this project ships, by name (``--bot NAME``)."""

from __future__ import annotations

from bots import default, orbit
from core.bot_profile import BotProfile
from core.errors import ConfigError

BOTS: dict[str, BotProfile] = {bot.name: bot for bot in (default.BOT, orbit.BOT)}


def get_bot(name: str) -> BotProfile:
    try:
        return BOTS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown bot {name!r}: choose one of {', '.join(sorted(BOTS))}") from None
