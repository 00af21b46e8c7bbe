"""Product features around the engine, one package each, plugged in through :mod:`core.hooks`.

    guardrails/  the rules layer on input and output, and the optional model check
    limits/      messages a minute, daily token budgets, prices
    review/      review triggers and the flags ``chatbot review`` lists
    evaluation/  evaluation cases and their runner (``chatbot eval``; no installer: nothing per turn)
    knowledge/   the knowledge base: readers, chunking, embeddings, retrieval (``chatbot ingest``)
    metrics/     the Prometheus endpoint
    privacy/     ``/forget``, retention, and the pasted-credential guard
    media/       photos, voice notes, audio and documents sent with a message
    tools/       MCP servers and their tools for the engine's tool loop

Features depend on :mod:`core` only (never on ``adapters`` or ``bots``); the bots wire them in. Each
package with per-turn work has an ``install`` module that defines ``ORDER: int`` (lower installs first, so
its input guards run first) and ``async def install(ctx: FeatureContext) -> None``, which appends to
``ctx.engine.hooks`` what the settings enable and registers cleanups in ``ctx.closers``. Per-bot data
(rules, eval cases, documents) lives in ``ctx.data_dir``, which the bots choose (``bots/data/<bot name>/``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.conversation import ConversationEngine
from features.settings import FeatureSettings

log = logging.getLogger(__name__)


@dataclass
class FeatureContext:
    """What an installer gets: the settings, the engine to plug into, where the bot's data lives, the
    configured secrets (for redaction), and a list to register cleanups in."""

    settings: FeatureSettings
    engine: ConversationEngine
    data_root: Path
    secrets: list[str] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    bot_data_dir: Path | None = None  # the bots file's ``data`` folder of this bot, when it names one

    @property
    def data_dir(self) -> Path:
        """The bot's own rules, evaluation cases and documents: its ``bot_data_dir``, else
        ``<data root>/<bot name>``."""
        return self.bot_data_dir or self.data_root / self.engine.bot.name


async def install_features(ctx: FeatureContext) -> None:
    """Install every feature package that has an ``install`` module, in ``ORDER``."""
    modules = [
        importlib.import_module(f"{__name__}.{info.name}.install")
        for info in pkgutil.iter_modules(__path__)
        if info.ispkg and importlib.util.find_spec(f"{__name__}.{info.name}.install") is not None
    ]
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 100)):
        install = getattr(module, "install", None)
        if install is not None:
            await install(ctx)
