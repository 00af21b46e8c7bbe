"""Several bots in one process (``chatbot run``): one shared store, one engine per bot with its own
features and limits, each bot on its own platforms with its own credentials.

Which bots run where (:func:`plan_bots`): with ``--bot NAME``, that bot, on the platforms its bots-file
section lists, else on every platform whose usual variables are set (as before the bots file). Without
``--bot``, every enabled bot that lists platforms; when no bot lists any, ``CHATBOT_BOT`` on every platform
whose usual variables are set, as before. ``--platform`` narrows either.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from adapters.base import PlatformRunner
from bots.app import configured_platforms, open_engine, running_platforms
from bots.bot_settings import CREDENTIALS, require_credentials, settings_for
from bots.bots_file import BotEntry, BotsConfig
from bots.settings import Settings
from core.clock import Clock
from core.conversation import ConversationEngine
from core.errors import ConfigError
from core.storage_url import storage_for
from features.metrics.install import TurnMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotPlan:
    """One bot to run, and on which platforms."""

    entry: BotEntry
    platforms: tuple[str, ...]


@dataclass
class RunningBot:
    """A bot that runs: its bots-file entry, the settings it runs with and its engine."""

    entry: BotEntry
    settings: Settings
    engine: ConversationEngine
    platforms: tuple[str, ...]
    runners: list[PlatformRunner]


def plan_bots(
    config: BotsConfig, settings: Settings, *, bot: str | None = None, only: Sequence[str] | None = None
) -> list[BotPlan]:
    """Which bot runs on which platform; a :class:`ConfigError` names what is missing or clashes."""
    listed = [entry for entry in config.bots.values() if entry.enabled and entry.platforms]
    if bot is not None or not listed:
        entry = config.get(bot or settings.bot)
        names = list(entry.platforms) or configured_platforms(settings_for(entry, settings))
        plans = [BotPlan(entry, tuple(names))]
    else:
        plans = [BotPlan(entry, tuple(entry.platforms)) for entry in listed]
    if only:
        plans = [BotPlan(p.entry, tuple(name for name in p.platforms if name in only)) for p in plans]
    plans = [p for p in plans if p.platforms]
    used: dict[tuple[str, str], str] = {}  # (platform, credential variable) -> bot
    for p in plans:
        configured = configured_platforms(settings_for(p.entry, settings))  # reads .env: once per bot
        for platform in p.platforms:
            require_credentials(p.entry, platform)
            if platform not in configured:
                raise ConfigError(
                    f"bot {p.entry.name} on {platform}: no credentials; name them in the bots file "
                    f"([bots.{p.entry.name}.platforms.{platform}] token_env = ...) or set the usual variables"
                )
            where = p.entry.platforms.get(platform)
            token = where.token_env if where is not None else None
            key = (platform, token or _usual(platform))
            if key in used:
                raise ConfigError(
                    f"bots {used[key]} and {p.entry.name} would both run on {platform} with {key[1]}: "
                    "give each its own token_env in the bots file"
                )
            used[key] = p.entry.name
    return plans


def _usual(platform: str) -> str:
    """The usual variable of a platform's bot token (``TELEGRAM_BOT_TOKEN``)."""
    field = CREDENTIALS[(platform, "token_env")]
    return field.upper()


@asynccontextmanager
async def running_bots(
    settings: Settings,
    plans: Sequence[BotPlan],
    *,
    clock: Clock | None = None,
    check_model: bool = False,
) -> AsyncIterator[list[RunningBot]]:
    """Open one store, an engine per planned bot on it, start each bot's platforms; stop all on exit.

    The metrics endpoint (one port) is served by the first bot; the others report to it, labelled by bot.
    """
    store = storage_for(settings.database(), settings.db_path)  # SQLite, or CHATBOT_DATABASE_URL's
    await store.open()
    try:
        async with AsyncExitStack() as stack:
            running: list[RunningBot] = []
            metrics: list[TurnMetrics] = []
            for index, p in enumerate(plans):
                base = settings if index == 0 else settings.model_copy(update={"metrics_port": None})
                engine = await stack.enter_async_context(
                    open_engine(base, entry=p.entry, store=store, clock=clock, check_model=check_model)
                )
                if index == 0:
                    metrics = [o for o in engine.hooks.observers if isinstance(o, TurnMetrics)]
                else:
                    engine.hooks.observers.extend(metrics)
                bot_settings = settings_for(p.entry, base)
                runners = await stack.enter_async_context(
                    running_platforms(bot_settings, engine, list(p.platforms))
                )
                running.append(RunningBot(p.entry, bot_settings, engine, p.platforms, runners))
            yield running
    finally:
        await store.close()
