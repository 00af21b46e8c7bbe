"""The guardrails' settings."""

from __future__ import annotations

from pydantic import Field

from core.config import SettingsBase


class GuardrailSettings(SettingsBase):
    """The guardrails' settings."""

    guardrails: bool = Field(default=True, alias="CHATBOT_GUARDRAILS")
    guard_model_check: bool = Field(default=False, alias="CHATBOT_GUARD_MODEL_CHECK")
    guard_model: str | None = Field(default=None, alias="CHATBOT_GUARD_MODEL")
    max_message_chars: int = Field(default=8000, gt=0, alias="CHATBOT_MAX_MESSAGE_CHARS")
