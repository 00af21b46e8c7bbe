"""👍 / 👎 on Telegram, end to end: the real PTB Application against the fake Bot API and the fake model;
votes read back through ``chatbot stats``, ``chatbot review`` and ``chatbot review --export`` -> ``chatbot
eval``, as an operator would."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import adapters.telegram.runner as telegram_runner
from adapters.feedback import ACKS, DOWN_ACK, VoteResult
from adapters.telegram import TelegramRunner, TelegramTuning
from bots.app import open_engine, running_platforms
from core.conversation import ConversationEngine
from features.evaluation.evaluator import JUDGE_SYSTEM
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram, StoredMessage
from tests.support.cli import run_chatbot
from tests.support.engines import settings_for
from tests.support.feedback import stats_row

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

FAST = TelegramTuning(
    private_edit_interval=0.05,
    group_edit_interval=0.05,
    typing_interval=0.05,
    poll_timeout=1.0,
    drain_grace=5.0,
)
ANSWER = "Open Settings, then Members, and press Invite."


@pytest.fixture(autouse=True)
def fast_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telegram_runner, "DEFAULT_TUNING", FAST)


@asynccontextmanager
async def running(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path, **overrides: Any
) -> AsyncIterator[tuple[TelegramRunner, ConversationEngine]]:
    values: dict[str, Any] = {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_BASE_URL": telegram.root}
    config = settings_for(fake_model.base_url, db_path, **{**values, **overrides})
    async with open_engine(config) as engine, running_platforms(config, engine, ["telegram"]) as runners:
        runner = runners[0]
        assert isinstance(runner, TelegramRunner)
        yield runner, engine


async def settled(
    telegram: FakeTelegram, runner: TelegramRunner, chat_id: int, count: int
) -> list[StoredMessage]:
    """The bot's messages once ``count`` exist and nothing is in flight (buttons included)."""
    await telegram.wait_for(lambda: len(telegram.bot_messages(chat_id)) >= count and runner.in_flight == 0)
    return telegram.bot_messages(chat_id)


async def answered(telegram: FakeTelegram, runner: TelegramRunner, count: int) -> list[dict[str, Any]]:
    await telegram.wait_for(lambda: len(telegram.callback_answers) >= count and runner.in_flight == 0)
    return telegram.callback_answers


def env(fake_model: FakeOpenAI, db_path: Path) -> dict[str, str]:
    return {
        "CHATBOT_DB": str(db_path),
        "OPENAI_BASE_URL": fake_model.base_url,
        "CHATBOT_MODEL": "gpt-4o-mini",
        "CHATBOT_MAX_RETRIES": "0",
    }


async def vote_row(fake_model: FakeOpenAI, db_path: Path, tmp_path: Path) -> list[str]:
    return await stats_row("telegram", tmp_path, env(fake_model, db_path))


async def test_a_final_reply_carries_the_buttons_and_a_thumbs_up_counts_in_stats(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(ANSWER)
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "How do I invite a teammate?")
        [reply] = await settled(telegram, runner, 1001, 1)
        assert reply.text == ANSWER
        up, down = telegram.button_data(reply)
        assert up.endswith(":up") and down.endswith(":down")
        assert all(len(data.encode()) <= 64 for data in (up, down))
        labels = [b["text"] for b in reply.reply_markup["inline_keyboard"][0]]  # type: ignore[index]
        assert labels == ["👍", "👎"]

        telegram.click(reply, up, user_id=1001)
        [answer] = await answered(telegram, runner, 1)
        assert answer["text"] == ACKS[VoteResult.COUNTED]
        await telegram.wait_for(lambda: reply.reply_markup is None)
        assert reply.text == ANSWER  # the buttons went, the text stayed

    assert await vote_row(fake_model, db_path, tmp_path) == ["1", "0", "1", "100%"]


