"""Settings of the state several worker processes share (keys ``CHATBOT_REDIS_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.config import SettingsBase


class SharedStateSettings(SettingsBase):
    """Unset ``CHATBOT_REDIS_URL``: one process, in-process gates, dedup and limits (the default).

    The URL is a secret (it may hold a password): it never shows in a repr, a log line or an error."""

    redis_url: SecretStr | None = Field(default=None, alias="CHATBOT_REDIS_URL")
    redis_prefix: str = Field(default="chatbot:", alias="CHATBOT_REDIS_PREFIX")
