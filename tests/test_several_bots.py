"""Several bots in one process, as ``chatbot run`` starts them from a bots file: each on its own platform
account (the real PTB and bolt against the Telegram and Slack fakes), one shared store, each answering
with its own system prompt and its own limits, their conversations kept apart."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.runner import SlackRunner
from adapters.telegram import TelegramRunner
from bots.bots_file import load_bots
from bots.fleet import RunningBot, plan_bots, running_bots
from core.errors import ConfigError
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_api import BOT_USER, FakeSlack, mention
from tests.fakes.telegram_api import FakeTelegram
from tests.support.bots_file import fast_pacing as fast_pacing
from tests.support.cli import start_chatbot
from tests.support.engines import settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

TWO_BOTS = """\
[bots.helper]
system_prompt = "You are Helper, a general assistant."
[bots.helper.limits]
messages_per_minute = 1
[bots.helper.platforms.telegram]
token_env = "HELPER_TELEGRAM_TOKEN"

[bots.orbit]
system_prompt = "You are Orbit Assist."
[bots.orbit.limits]
messages_per_minute = 5
[bots.orbit.platforms.slack]
token_env = "ORBIT_SLACK_TOKEN"
signing_secret_env = "ORBIT_SLACK_SECRET"
"""


@asynccontextmanager
async def two_bots(
    tmp_path: Path, fake_model: FakeOpenAI, telegram: FakeTelegram, slack: FakeSlack, monkeypatch: Any
) -> AsyncIterator[dict[str, RunningBot]]:
    path = tmp_path / "bots.toml"
    path.write_text(TWO_BOTS, encoding="utf-8")
    monkeypatch.setenv("HELPER_TELEGRAM_TOKEN", telegram.token)
    monkeypatch.setenv("ORBIT_SLACK_TOKEN", slack.bot_token)
    monkeypatch.setenv("ORBIT_SLACK_SECRET", slack.signing_secret)
    # no TELEGRAM_BOT_TOKEN / SLACK_BOT_TOKEN: each bot's credentials come from the variables it names
    settings = settings_for(
        fake_model.base_url,
        tmp_path / "shared.db",
        TELEGRAM_BASE_URL=telegram.root,
        SLACK_API_URL=slack.base_url,
        SLACK_PORT=0,
    ).model_copy(update={"slack_edit_interval": 0.05})
    plans = plan_bots(load_bots(path), settings)
    assert [(p.entry.name, p.platforms) for p in plans] == [("helper", ("telegram",)), ("orbit", ("slack",))]
    async with running_bots(settings, plans) as bots:
        by_name = {bot.entry.name: bot for bot in bots}
        slack_runner = by_name["orbit"].runners[0]
        assert isinstance(slack_runner, SlackRunner)
        slack.app_url = f"http://127.0.0.1:{slack_runner.port}/slack/events"
        yield by_name


def system_prompts(fake_model: FakeOpenAI) -> list[str]:
    return [request["messages"][0]["content"] for request in fake_model.chat_requests]


async def test_two_bots_answer_on_their_own_platforms_with_their_own_prompts_and_limits(
    tmp_path: Path, fake_model: FakeOpenAI, telegram: FakeTelegram, slack: FakeSlack, monkeypatch: Any
) -> None:
    async with two_bots(tmp_path, fake_model, telegram, slack, monkeypatch) as bots:
        tg_runner = bots["helper"].runners[0]
        assert isinstance(tg_runner, TelegramRunner)
        chat = telegram.private_chat(42)
        telegram.user_message(chat, "hello helper")
        await eventually(
            lambda: telegram.texts(42) == ["You said: hello helper"] and tg_runner.in_flight == 0
        )
        assert system_prompts(fake_model) == ["You are Helper, a general assistant."]

        for n, ts in enumerate(("1700000001.000100", "1700000002.000100"), start=1):
            await slack.post_event(mention(f"<@{BOT_USER}> orbit question {n}", ts=ts, user="U0ALICE"))
        await eventually(
            lambda: (
                [m.text for m in slack.in_thread("C0GENERAL", "1700000002.000100")]
                == ["You said: orbit question 2"]
            )
        )
        assert system_prompts(fake_model)[1:] == ["You are Orbit Assist."] * 2  # 5 a minute: both answered

        telegram.user_message(chat, "again")  # helper allows 1 a minute: refused, without a model call
        await eventually(lambda: len(telegram.texts(42)) == 2 and tg_runner.in_flight == 0)
        assert telegram.texts(42)[1].startswith("Please slow down")
        assert len(fake_model.chat_requests) == 3

    with sqlite3.connect(tmp_path / "shared.db") as db:  # one store, kept apart by session and by bot
        sessions = {row[0] for row in db.execute("SELECT DISTINCT session_id FROM messages")}
        turns = set(db.execute("SELECT bot, platform FROM turns WHERE model != ''"))
    assert sessions == {"helper/telegram:42", *(f"orbit/{s}" for s in sessions_of_slack(sessions))}
    assert all(s.startswith(("helper/telegram:", "orbit/slack:")) for s in sessions)
    assert turns == {("helper", "telegram"), ("orbit", "slack")}


def sessions_of_slack(sessions: set[str]) -> list[str]:
    return [s.removeprefix("orbit/") for s in sessions if s.startswith("orbit/")]


async def test_a_bot_whose_credential_is_not_set_stops_the_start_with_its_name(
    tmp_path: Path, fake_model: FakeOpenAI, monkeypatch: Any
) -> None:
    path = tmp_path / "bots.toml"
    path.write_text(TWO_BOTS, encoding="utf-8")
    monkeypatch.setenv("HELPER_TELEGRAM_TOKEN", "1:x")
    monkeypatch.delenv("ORBIT_SLACK_TOKEN", raising=False)
    settings = settings_for(fake_model.base_url, tmp_path / "db")
    with pytest.raises(
        ConfigError, match="bot orbit on slack: ORBIT_SLACK_TOKEN, ORBIT_SLACK_SECRET are not set"
    ):
        plan_bots(load_bots(path), settings)


async def test_one_bot_on_the_usual_variables_runs_as_before(tmp_path: Path, fake_model: FakeOpenAI) -> None:
    settings = settings_for(fake_model.base_url, tmp_path / "db", TELEGRAM_BOT_TOKEN="1:x")
    path = tmp_path / "bots.toml"
    path.write_text("[bots.a]\nsystem_prompt = 'x'\n[bots.b]\nsystem_prompt = 'y'\n", encoding="utf-8")
    [plan] = plan_bots(load_bots(path), settings, bot="b")
    assert (plan.entry.name, plan.platforms) == ("b", ("telegram",))


async def test_chatbot_run_without_a_bot_runs_the_bots_the_file_lists(
    tmp_path: Path, fake_model: FakeOpenAI, telegram: FakeTelegram
) -> None:
    (tmp_path / "bots.toml").write_text(
        "[bots.desk]\nsystem_prompt = 'You are Desk.'\n[bots.desk.platforms.telegram]\ntoken_env = 'DESK_TG'\n"
        "[bots.off]\nsystem_prompt = 'Never runs.'\nenabled = false\n"
        "[bots.off.platforms.telegram]\ntoken_env = 'OFF_TG'\n",
        encoding="utf-8",
    )
    env = {
        "OPENAI_BASE_URL": fake_model.base_url,
        "OPENAI_API_KEY": "sk-local",
        "CHATBOT_MODEL": "gpt-4o-mini",
        "CHATBOT_LOG_FILE": "",
        "DESK_TG": telegram.token,
        "TELEGRAM_BASE_URL": telegram.root,
    }
    process = await start_chatbot(["run"], tmp_path, env)
    try:
        await eventually(lambda: bool(telegram.calls_to("getUpdates")), within=30.0)
        telegram.user_message(telegram.private_chat(5), "hello desk")
        await eventually(lambda: telegram.texts(5) == ["You said: hello desk"], within=30.0)
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()[-2000:]
    assert "running desk on telegram" in err.decode()
    assert [r["messages"][0]["content"] for r in fake_model.chat_requests] == ["You are Desk."]