async def test_a_thumbs_down_lands_in_review_and_exports_cases_that_eval_runs(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue("Plans start at 5 dollars.", "You cannot invite anyone.")
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "What do plans cost?")
        await settled(telegram, runner, 1001, 1)
        telegram.user_message(chat, "How do I invite a teammate?")
        reply = (await settled(telegram, runner, 1001, 2))[-1]
        assert reply.text == "You cannot invite anyone."
        telegram.click(reply, telegram.button_data(reply)[1], user_id=1001)
        [answer] = await answered(telegram, runner, 1)
        assert answer["text"] == DOWN_ACK
        await telegram.wait_for(lambda: reply.reply_markup is None)

    run_env = env(fake_model, db_path)
    code, out, _err = await run_chatbot(["review"], b"", tmp_path, run_env)
    assert code == 0
    assert "the user rated the reply 👎" in out
    assert "How do I invite a teammate?" in out and "You cannot invite anyone." in out

    cases_file = tmp_path / "flagged.json"
    code, out, _err = await run_chatbot(["review", "--export", str(cases_file)], b"", tmp_path, run_env)
    assert code == 0, out
    assert "Wrote 1 evaluation case" in out
    exported = json.loads(cases_file.read_text())
    [case] = exported["cases"]
    assert exported["bot"] == "default"
    assert case["turns"] == ["What do plans cost?", "How do I invite a teammate?"]
    assert "You cannot invite anyone." in case["expect"]["judge"]

    judged: list[str] = []

    def model(body: dict[str, Any]) -> str:
        if body["messages"][0]["content"] == JUDGE_SYSTEM:
            judged.append(body["messages"][1]["content"])
            return "PASS\nIt explains how to invite."
        return ANSWER

    fake_model.default = model
    code, out, err = await run_chatbot(["eval", str(cases_file)], b"", tmp_path, run_env)
    assert code == 0, out + err
    assert "1 passed, 0 failed" in out
    assert judged and "You cannot invite anyone." in judged[0]


