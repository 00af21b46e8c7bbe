"""The engine's command registry, and every platform deriving its commands from it: the help text, Telegram's
command menu and group addressing, Discord's slash commands, Slack's ``!command`` aliases. A dummy command
registered on the engine (as a feature would) must show up everywhere without adapter changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import adapters.telegram.runner as telegram_runner
from adapters.telegram import TelegramTuning
from bots.app import open_engine, running_platforms
from core.commands import Command, Commands, parse_command
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from tests.fakes.discord_api import DM_ID, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack, message
from tests.fakes.telegram_api import FakeTelegram
from tests.support.engines import engine_for, said, settings_for
from tests.support.waiting import eventually

WEATHER = "Sunny, as every day in the tests."


async def weather(message: IncomingMessage) -> str:
    return WEATHER


def add_weather(engine: ConversationEngine) -> None:
    engine.commands.add(Command("weather", "Today's weather", weather))


def listed(engine: ConversationEngine) -> list[tuple[str, str]]:
    return [(c.name, c.description) for c in engine.commands]


@pytest.fixture
async def telegram(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTelegram]:
    monkeypatch.setattr(telegram_runner, "DEFAULT_TUNING", TelegramTuning(poll_timeout=1.0, drain_grace=5.0))
    fake = FakeTelegram()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def test_parse_command_knows_only_the_registered_names() -> None:
    names = frozenset({"reset", "weather"})
    assert parse_command("/RESET now", names) == "/reset"
    assert parse_command("  /weather", names) == "/weather"
    assert parse_command("/help", names) is None
    assert parse_command("/reset@otherbot", names) is None
    assert parse_command("reset", names) is None


def test_a_command_no_platform_accepts_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        Command("/Weather", "Today's weather", weather)
    with pytest.raises(ValueError, match="one line of 3-100 characters"):
        Command("weather", "x" * 101, weather)
    commands = Commands([Command("weather", "Today's weather", weather)])
    with pytest.raises(ValueError, match="already registered"):
        commands.add(Command("weather", "Another forecast", weather))


async def test_help_lists_exactly_the_registered_commands(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        add_weather(engine)
        help_text = await engine.reply_text(said("c:1", "/help"))
        assert await engine.reply_text(said("c:1", "/weather please")) == WEATHER
    command_lines = [line for line in help_text.splitlines() if line.startswith("/")]
    assert command_lines == [f"/{name}: {about[0].lower()}{about[1:]}" for name, about in listed(engine)]
    assert {"start", "help", "reset", "forget", "weather"} == engine.commands.names()
    assert fake_model.chat_requests == []  # commands never reach the model


async def test_telegram_menu_and_group_addressing_follow_the_registry(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    config = settings_for(
        fake_model.base_url, db_path, TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_BASE_URL=telegram.root
    )
    group = telegram.group_chat(-100500)
    async with open_engine(config) as engine:
        add_weather(engine)
        async with running_platforms(config, engine, ["telegram"]):
            assert [(c["command"], c["description"]) for c in telegram.commands] == listed(engine)
            telegram.user_message(group, "/weather")  # no @botname: ours because the registry has it
            await telegram.wait_for(lambda: telegram.texts(-100500) == [WEATHER])


async def test_discord_slash_commands_follow_the_registry(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    config = settings_for(
        fake_model.base_url,
        db_path,
        DISCORD_BOT_TOKEN="discord-test-token",
        DISCORD_API_BASE_URL=fake_discord.api_url,
        DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        DISCORD_GUILD_READY_TIMEOUT=0.02,
    )
    async with open_engine(config) as engine:
        add_weather(engine)
        async with running_platforms(config, engine, ["discord"]):
            registered = fake_discord.commands["global"]
            assert sorted((c["name"], c["description"]) for c in registered) == sorted(listed(engine))
            token = await fake_discord.slash("weather", channel_id=DM_ID)
            await fake_discord.wait_until(
                lambda: bool(fake_discord.interaction_responses[token]), what="/weather"
            )
    (answer,) = fake_discord.interaction_responses[token]
    assert answer["data"]["content"] == WEATHER


async def test_slack_bang_aliases_follow_the_registry(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    keys: dict[str, Any] = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.base_url,
        "SLACK_PORT": 0,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    }
    config = settings_for(fake_model.base_url, db_path, **keys)
    async with open_engine(config) as engine:
        add_weather(engine)
        async with running_platforms(config, engine, ["slack"]) as runners:
            slack.app_url = f"http://127.0.0.1:{runners[0].port}/slack/events"  # type: ignore[attr-defined]
            await slack.post_event(
                message("!weather", channel="D0ALICE", channel_type="im", ts="1000.000001")
            )
            await eventually(lambda: [m.text for m in slack.in_thread("D0ALICE", None)] == [WEATHER])
    assert fake_model.chat_requests == []
