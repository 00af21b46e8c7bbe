"""The Telegram adapter's settings (keys ``TELEGRAM_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.config import SettingsBase


class TelegramSettings(SettingsBase):
    """The Telegram adapter's settings (keys ``TELEGRAM_*``)."""

    telegram_bot_token: SecretStr | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    telegram_base_url: str = Field(default="https://api.telegram.org", alias="TELEGRAM_BASE_URL")
    telegram_webhook_url: str | None = Field(default=None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(default=None, alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_webhook_listen: str = Field(default="0.0.0.0", alias="TELEGRAM_WEBHOOK_LISTEN")
    telegram_webhook_port: int = Field(default=8443, alias="TELEGRAM_WEBHOOK_PORT")
    telegram_allowed_ids: str = Field(default="", alias="TELEGRAM_ALLOWED_IDS")
    telegram_group_per_user: bool = Field(default=False, alias="TELEGRAM_GROUP_PER_USER")
    telegram_feedback_buttons: bool = Field(default=True, alias="TELEGRAM_FEEDBACK_BUTTONS")
    telegram_drafts: bool = Field(default=True, alias="TELEGRAM_DRAFTS")