async def test_only_the_askers_vote_counts_in_a_group(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(ANSWER)
    group = telegram.group_chat(-100500)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(group, "@test_bot how do I invite a teammate?", user_id=1001)
        [reply] = await settled(telegram, runner, -100500, 1)
        up, _down = telegram.button_data(reply)
        telegram.click(reply, up, user_id=2002)  # someone else in the group
        [notice] = await answered(telegram, runner, 1)
        assert notice["text"] == ACKS[VoteResult.NOT_ASKER]
        assert telegram.button_data(reply) == [up, _down], "the buttons stay for the asker"

        telegram.click(reply, up, user_id=1001)
        await answered(telegram, runner, 2)
        assert telegram.callback_answers[1]["text"] == ACKS[VoteResult.COUNTED]
        await telegram.wait_for(lambda: reply.reply_markup is None)

    assert await vote_row(fake_model, db_path, tmp_path) == ["1", "0", "1", "100%"], (
        "the other member's click is not a vote"
    )


async def test_a_double_click_is_one_vote_and_one_review_flag(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(ANSWER)
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, engine):
        telegram.user_message(chat, "How do I invite a teammate?")
        [reply] = await settled(telegram, runner, 1001, 1)
        down = telegram.button_data(reply)[1]
        first = telegram.click(reply, down, user_id=1001, queue=False)
        second = telegram.click(reply, down, user_id=1001, queue=False)
        telegram.add_update(first)
        telegram.add_update(second)
        answers = await answered(telegram, runner, 2)
        assert sorted(a["text"] for a in answers) == sorted([DOWN_ACK, ACKS[VoteResult.REPEATED]])
        assert len(await engine.store.review.flags()) == 1  # type: ignore[attr-defined]
    assert await vote_row(fake_model, db_path, tmp_path) == ["0", "1", "1", "0%"]


async def test_a_vote_on_a_forgotten_turn_gets_a_polite_notice(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.queue(ANSWER, "Still here.")
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "How do I invite a teammate?")
        [reply] = await settled(telegram, runner, 1001, 1)
        up = telegram.button_data(reply)[0]
        telegram.user_message(chat, "/forget")
        await settled(telegram, runner, 1001, 2)
        assert telegram.button_data(telegram.bot_messages(1001)[1]) == [], "a command answer has no buttons"
        telegram.click(reply, up, user_id=1001)
        [answer] = await answered(telegram, runner, 1)
        assert answer["text"] == ACKS[VoteResult.GONE]
        await telegram.wait_for(lambda: reply.reply_markup is None)
        telegram.user_message(chat, "Are you there?")  # the bot carries on
        messages = await settled(telegram, runner, 1001, 3)
        assert messages[-1].text == "Still here."


async def test_a_refused_button_edit_leaves_the_reply_intact(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_model.queue(ANSWER, "Second answer.")
    chat = telegram.private_chat(1001)
    telegram.fail_next("editMessageReplyMarkup", status=400, description="Bad Request: BUTTON_DATA_INVALID")
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        with caplog.at_level(logging.WARNING, logger="adapters.feedback"):
            telegram.user_message(chat, "How do I invite a teammate?")
            [reply] = await settled(telegram, runner, 1001, 1)
        assert reply.text == ANSWER and reply.reply_markup is None
        assert "could not add the feedback buttons" in caplog.text
        telegram.user_message(chat, "And then?")
        second = (await settled(telegram, runner, 1001, 2))[-1]
        assert second.text == "Second answer." and len(telegram.button_data(second)) == 2


async def test_error_notes_and_turned_off_buttons_carry_none(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    from tests.fakes.openai_server import Reply

    fake_model.queue(Reply(status=503), ANSWER)
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "How do I invite a teammate?")
        [note] = await settled(telegram, runner, 1001, 1)
        assert "unavailable" in note.text and note.reply_markup is None
    async with running(fake_model, telegram, db_path, TELEGRAM_FEEDBACK_BUTTONS=False) as (runner, _engine):
        telegram.user_message(chat, "How do I invite a teammate?")
        messages = await settled(telegram, runner, 1001, 2)
        assert messages[-1].text == ANSWER and messages[-1].reply_markup is None
    assert not telegram.calls_to("editMessageReplyMarkup")


async def test_clicks_arrive_by_webhook_too(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}/telegram-hook"
    overrides = {
        "TELEGRAM_WEBHOOK_URL": url,
        "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
        "TELEGRAM_WEBHOOK_PORT": port,
        "TELEGRAM_WEBHOOK_SECRET": "hook-secret",
    }
    fake_model.queue(ANSWER)
    chat = telegram.private_chat(1001)
    async with running(fake_model, telegram, db_path, **overrides) as (runner, _engine):
        assert "callback_query" in telegram.webhook["allowed_updates"]
        question = {"update_id": 1, "message": telegram.user_message(chat, "How do I invite?", queue=False)}
        assert await telegram.post_webhook(url, question, "hook-secret") == 200
        [reply] = await settled(telegram, runner, 1001, 1)
        click = {
            "update_id": 2,
            **telegram.click(reply, telegram.button_data(reply)[0], user_id=1001, queue=False),
        }
        assert await telegram.post_webhook(url, click, "hook-secret") == 200
        [answer] = await answered(telegram, runner, 1)
        assert answer["text"] == ACKS[VoteResult.COUNTED]
        await telegram.wait_for(lambda: reply.reply_markup is None)


async def test_a_rate_limit_on_the_buttons_is_waited_out_once(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.queue(ANSWER)
    chat = telegram.private_chat(1001)
    telegram.fail_next("editMessageReplyMarkup", retry_after=1)
    async with running(fake_model, telegram, db_path) as (runner, _engine):
        telegram.user_message(chat, "How do I invite a teammate?")
        [reply] = await settled(telegram, runner, 1001, 1)
        assert reply.text == ANSWER and len(telegram.button_data(reply)) == 2
    attempts = telegram.calls_to("editMessageReplyMarkup", 1001)
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.9  # it waited what Telegram asked
