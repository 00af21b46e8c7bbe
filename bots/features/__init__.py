"""Optional features that plug into an engine through :mod:`core.hooks`.

Each module in this package defines ``ORDER: int`` (lower installs first, so its input guards run first)
and ``async def install(ctx: FeatureContext) -> None``, which appends to ``ctx.engine.hooks`` what the
settings enable, and registers cleanups in ``ctx.closers``. Per-bot data (rules, eval cases, documents)
lives in ``bots/data/<bot name>/``.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.config import Settings
from core.conversation import ConversationEngine

log = logging.getLogger(__name__)

DATA_ROOT = Path(__file__).resolve().parent.parent / "data"


@dataclass
class FeatureContext:
    settings: Settings
    engine: ConversationEngine
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        """``bots/data/<bot name>``: the bot's own rules, evaluation cases and documents."""
        return DATA_ROOT / self.engine.bot.name


async def install_features(ctx: FeatureContext) -> None:
    """Install every feature module found in this package, in ``ORDER``."""
    modules = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 100)):
        install = getattr(module, "install", None)
        if install is not None:
            await install(ctx)
