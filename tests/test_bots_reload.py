"""Changes without a restart: a running bot (on the Telegram fake) picks up an edit of its bots file for new
turns while a turn in flight finishes with the settings it started with; a broken edit is ignored with one
log line and the running configuration stays."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.telegram import TelegramRunner
from bots.app import open_engine
from bots.bots_file import load_bots
from bots.fleet import RunningBot, plan_bots, running_bots
from bots.reload import BotsFileReloader
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.telegram_api import FakeTelegram
from tests.support.bots_file import fast_pacing as fast_pacing
from tests.support.engines import said, settings_for
from tests.support.waiting import eventually as _eventually

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

BOT = """\
[bots.helper]
system_prompt = "{prompt}"
model = "{model}"
[bots.helper.platforms.telegram]
token_env = "HELPER_TELEGRAM_TOKEN"
"""


async def eventually(check: Callable[[], bool], within: float = 15.0) -> None:
    """A file watcher's reaction takes longer than a reply: a longer default wait."""
    await _eventually(check, within)


def edit(path: Path, text: str) -> None:
    """Save as editors do: write a new file and rename it over the old one."""
    fresh = path.with_suffix(".tmp")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)


async def edit_until(path: Path, text: str, seen: Callable[[], bool]) -> None:
    """Edit, and edit again (the same text) until the watcher has seen it: the watch starts in a thread,
    and an edit made before it is ready would go unseen. No guessed sleep."""
    for _ in range(30):
        edit(path, text)
        try:
            await eventually(seen, within=1.0)
            return
        except AssertionError:
            continue
    raise AssertionError("the edit was never picked up")


@asynccontextmanager
async def watched_bot(
    tmp_path: Path, fake_model: FakeOpenAI, telegram: FakeTelegram, monkeypatch: Any
) -> AsyncIterator[tuple[Path, BotsFileReloader, TelegramRunner]]:
    path = tmp_path / "bots.toml"
    path.write_text(BOT.format(prompt="Old prompt.", model="old-model"), encoding="utf-8")
    monkeypatch.setenv("HELPER_TELEGRAM_TOKEN", telegram.token)
    settings = settings_for(
        fake_model.base_url, tmp_path / "reload.db", TELEGRAM_BASE_URL=telegram.root, CHATBOT_MODEL=None
    )
    config = load_bots(path)
    async with running_bots(settings, plan_bots(config, settings)) as bots:
        reloader = BotsFileReloader(config, bots)
        watcher = asyncio.create_task(reloader.watch(debounce_ms=50))
        try:
            runner = bots[0].runners[0]
            assert isinstance(runner, TelegramRunner)
            yield path, reloader, runner
        finally:
            watcher.cancel()
            with pytest.raises(asyncio.CancelledError):
                await watcher


async def test_an_edit_applies_to_the_next_turn_and_the_turn_in_flight_keeps_its_settings(
    tmp_path: Path, fake_model: FakeOpenAI, telegram: FakeTelegram, monkeypatch: Any
) -> None:
    async with watched_bot(tmp_path, fake_model, telegram, monkeypatch) as (path, reloader, runner):
        thinking = asyncio.Event()
        fake_model.queue(Reply(text="slow answer", hold=thinking))
        telegram.user_message(telegram.private_chat(42), "first")
        await eventually(lambda: len(fake_model.chat_requests) == 1)  # the turn is in flight

        await edit_until(
            path, BOT.format(prompt="New prompt.", model="new-model"), lambda: reloader.reloads >= 1
        )
        thinking.set()
        await eventually(lambda: telegram.texts(42) == ["slow answer"] and runner.in_flight == 0)

        telegram.user_message(telegram.private_chat(42), "second")
        await eventually(lambda: len(telegram.texts(42)) == 2 and runner.in_flight == 0)

    first, second = fake_model.chat_requests
    assert (first["model"], first["messages"][0]["content"]) == ("old-model", "Old prompt.")
    assert (second["model"], second["messages"][0]["content"]) == ("new-model", "New prompt.")
    with sqlite3.connect(tmp_path / "reload.db") as db:  # the in-flight turn was recorded as it started
        models = [row[0] for row in db.execute("SELECT model FROM turns ORDER BY id")]
    assert models == ["old-model", "new-model"]


async def test_a_broken_edit_is_ignored_with_one_log_line_and_a_fixed_one_applies(
    tmp_path: Path,
    fake_model: FakeOpenAI,
    telegram: FakeTelegram,
    monkeypatch: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bots.reload")
    async with watched_bot(tmp_path, fake_model, telegram, monkeypatch) as (path, reloader, runner):

        def ignored() -> list[logging.LogRecord]:
            return [r for r in caplog.records if "edit ignored" in r.getMessage()]

        broken = BOT.format(prompt="Broken.", model="new-model") + "colour = 'red'\n"
        await edit_until(path, broken, lambda: len(ignored()) >= 1)
        line = ignored()[0]
        assert line.levelno == logging.ERROR
        message = line.getMessage()
        assert "\n" not in message
        assert f"{path}:6: bots.helper.platforms.telegram.colour: unknown key 'colour'" in message

        telegram.user_message(telegram.private_chat(42), "still there?")
        await eventually(lambda: len(telegram.texts(42)) == 1 and runner.in_flight == 0)
        assert fake_model.chat_requests[-1]["messages"][0]["content"] == "Old prompt."

        await edit_until(
            path, BOT.format(prompt="Fixed prompt.", model="new-model"), lambda: reloader.reloads >= 1
        )
        telegram.user_message(telegram.private_chat(42), "and now?")
        await eventually(lambda: len(telegram.texts(42)) == 2 and runner.in_flight == 0)
        assert fake_model.chat_requests[-1]["messages"][0]["content"] == "Fixed prompt."
    assert all(r.levelno == logging.ERROR and "colour" in r.getMessage() for r in ignored())  # one line each


async def test_an_edit_of_a_prompt_file_the_bots_file_names_is_picked_up_too(
    tmp_path: Path, fake_model: FakeOpenAI
) -> None:
    (tmp_path / "prompts").mkdir()
    prompt = tmp_path / "prompts" / "desk.md"
    prompt.write_text("Desk, first version.", encoding="utf-8")
    path = tmp_path / "bots.toml"
    path.write_text("[bots.desk]\nsystem_prompt_file = 'prompts/desk.md'\n", encoding="utf-8")
    config = load_bots(path)
    settings = settings_for(fake_model.base_url, tmp_path / "desk.db")
    entry = config.get("desk")
    async with open_engine(settings, entry=entry) as engine:
        reloader = BotsFileReloader(config, [RunningBot(entry, settings, engine, (), [])])
        watcher = asyncio.create_task(reloader.watch(debounce_ms=50))
        try:
            await edit_until(prompt, "Desk, second version.", lambda: reloader.reloads >= 1)
            await engine.reply_text(said("console:t", "hi"))
        finally:
            watcher.cancel()
            with pytest.raises(asyncio.CancelledError):
                await watcher
    assert fake_model.chat_requests[-1]["messages"][0]["content"] == "Desk, second version."
