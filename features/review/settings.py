"""The review triggers' settings."""

from __future__ import annotations

from pydantic import Field

from core.config import SettingsBase


class ReviewSettings(SettingsBase):
    """The review triggers' settings."""

    review_phrases: str = Field(default="", alias="CHATBOT_REVIEW_PHRASES")
