"""The usage limits' settings: messages a minute, daily token budgets, prices."""

from __future__ import annotations

from pydantic import Field

from core.config import SettingsBase


class LimitSettings(SettingsBase):
    """The usage limits' settings: messages a minute, daily token budgets, prices."""

    rate_limit_per_minute: int = Field(default=10, ge=0, alias="CHATBOT_RATE_LIMIT_PER_MINUTE")
    user_daily_tokens: int = Field(default=200_000, ge=0, alias="CHATBOT_USER_DAILY_TOKENS")
    bot_daily_tokens: int = Field(default=5_000_000, ge=0, alias="CHATBOT_BOT_DAILY_TOKENS")
    prices: str = Field(default="", alias="CHATBOT_PRICES")
