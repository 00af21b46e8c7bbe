"""The metrics endpoint's settings."""

from __future__ import annotations

from pydantic import Field

from core.config import SettingsBase


class MetricsSettings(SettingsBase):
    """The metrics endpoint's settings."""

    metrics_port: int | None = Field(default=None, alias="CHATBOT_METRICS_PORT")
    metrics_host: str = Field(default="127.0.0.1", alias="CHATBOT_METRICS_HOST")
