"""Usage limits: messages a minute per user, daily token budgets per user and per bot (features.limits.usage)."""

from __future__ import annotations

from core.store import storage_of
from features import FeatureContext
from features.limits.usage import Limits, UsageLimits

ORDER = 10  # first: a user over their limit costs nothing more, not even a guard model call


async def install(ctx: FeatureContext) -> None:
    settings, engine = ctx.settings, ctx.engine
    limits = Limits(
        per_minute=settings.rate_limit_per_minute,
        user_daily_tokens=settings.user_daily_tokens,
        bot_daily_tokens=settings.bot_daily_tokens,
    )
    if not (limits.per_minute or limits.user_daily_tokens or limits.bot_daily_tokens):
        return
    ledger = storage_of(engine.store).ledger
    guard = UsageLimits(
        limits, ledger, bot=lambda: engine.bot.name, clock=engine.clock.now, shared=engine.shared
    )
    engine.hooks.input_guards.append(guard)
    engine.hooks.observers.append(guard)
