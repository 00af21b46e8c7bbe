"""Wiring: settings + a bot definition -> store, model client, token counter and engine; then platforms."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bots.bot_settings import settings_for
from bots.bots_file import BotEntry
from bots.registry import get_entry
from bots.settings import Settings
from core.bot_profile import BotProfile
from core.clock import Clock, SystemClock
from core.config import OPENAI_DEFAULT_URL
from core.conversation import ConversationEngine
from core.errors import ConfigError
from core.model_client import OpenAIChatModel, ReplyLimits
from core.model_outcomes import max_tokens_cap
from core.model_servers import ServerWindow, choose_window, discover_window
from core.model_tokenize import ServerTokenCounter
from core.model_windows import DEFAULT_CONTEXT_TOKENS, known_context_window
from core.postgres_connection import password_of
from core.storage_url import storage_for
from core.store import ConversationStore
from core.tokens import TokenCounter
from features import FeatureContext, install_features

if TYPE_CHECKING:
    from adapters.base import PlatformRunner
    from core.shared_state import SharedState

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
            if "://" in secret:  # a service URL (CHATBOT_REDIS_URL): its password on its own too
                values.append(urlsplit(secret).password or "")
    values += database_passwords(settings)
    return [v for v in values if v]


def database_passwords(settings: Settings) -> list[str]:
    """The password in ``CHATBOT_DATABASE_URL``, alone: an error may quote it without the rest of the URL."""
    url = settings.database()
    return [password_of(url)] if url else []


def connect_model(settings: Settings) -> OpenAIChatModel:
    """The client of the configured OpenAI-compatible server, with the settings' timeouts and retries."""
    return OpenAIChatModel.connect(
        settings.openai_base_url,
        settings.api_key(),
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
        limits=ReplyLimits(
            first_token=settings.first_token_timeout,
            stall=settings.stall_timeout,
            total=settings.reply_timeout,
        ),
        max_concurrent=settings.max_concurrent_calls or 0,
    )


MIN_HISTORY_SHARE = 0.25  # below this share of the window left for history, the budget is starved


async def fit_to_server(
    bot: BotProfile,
    settings: Settings,
    model: OpenAIChatModel,
    counter: TokenCounter,
    *,
    configured: int | None = None,
) -> BotProfile:
    """``bot`` with the window the server reports (logged with its source), ``max_tokens`` capped to a share
    of it, and the model client's concurrency limit set to the server's slot count when none is configured.

    A 512-token llama.cpp server with the default ``max_tokens`` of 1024 left 128 tokens of budget, no
    history from turn 2 and no warning (issue 13): now ``max_tokens`` is cut to ``CHATBOT_MAX_TOKENS_SHARE``
    of the window and a warning gives the numbers when history is still short of room.
    """
    found: ServerWindow | None = None
    if settings.discover_window and settings.openai_base_url.rstrip("/") != OPENAI_DEFAULT_URL:
        try:
            found = await discover_window(model.client, bot.model_name)
        except Exception:
            log.warning("asking the model server for its context window failed", exc_info=True)
    choice = choose_window(
        found,
        configured,
        known_context_window(bot.model_name),
        DEFAULT_CONTEXT_TOKENS,
    )
    model.server = found
    log.info("context window %d tokens (from %s)", choice.window, choice.source)
    if found is not None and found.slots and settings.max_concurrent_calls is None:
        model.set_max_concurrent(found.slots)
        log.info("at most %d concurrent model calls (the server's slots)", found.slots)
    return fit_to_window(bot, choice.window, settings, counter)


