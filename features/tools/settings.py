"""The tools feature's settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from core.config import SettingsBase


class ToolSettings(SettingsBase):
    """The tools feature's settings; a bot's servers and limits live in its tools file or definition."""

    tools: bool = Field(default=True, alias="CHATBOT_TOOLS")
    tools_file: Path | None = Field(default=None, alias="CHATBOT_TOOLS_FILE")
