"""A failed turn never harms the next one: its question is kept in the store but never fed back.

Also: a withdrawn reply's question is answered by the refusal the user saw, so it is not asked again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from core import conversation as conv
from core.hooks import Refusal
from core.incoming import IncomingMessage
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said

QUESTION = "what is the secret recipe?"


def rows(db_path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, args).fetchall()


def sent_text(fake_model: FakeOpenAI) -> str:
    return str(fake_model.last_messages())


@pytest.mark.parametrize("status", [500, 400])
async def test_message_after_a_failed_turn_is_answered_as_itself(
    fake_model: FakeOpenAI, db_path: Path, status: int
) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(said("console:a", "hello"))
        fake_model.queue(Reply(status=status, error_message="this content breaks the model"))
        failed = await engine.reply_text(said("console:a", QUESTION))
        assert failed in (
            conv.UNAVAILABLE,
            conv.REJECTED.format(reason="the model server refused the request"),
        )
        answer = await engine.reply_text(said("console:a", "how are you?"))
    assert answer == "You said: how are you?"
    sent = fake_model.last_messages()
    assert [m["content"] for m in sent[1:]] == ["hello", "You said: hello", "how are you?"]
    assert "secret recipe" not in sent_text(fake_model)
    # nothing the user said is lost: the failed question is kept, marked incomplete
    assert (QUESTION, 0) in rows(db_path, "SELECT content, complete FROM messages WHERE role = 'user'")


async def test_message_after_a_transient_failure_is_not_merged_with_the_failed_one(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(status=503, error_message="overloaded"))
    async with engine_for(fake_model.base_url, db_path) as engine:
        assert await engine.reply_text(said("console:a", "first question")) == conv.UNAVAILABLE
        assert await engine.reply_text(said("console:a", "second question")) == "You said: second question"
        # the user asks the first again: answered once, as itself
        assert await engine.reply_text(said("console:a", "first question")) == "You said: first question"
    sent = fake_model.last_messages()
    assert [m["content"] for m in sent[1:]] == [
        "second question",
        "You said: second question",
        "first question",
    ]


async def test_message_after_an_interrupted_stream_is_answered_as_itself(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text="the recipe is flour and a secret", chunk_size=6, fail_after=2))
    async with engine_for(fake_model.base_url, db_path) as engine:
        assert (await engine.reply_text(said("console:a", QUESTION))).endswith(conv.INTERRUPTED)
        assert await engine.reply_text(said("console:a", "thanks")) == "You said: thanks"
    assert [m["content"] for m in fake_model.last_messages()[1:]] == ["thanks"]


async def test_message_after_an_empty_reply_is_answered_as_itself(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text=""))
    async with engine_for(fake_model.base_url, db_path) as engine:
        assert await engine.reply_text(said("console:a", QUESTION)) == conv.EMPTY_REPLY
        assert await engine.reply_text(said("console:a", "thanks")) == "You said: thanks"
    assert [m["content"] for m in fake_model.last_messages()[1:]] == ["thanks"]


async def test_reply_cancelled_mid_stream_leaves_its_question_out_of_later_prompts(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    """The streamer cancels the engine's generator when the platform fails; the turn is still recorded."""
    fake_model.queue(Reply(text="a long answer " * 20, chunk_size=5, delay=0.05))
    async with engine_for(fake_model.base_url, db_path) as engine:
        first_chunk = asyncio.Event()

        async def consume() -> None:
            async for _chunk in engine.reply(said("console:a", QUESTION)):
                first_chunk.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_chunk.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await engine.reply_text(said("console:a", "are you there?")) == "You said: are you there?"
    assert [m["content"] for m in fake_model.last_messages()[1:]] == ["are you there?"]
    assert rows(db_path, "SELECT status FROM turns") == [("interrupted",), ("ok",)]
    assert rows(db_path, "SELECT content, complete FROM messages WHERE role = 'user'") == [
        (QUESTION, 0),
        ("are you there?", 1),
    ]


