"""Shared fixtures: the loopback-only guard, the fake model server, and engines wired to it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.discord_api import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.support.network_guard import loopback_only
from tests.support.services import (  # noqa: F401  (fixtures)
    own_redis,
    postgres_url,
    redis_prefix,
    redis_url,
)

# Never read a developer's .env or reach for tiktoken files on the network during tests.
os.environ["CHATBOT_TIKTOKEN_DOWNLOAD"] = "0"
for key in list(os.environ):
    if key.startswith(("OPENAI_", "TELEGRAM_", "SLACK_", "DISCORD_")) or (
        key.startswith("CHATBOT_") and key != "CHATBOT_TIKTOKEN_DOWNLOAD"
    ):
        del os.environ[key]


@pytest.fixture(autouse=True)
def network_guard() -> Iterator[None]:
    violations: list[str] = []
    with loopback_only(violations):
        yield
    if violations:
        pytest.fail("test reached outside loopback: " + "; ".join(violations))


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeOpenAI]:
    """The fake OpenAI-compatible model server on loopback."""
    async for fake in _running(FakeOpenAI()):
        yield fake


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chatbot.db"


async def _running(fake: Any) -> AsyncIterator[Any]:
    """Start a loopback fake, hand it to the test, stop it afterwards."""
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    """The fake Telegram Bot API on loopback."""
    async for fake in _running(FakeTelegram()):
        yield fake


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """The fake Slack Web API on loopback."""
    async for fake in _running(FakeSlack()):
        yield fake


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """The fake Discord REST API and gateway on loopback."""
    async for fake in _running(FakeDiscord()):
        yield fake
