"""Discord by shards: two runners with different ``DISCORD_SHARD_IDS`` of one ``DISCORD_SHARD_COUNT`` each
answer only their guilds' messages (the fake gateway routes by Discord's formula); one runner with
``DISCORD_AUTO_SHARD`` runs every shard Discord recommends and answers everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.runner import DiscordRunner
from adapters.discord.sessions import session_id
from adapters.discord.settings import DiscordSettings
from adapters.discord.sharding import Sharding, sharding_from
from bots.app import open_engine, running_platforms
from core.conversation import ConversationEngine
from core.errors import ConfigError
from tests.fakes.discord_api import (
    DM_ID,
    GENERAL_ID,
    GUILD_ID,
    OTHER_GENERAL_ID,
    OTHER_GUILD_ID,
    FakeDiscord,
    shard_of,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.support.engines import settings_for

TOKEN = "discord-test-token-0123456789"


@asynccontextmanager
async def discord_worker(
    fake_model: FakeOpenAI, fake: FakeDiscord, db_path: Path, **keys: Any
) -> AsyncIterator[tuple[ConversationEngine, DiscordRunner]]:
    settings = settings_for(
        fake_model.base_url,
        db_path,
        DISCORD_BOT_TOKEN=TOKEN,
        DISCORD_API_BASE_URL=fake.api_url,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        DISCORD_EDIT_INTERVAL=0.05,
        DISCORD_GUILD_READY_TIMEOUT=0.02,
        **keys,
    )
    async with open_engine(settings) as engine, running_platforms(settings, engine, ["discord"]) as runners:
        runner = runners[0]
        assert isinstance(runner, DiscordRunner)
        yield engine, runner


async def answered_here(engine: ConversationEngine, guild_id: int | None, channel_id: int) -> bool:
    return await engine.store.count_messages(session_id(guild_id, channel_id)) > 0


@pytest.fixture(autouse=True)
def quick_identify(monkeypatch: pytest.MonkeyPatch) -> None:
    """No 5 s pause between two shards' IDENTIFYs against the fake."""
    monkeypatch.setattr("adapters.discord.runner.IDENTIFY_INTERVAL", 0.0)


async def test_two_processes_with_different_shards_each_answer_only_their_guilds(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fake_discord.add_other_guild()
    assert shard_of(GUILD_ID, 2) == 0 and shard_of(OTHER_GUILD_ID, 2) == 1
    async with (
        discord_worker(
            fake_model, fake_discord, tmp_path / "a.db", DISCORD_SHARD_IDS="0", DISCORD_SHARD_COUNT=2
        ) as (a, _ra),
        discord_worker(
            fake_model, fake_discord, tmp_path / "b.db", DISCORD_SHARD_IDS="1", DISCORD_SHARD_COUNT=2
        ) as (b, _rb),
    ):
        assert sorted(tuple(i["shard"]) for i in fake_discord.identify) == [(0, 2), (1, 2)]
        await fake_discord.user_says("first guild", channel_id=GENERAL_ID, mention_bot=True)
        await fake_discord.user_says("second guild", channel_id=OTHER_GENERAL_ID, mention_bot=True)
        await fake_discord.user_says("a dm", channel_id=DM_ID)
        assert await fake_discord.wait_for_reply(GENERAL_ID) == ["You said: first guild"]
        assert await fake_discord.wait_for_reply(OTHER_GENERAL_ID) == ["You said: second guild"]
        assert await fake_discord.wait_for_reply(DM_ID) == ["You said: a dm"]
        assert [
            await answered_here(a, GUILD_ID, GENERAL_ID),
            await answered_here(b, GUILD_ID, GENERAL_ID),
        ] == [
            True,
            False,
        ]
        assert [
            await answered_here(a, OTHER_GUILD_ID, OTHER_GENERAL_ID),
            await answered_here(b, OTHER_GUILD_ID, OTHER_GENERAL_ID),
        ] == [False, True]
        assert await answered_here(a, None, DM_ID) and not await answered_here(b, None, DM_ID)  # DMs: shard 0
    assert len(fake_model.chat_requests) == 3  # each message answered once


async def test_auto_sharding_runs_every_recommended_shard_in_one_process(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    fake_discord.add_other_guild()
    fake_discord.recommended_shards = 2
    async with discord_worker(fake_model, fake_discord, db_path, DISCORD_AUTO_SHARD=True):
        assert sorted(tuple(i["shard"]) for i in fake_discord.identify) == [(0, 2), (1, 2)]
        await fake_discord.user_says("first guild", channel_id=GENERAL_ID, mention_bot=True)
        await fake_discord.user_says("second guild", channel_id=OTHER_GENERAL_ID, mention_bot=True)
        await fake_discord.user_says("a dm", channel_id=DM_ID)
        assert await fake_discord.wait_for_reply(GENERAL_ID) == ["You said: first guild"]
        assert await fake_discord.wait_for_reply(OTHER_GENERAL_ID) == ["You said: second guild"]
        assert await fake_discord.wait_for_reply(DM_ID) == ["You said: a dm"]


def test_shard_settings_are_read_and_bad_ones_refused_with_the_key_to_fix() -> None:
    def read(**keys: Any) -> Sharding | None:
        return sharding_from(DiscordSettings(_env_file=None, **keys))  # type: ignore[call-arg]

    assert read() is None
    assert read(DISCORD_SHARD_IDS="1, 0", DISCORD_SHARD_COUNT=4) == Sharding((0, 1), 4)
    assert read(DISCORD_SHARD_COUNT=3) == Sharding(None, 3)
    assert read(DISCORD_AUTO_SHARD=True) == Sharding(None, None)
    for keys, says in [
        ({"DISCORD_SHARD_IDS": "0,1"}, "DISCORD_SHARD_COUNT"),
        ({"DISCORD_SHARD_IDS": "0,4", "DISCORD_SHARD_COUNT": 4}, "not in 0..3"),
        ({"DISCORD_SHARD_IDS": "zero", "DISCORD_SHARD_COUNT": 4}, "DISCORD_SHARD_IDS"),
    ]:
        with pytest.raises(ConfigError, match=says):
            read(**keys)
