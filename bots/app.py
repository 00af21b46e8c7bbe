"""Wiring: settings + a bot definition -> store, model client, token counter and engine; then platforms."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bots.registry import get_bot
from core.clock import Clock, SystemClock
from core.config import Settings
from core.conversation import ConversationEngine
from core.errors import ConfigError
from core.model_client import OpenAIChatModel
from core.sqlite_store import SQLiteStore
from core.tokens import TokenCounter
from features import FeatureContext, install_features

if TYPE_CHECKING:
    from adapters.base import PlatformRunner

log = logging.getLogger(__name__)

DATA_ROOT = Path(__file__).resolve().parent / "data"  # bots/data/<bot name>: rules, eval cases, documents

PLATFORM_MODULES = {
    "telegram": "adapters.telegram",
    "slack": "adapters.slack",
    "discord": "adapters.discord",
}
PLATFORM_KEYS = {
    "telegram": "TELEGRAM_BOT_TOKEN",
    "slack": "SLACK_BOT_TOKEN and SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)",
    "discord": "DISCORD_BOT_TOKEN",
}


def configured_platforms(settings: Settings) -> list[str]:
    """The platforms whose credentials are set."""
    found = []
    if settings.telegram_bot_token is not None:
        found.append("telegram")
    if settings.slack_bot_token is not None and (
        settings.slack_app_token is not None or settings.slack_signing_secret is not None
    ):
        found.append("slack")
    if settings.discord_bot_token is not None:
        found.append("discord")
    return found


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value in the settings, for log redaction."""
    values = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            secret = value.get_secret_value()
            values.append(secret)
            if ":" in secret:  # Telegram tokens are "<bot id>:<secret>"
                values.append(secret.split(":", 1)[1])
    return [v for v in values if v]


def connect_model(settings: Settings) -> OpenAIChatModel:
    """The client of the configured OpenAI-compatible server, with the settings' timeout and retries."""
    return OpenAIChatModel.connect(
        settings.openai_base_url,
        settings.api_key(),
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
    )


@asynccontextmanager
async def open_engine(
    settings: Settings,
    bot_name: str | None = None,
    *,
    clock: Clock | None = None,
    check_model: bool = False,
    features: bool = True,
) -> AsyncIterator[ConversationEngine]:
    """A ready engine for ``bot_name`` (default: the settings' bot) with its features, closed on exit."""
    bot = get_bot(bot_name or settings.bot).with_settings(settings)
    model = connect_model(settings)
    try:
        if check_model:
            await model.check()
        counter = await asyncio.to_thread(
            TokenCounter,
            bot.model_name,
            allow_download=settings.tiktoken_download,
            safety_margin=bot.trim.safety_margin,
        )
        store = SQLiteStore(settings.db_path)
        await store.open()
        context = FeatureContext(
            settings,
            ConversationEngine(bot, store, model, counter, clock=clock or SystemClock()),
            data_root=DATA_ROOT,
            secrets=secrets_of(settings),
        )
        try:
            if features:
                await install_features(context)
            yield context.engine
        finally:
            for close in reversed(context.closers):
                try:
                    await close()
                except Exception:
                    log.exception("closing a feature failed")
            await store.close()
    finally:
        await model.close()


def create_runner(name: str, settings: Settings, engine: ConversationEngine) -> PlatformRunner:
    """The runner of one platform adapter; its SDK is imported only when the platform is used."""
    if name not in PLATFORM_MODULES:
        raise ConfigError(f"unknown platform {name!r}: choose one of {', '.join(PLATFORM_MODULES)}")
    module = importlib.import_module(PLATFORM_MODULES[name])
    runner: PlatformRunner = module.create_runner(settings, engine)
    return runner


@asynccontextmanager
async def running_platforms(
    settings: Settings, engine: ConversationEngine, names: list[str]
) -> AsyncIterator[list[PlatformRunner]]:
    """Start each named platform (as ``chatbot run`` does) and stop them all on exit."""
    started: list[PlatformRunner] = []
    try:
        for name in names:
            runner = create_runner(name, settings, engine)
            await runner.start()
            log.info("%s adapter started", name)
            started.append(runner)
        yield started
    finally:
        for runner in reversed(started):
            try:
                await runner.stop()
            except Exception:
                log.exception("stopping the %s adapter failed", runner.name)