async def test_message_after_the_process_died_mid_reply_is_answered_as_itself(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    """A kill leaves the database as it was mid-reply: we copy it then (SQLite's online backup, a consistent
    snapshot), and a new engine opened on the copy plays the restarted process."""
    after_kill = tmp_path / "after-kill.db"

    def snapshot(body: dict[str, Any], index: int, last: bool) -> None:
        if index == 1 and not after_kill.exists():
            with sqlite3.connect(db_path) as live, sqlite3.connect(after_kill) as copy:
                live.backup(copy)

    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(said("console:a", "hello"))
        fake_model.on_chunk = snapshot
        fake_model.queue(Reply(text="the recipe is flour and a secret", chunk_size=6))
        await engine.reply_text(said("console:a", QUESTION))
    fake_model.on_chunk = None
    assert after_kill.exists()
    async with engine_for(fake_model.base_url, after_kill) as engine:
        for i in range(3):
            answer = await engine.reply_text(said("console:a", f"follow-up {i}"))
            assert answer == f"You said: follow-up {i}"
    assert "secret recipe" not in sent_text(fake_model)
    assert [m["content"] for m in fake_model.last_messages()[1:]][:2] == ["hello", "You said: hello"]


class WithdrawRecipes:
    """An output guard that withdraws any reply mentioning the recipe."""

    REFUSAL = "Sorry, I can't share that."

    def check_partial(self, message: IncomingMessage, text: str) -> Refusal | None:
        return None

    async def check_reply(self, message: IncomingMessage, text: str) -> Refusal | None:
        return Refusal(self.REFUSAL, "recipe") if "recipe" in text else None


async def test_withdrawn_reply_is_remembered_as_refused_not_asked_again(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        engine.hooks.output_guards.append(WithdrawRecipes())
        fake_model.queue("the recipe is flour and a secret")
        assert await engine.reply_text(said("console:a", "tell me")) == WithdrawRecipes.REFUSAL
        assert await engine.reply_text(said("console:a", "ok, what else?")) == "You said: ok, what else?"
    sent = fake_model.last_messages()
    assert sent[1:] == [
        {"role": "user", "content": "tell me"},
        {"role": "assistant", "content": WithdrawRecipes.REFUSAL},
        {"role": "user", "content": "ok, what else?"},
    ]
    assert "flour" not in sent_text(fake_model)


async def test_reply_closed_by_its_consumer_leaves_its_question_out_of_later_prompts(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    """A platform that fails mid-reply closes the engine's generator (``aclose``): the turn is recorded as
    interrupted and its question stays incomplete."""
    fake_model.queue(Reply(text="a long answer " * 20, chunk_size=5, delay=0.02))
    async with engine_for(fake_model.base_url, db_path) as engine:
        chunks = engine.reply(said("console:a", QUESTION))
        assert await anext(chunks)
        await chunks.aclose()  # type: ignore[attr-defined]
        assert await engine.reply_text(said("console:a", "still there?")) == "You said: still there?"
    assert [m["content"] for m in fake_model.last_messages()[1:]] == ["still there?"]
    assert rows(db_path, "SELECT status FROM turns") == [("interrupted",), ("ok",)]


async def test_prompt_alternates_even_over_a_legacy_history_of_two_questions_in_a_row(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    """Databases written before questions were stored incomplete hold a failed turn's question as complete:
    consecutive user messages are merged, so strict chat templates still see user/assistant alternate."""
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.store.add_message(
            "console:a", "user", "old failed question", 5, user_id="console:tester"
        )
        await engine.store.add_message(
            "console:a", "user", "old answered question", 5, user_id="console:tester"
        )
        await engine.store.add_message("console:a", "assistant", "old answer", 4)
        await engine.reply_text(said("console:a", "new question"))
    roles = [m["role"] for m in fake_model.last_messages()]
    assert roles == ["system", "user", "assistant", "user"]
