"""Per-key memory of the runners stays bounded however many chats and channels the bot meets."""

from __future__ import annotations

from pathlib import Path

from adapters.discord.runner import DiscordRunner
from adapters.telegram.runner import TelegramRunner
from adapters.telegram.sessions import Route
from core.pacing import MAX_GATES as MAX_KEYS
from tests.fakes.openai_server import FakeOpenAI
from tests.support.engines import engine_for, settings_for


async def test_telegram_keeps_at_most_ten_thousand_chat_gates(fake_model: FakeOpenAI, db_path: Path) -> None:
    settings = settings_for(fake_model.base_url, db_path, TELEGRAM_BOT_TOKEN="1:x")
    async with engine_for(fake_model.base_url, db_path) as engine:
        runner = TelegramRunner(settings, engine)
        for chat in range(MAX_KEYS + 500):
            runner.gate_for(Route(f"telegram:-{chat}", -chat, "supergroup", 1, 1, "hi"))
    assert 0 < len(runner._chat_gates) <= MAX_KEYS and 0 < len(runner._gates) <= MAX_KEYS


async def test_discord_keeps_at_most_ten_thousand_channel_gates(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    settings = settings_for(fake_model.base_url, db_path, DISCORD_BOT_TOKEN="x")
    async with engine_for(fake_model.base_url, db_path) as engine:
        runner = DiscordRunner(settings, engine)
        for channel in range(MAX_KEYS + 500):
            runner.gates.get(str(channel))
    assert 0 < len(runner.gates) <= MAX_KEYS
