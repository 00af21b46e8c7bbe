"""The one settings object the ``chatbot`` command loads: the engine's, every feature's and every
platform's keys, each declared beside the code that reads it."""

from __future__ import annotations

from pathlib import Path

from adapters.discord.settings import DiscordSettings
from adapters.shared_state.settings import SharedStateSettings
from adapters.slack.settings import SlackSettings
from adapters.telegram.settings import TelegramSettings
from adapters.work_queue.settings import QueueSettings
from core import config
from features.settings import FeatureSettings


class Settings(
    FeatureSettings, TelegramSettings, SlackSettings, DiscordSettings, SharedStateSettings, QueueSettings
):
    """Deployment settings. A bot definition supplies defaults; a key set here overrides it."""


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Read the settings, turning a validation failure into one actionable line."""
    return config.load_settings(Settings, env_file)