def fit_to_window(bot: BotProfile, window: int, settings: Settings, counter: TokenCounter) -> BotProfile:
    """``bot`` with ``window`` and ``max_tokens`` capped to its share of it, warning when history is short
    of room (also what a reloaded bots file goes through, with the window found at start)."""
    max_tokens = bot.params.max_tokens
    cap = max_tokens_cap(window, settings.max_tokens_share)
    if max_tokens > cap:
        log.warning(
            "max_tokens %d is too large for a %d-token window; capped to %d (%.0f%%) to leave room for "
            "history (set CHATBOT_MAX_TOKENS or CHATBOT_MAX_TOKENS_SHARE to change)",
            max_tokens,
            window,
            cap,
            settings.max_tokens_share * 100,
        )
        max_tokens = cap
    fitted = replace(bot, context_tokens=window, params=replace(bot.params, max_tokens=max_tokens))
    system_tokens = counter.count(fitted.system_prompt)
    budget = int(window * fitted.trim.threshold) - max_tokens
    history = budget - system_tokens
    if history < window * MIN_HISTORY_SHARE * fitted.trim.threshold:
        log.warning(
            "little room for history: window %d x threshold %.2f = %d, minus max_tokens %d and the system "
            "prompt %d leaves %d tokens; use a larger context (server or CHATBOT_CONTEXT_TOKENS) or lower "
            "CHATBOT_MAX_TOKENS",
            window,
            fitted.trim.threshold,
            int(window * fitted.trim.threshold),
            max_tokens,
            system_tokens,
            history,
        )
    return fitted


def exact_counter(model: OpenAIChatModel, bot: BotProfile) -> ServerTokenCounter | None:
    """The server's own token counter when discovery found a server that has one (llama.cpp, vLLM)."""
    if model.server is None:
        return None
    counter = ServerTokenCounter(model.client, bot.model_name, model.server.dialect)
    return counter if counter.available else None


@asynccontextmanager
async def open_engine(
    settings: Settings,
    bot_name: str | None = None,
    *,
    clock: Clock | None = None,
    check_model: bool = False,
    features: bool = True,
    entry: BotEntry | None = None,
    store: ConversationStore | None = None,
) -> AsyncIterator[ConversationEngine]:
    """A ready engine for ``bot_name`` (default: the settings' bot; or the bots file's ``entry``) with its
    features, closed on exit. ``store``, when given, is shared (several bots in one process) and left open."""
    entry = entry or get_entry(bot_name or settings.bot)
    settings = settings_for(entry, settings)
    definition = entry.profile
    bot = definition.with_settings(settings)
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
        bot = await fit_to_server(
            bot, settings, model, counter, configured=settings.context_tokens or definition.context_tokens
        )
        server_tokens = exact_counter(model, bot)
        if server_tokens is not None:
            exact = await server_tokens.count(bot.system_prompt)
            if exact is not None:
                counter.learn(bot.system_prompt, exact)
        own_store = store is None
        if store is None:
            store = storage_for(settings.database(), settings.db_path)
            await store.open()
        engine = ConversationEngine(bot, store, model, counter, clock=clock or SystemClock())
        engine.max_tokens_share = settings.max_tokens_share  # for a window learned from an overflow
        engine.server_tokens = server_tokens
        engine.session_prefix = entry.session_prefix
        context = FeatureContext(
            settings, engine, data_root=DATA_ROOT, secrets=secrets_of(settings), bot_data_dir=entry.data_dir
        )
        try:
            engine.shared = await open_shared_state(settings, engine.clock)
            if features:
                await install_features(context)
            yield context.engine
        finally:
            for close in reversed(context.closers):
                try:
                    await close()
                except Exception:
                    log.exception("closing a feature failed")
            if engine.shared is not None:
                await engine.shared.close()
            if own_store:
                await store.close()
    finally:
        await model.close()


async def open_shared_state(settings: Settings, clock: Clock) -> SharedState | None:
    """The state every worker shares (Redis) when ``CHATBOT_REDIS_URL`` is set; ``None``: one process."""
    if settings.redis_url is None or not settings.redis_url.get_secret_value():
        return None
    from adapters.shared_state.redis_state import connect  # redis is imported only when it is used

    return await connect(settings.redis_url.get_secret_value(), clock, prefix=settings.redis_prefix)


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
