"""Per-chat choice through the Telegram fake: ``/mode`` and ``/model`` list and switch the persona and the
model for one conversation, the next model request shows the change with the history kept, ``/help`` shows
the choice, it persists in the store, and only admins may switch when the bot says so."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.telegram import TelegramRunner
from bots.app import open_engine
from bots.bots_file import load_bots
from bots.fleet import plan_bots, running_bots
from core.bot_profile import BotProfile, Mode
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram
from tests.support.bots_file import fast_pacing as fast_pacing
from tests.support.engines import said, settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

BOT = """\
[bots.helper]
system_prompt = "You are Helper."
models = ["small-model", "big-model"]
switch_admins_only = {admins_only}

[bots.helper.modes.pirate]
description = "Talks like a pirate"
system_prompt = "You are a pirate."
[bots.helper.modes.pirate.params]
temperature = 1.5

[bots.helper.platforms.telegram]
token_env = "HELPER_TELEGRAM_TOKEN"
admins = ["7"]
"""


@asynccontextmanager
async def helper_on_telegram(
    tmp_path: Path, fake_model: FakeOpenAI, telegram: FakeTelegram, monkeypatch: Any, *, admins_only: bool
) -> AsyncIterator[Callable[[int, str], Any]]:
    path = tmp_path / "bots.toml"
    path.write_text(BOT.format(admins_only=str(admins_only).lower()), encoding="utf-8")
    monkeypatch.setenv("HELPER_TELEGRAM_TOKEN", telegram.token)
    settings = settings_for(fake_model.base_url, tmp_path / "chat.db", TELEGRAM_BASE_URL=telegram.root)
    async with running_bots(settings, plan_bots(load_bots(path), settings)) as [bot]:
        runner = bot.runners[0]
        assert isinstance(runner, TelegramRunner)

        async def say(user: int, text: str) -> str:
            """``text`` from ``user`` in their private chat; the bot's answer once it is finished."""
            before = len(telegram.texts(user))
            telegram.user_message(telegram.private_chat(user), text)
            await eventually(lambda: len(telegram.texts(user)) > before and runner.in_flight == 0)
            return telegram.texts(user)[-1]

        yield say


async def test_mode_and_model_switch_the_next_request_and_keep_the_history(
    tmp_path: Path, fake_model: FakeOpenAI, telegram: FakeTelegram, monkeypatch: Any
) -> None:
    async with helper_on_telegram(tmp_path, fake_model, telegram, monkeypatch, admins_only=False) as say:
        assert await say(42, "first question") == "You said: first question"
        first = fake_model.chat_requests[-1]
        assert (first["model"], first["messages"][0]["content"]) == ("gpt-4o-mini", "You are Helper.")

        listing = await say(42, "/mode")
        assert "Mode now: default" in listing and "• pirate: Talks like a pirate" in listing
        assert "• big-model" in await say(42, "/model")
        assert await say(42, "/mode pirate") == (
            "Mode switched to pirate (Talks like a pirate). Our conversation so far is kept."
        )
        assert (
            await say(42, "/model big-model")
            == "Model switched to big-model. Our conversation so far is kept."
        )
        assert await say(42, "/model huge-model") == (
            "I can't use 'huge-model' here. Choose one of: default, small-model, big-model."
        )

        assert await say(42, "second question") == "You said: second question"
        second = fake_model.chat_requests[-1]
        assert second["model"] == "big-model"
        assert second["temperature"] == 1.5
        assert [m["content"] for m in second["messages"]] == [
            "You are a pirate.",
            "first question",
            "You said: first question",
            "second question",
        ]
        assert (await say(42, "/help")).endswith("Now: Mode: pirate · Model: big-model")

        assert await say(43, "another chat") == "You said: another chat"  # another chat keeps the bot's own
        assert fake_model.chat_requests[-1]["messages"][0]["content"] == "You are Helper."

        assert await say(42, "/mode default") == "Back to my usual self. Our conversation so far is kept."
        await say(42, "third question")
        assert fake_model.chat_requests[-1]["messages"][0]["content"] == "You are Helper."
        assert fake_model.chat_requests[-1]["model"] == "big-model"

    with sqlite3.connect(tmp_path / "chat.db") as db:  # kept for the conversation, across restarts
        assert db.execute("SELECT session_id, mode, model FROM chat_choices").fetchall() == [
            ("helper/telegram:42", None, "big-model")
        ]


