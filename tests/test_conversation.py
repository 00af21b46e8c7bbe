"""The conversation engine end to end over the fake model server and a real SQLite file."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from core import conversation as conv
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said


def rows(db_path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, args).fetchall()


async def test_user_message_is_stored_before_the_model_is_called(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    seen: list[list[tuple[Any, ...]]] = []

    def answer(body: dict[str, Any]) -> str:
        seen.append(rows(db_path, "SELECT role, content FROM messages"))
        return "stored?"

    fake_model.default = answer
    async with engine_for(fake_model.base_url, db_path) as engine:
        assert await engine.reply_text(said("console:a", "remember me")) == "stored?"
    assert seen == [[("user", "remember me")]]
    assert rows(db_path, "SELECT role, content, complete FROM messages") == [
        ("user", "remember me", 1),
        ("assistant", "stored?", 1),
    ]


async def test_history_survives_a_restart(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(said("console:a", "my name is Ada"))
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(said("console:a", "what is my name?"))
    sent = fake_model.last_messages()
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "my name is Ada"
    assert sent[2]["content"] == "You said: my name is Ada"


async def test_sessions_never_see_each_other(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(said("telegram:1", "secret of chat one"))
        await engine.reply_text(said("telegram:2", "hello from chat two"))
    assert "secret of chat one" not in str(fake_model.last_messages())


async def test_messages_of_one_session_are_answered_in_order(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(*(Reply(text=f"answer {i}", chunk_size=2, delay=0.01) for i in range(4)))
    async with engine_for(fake_model.base_url, db_path) as engine:
        tasks = [asyncio.create_task(engine.reply_text(said("console:a", f"question {i}"))) for i in range(4)]
        replies = await asyncio.gather(*tasks)
    assert replies == [f"answer {i}" for i in range(4)]
    last = fake_model.last_messages()
    assert [m["content"] for m in last[1:]] == [
        "question 0", "answer 0", "question 1", "answer 1", "question 2", "answer 2", "question 3",
    ]  # fmt: skip


async def test_different_sessions_are_answered_concurrently(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(*(Reply(text="slow reply " * 4, chunk_size=11, delay=0.15) for _ in range(3)))
    async with engine_for(fake_model.base_url, db_path) as engine:
        await asyncio.gather(*(engine.reply_text(said(f"console:{i}", "hi")) for i in range(3)))
    starts = sorted(start for start, _ in fake_model.request_times)
    ends = sorted(end for _, end in fake_model.request_times)
    assert starts[-1] < ends[0]  # every request began before the first one finished


async def test_failed_reply_and_its_question_are_kept_incomplete_and_never_fed_back(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text="a partial answer that breaks off", chunk_size=10, fail_after=2))
    async with engine_for(fake_model.base_url, db_path) as engine:
        first = await engine.reply_text(said("console:a", "tell me"))
        assert first.startswith("a partial answer th")
        assert first.endswith(conv.INTERRUPTED)
        await engine.reply_text(said("console:a", "again"))
    assert "partial" not in str(fake_model.last_messages())
    assert rows(db_path, "SELECT role, content, complete FROM messages") == [
        ("user", "tell me", 0),
        ("assistant", "a partial answer tha", 0),
        ("user", "again", 1),
        ("assistant", "You said: again", 1),
    ]
    sent = fake_model.last_messages()
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[1]["content"] == "again"  # answered as itself: no trace of the failed question


async def test_commands_reset_and_help(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(said("console:a", "remember this"))
        assert "forgotten" in await engine.reply_text(said("console:a", "/reset"))
        assert "/reset" in await engine.reply_text(said("console:a", "/HELP me"))
        await engine.reply_text(said("console:a", "fresh start"))
    assert [m["content"] for m in fake_model.last_messages()[1:]] == ["fresh start"]
    assert len(fake_model.chat_requests) == 2  # commands never reach the model


async def test_empty_and_odd_input_get_clear_answers(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        assert await engine.reply_text(said("console:a", "   \n ")) == conv.EMPTY_INPUT
        reply = await engine.reply_text(said("console:a", "bad \ud800 surrogate \x00 nul \u202e rtl 🧪"))
    assert reply.startswith("You said: bad ? surrogate  nul \u202e rtl 🧪")
    assert len(fake_model.chat_requests) == 1


async def test_huge_message_is_stored_whole_and_cut_for_the_model(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    huge = "lorem ipsum " * 20_000
    async with engine_for(fake_model.base_url, db_path, CHATBOT_CONTEXT_TOKENS=4096) as engine:
        reply = await engine.reply_text(said("console:a", huge))
    assert reply.startswith("ℹ️ Your message was very long")
    sent = fake_model.last_messages()[-1]["content"]
    assert "message cut here" in sent
    assert len(sent) < 16_500
    assert rows(db_path, "SELECT length(content) FROM messages WHERE role = 'user'") == [(len(huge),)]


async def test_every_turn_is_logged_without_secrets(
    fake_model: FakeOpenAI, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatbot.turns")
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(said("console:a", "log me"))
    records = [r.getMessage() for r in caplog.records if r.name == "chatbot.turns"]
    assert len(records) == 1
    for field in ('"session": "console:a"', '"user_text": "log me"', '"reply_text": "You said: log me"'):
        assert field in records[0]
    assert '"latency_ms"' in records[0] and '"prompt_tokens"' in records[0]
    assert "sk-test-secret" not in caplog.text
    assert rows(db_path, "SELECT session_id, status FROM turns") == [("console:a", "ok")]


async def test_reported_usage_corrects_the_estimate(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.usage_factor = 2.0
    async with engine_for(fake_model.base_url, db_path, CHATBOT_MODEL="llama3.1:8b") as engine:
        before = engine.counter.correction
        for i in range(5):
            await engine.reply_text(said("console:a", f"message number {i} with some words in it"))
        assert engine.counter.correction > before * 1.3


async def test_a_command_naming_another_bot_is_plain_text_and_resets_nothing(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(said("console:a", "remember the blue door"))
        assert await engine.reply_text(said("console:a", "/reset@other_bot")) == "You said: /reset@other_bot"
        await engine.reply_text(said("console:a", "what did I say?"))
    assert "remember the blue door" in [m["content"] for m in fake_model.last_messages()]
