"""The privacy feature's settings."""

from __future__ import annotations

from pydantic import Field

from core.config import SettingsBase


class PrivacySettings(SettingsBase):
    """The privacy feature's settings."""

    retention_days: int = Field(default=0, ge=0, alias="CHATBOT_RETENTION_DAYS")
