"""Builders of real engines wired to the fake model server and a temporary SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from bots.app import open_engine
from bots.settings import Settings
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage


def settings_for(base_url: str, db_path: Path, **overrides: Any) -> Settings:
    """Settings pointing at a fake model server, reading no .env file."""
    values: dict[str, Any] = {
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "sk-test-secret-key-123456",
        "CHATBOT_DB": str(db_path),
        "CHATBOT_MODEL": "gpt-4o-mini",
        "CHATBOT_MAX_RETRIES": 0,
        "CHATBOT_REQUEST_TIMEOUT": 10,
        "CHATBOT_TIKTOKEN_DOWNLOAD": False,
        "CHATBOT_LOG_FILE": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def engine_for(
    base_url: str,
    db_path: Path,
    *,
    bot: str = "default",
    profile_changes: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[ConversationEngine]:
    settings = settings_for(base_url, db_path, **overrides)
    async with open_engine(settings, bot) as engine:
        if profile_changes:
            engine.bot = replace(engine.bot, **profile_changes)
        yield engine


def said(session: str, text: str, user: str = "console:tester") -> IncomingMessage:
    return IncomingMessage(session_id=session, text=text, user_id=user, platform="test")