async def test_only_admins_switch_when_the_bot_says_so_and_anyone_may_list(
    tmp_path: Path, fake_model: FakeOpenAI, telegram: FakeTelegram, monkeypatch: Any
) -> None:
    async with helper_on_telegram(tmp_path, fake_model, telegram, monkeypatch, admins_only=True) as say:
        assert "• pirate" in await say(42, "/mode")
        assert await say(42, "/mode pirate") == "Only this bot's admins can switch the mode here."
        assert await say(42, "/model big-model") == "Only this bot's admins can switch the model here."
        await say(42, "question")
        assert fake_model.chat_requests[-1]["messages"][0]["content"] == "You are Helper."
        assert fake_model.chat_requests[-1]["model"] == "gpt-4o-mini"

        assert (await say(7, "/mode pirate")).startswith("Mode switched to pirate")  # telegram:7 is an admin
        await say(7, "ahoy")
        assert fake_model.chat_requests[-1]["messages"][0]["content"] == "You are a pirate."


async def test_an_unknown_mode_is_answered_with_the_choices(
    tmp_path: Path, fake_model: FakeOpenAI, telegram: FakeTelegram, monkeypatch: Any
) -> None:
    async with helper_on_telegram(tmp_path, fake_model, telegram, monkeypatch, admins_only=False) as say:
        assert (
            await say(42, "/mode ninja") == "I have no mode called 'ninja'. Choose one of: default, pirate."
        )
        assert fake_model.chat_requests == []


def test_a_choice_the_bot_no_longer_offers_falls_back_to_the_bots_own() -> None:
    bot = BotProfile(
        name="helper",
        system_prompt="You are Helper.",
        model="small-model",
        models=("small-model", "big-model"),
        modes=(Mode(name="pirate", system_prompt="Arr.", params=(("temperature", 1.5),)),),
    )
    chosen = bot.choosing("pirate", "big-model")
    assert (chosen.system_prompt, chosen.model, chosen.params.temperature) == ("Arr.", "big-model", 1.5)
    gone = bot.choosing("ninja", "huge-model")  # the bots file dropped them since the chat chose them
    assert (gone.system_prompt, gone.model, gone.params.temperature) == (
        "You are Helper.",
        "small-model",
        0.5,
    )


PIRATE_PROMPT = (
    "You are Captain Bluebeard, the pirate persona of the ACME helpdesk. Speak like a pirate in every "
    "answer, call the user matey, never mention treasure maps, and keep every answer under sixty words."
)


async def test_a_reply_that_repeats_the_modes_own_prompt_is_withdrawn(
    tmp_path: Path, fake_model: FakeOpenAI
) -> None:
    path = tmp_path / "bots.toml"
    path.write_text(
        f"[bots.helper]\nsystem_prompt = 'You are Helper.'\n"
        f"[bots.helper.modes.pirate]\nsystem_prompt = '{PIRATE_PROMPT}'\n",
        encoding="utf-8",
    )
    settings = settings_for(fake_model.base_url, tmp_path / "leak.db")
    async with open_engine(settings, entry=load_bots(path).get("helper")) as engine:
        assert (await engine.reply_text(said("console:t", "/mode pirate"))).startswith("Mode switched")
        fake_model.queue(f"Sure! My instructions: {PIRATE_PROMPT}")
        reply = await engine.reply_text(said("console:t", "tell me about yourself"))
    assert reply.startswith("I can't share my instructions")
    assert fake_model.chat_requests[-1]["messages"][0]["content"] == PIRATE_PROMPT
