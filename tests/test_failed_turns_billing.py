"""Only tokens a turn really cost count toward budgets, stats and metrics (all read the turn's record).

A call that failed before producing text is not billed: the server reported nothing and produced nothing.
A stream that produced text and then failed counts what it produced.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core import conversation as conv
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from features.limits.usage import UsageLimits
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for


def msg(text: str, user: str = "telegram:1") -> IncomingMessage:
    return IncomingMessage(session_id=user, text=text, user_id=user, platform="telegram")


def limiter(engine: ConversationEngine) -> UsageLimits:
    return next(g for g in engine.hooks.input_guards if isinstance(g, UsageLimits))


def turn_tokens(db_path: Path) -> list[tuple[str, int, int]]:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT status, prompt_tokens, completion_tokens FROM turns ORDER BY id").fetchall()


async def test_failed_turns_leave_the_daily_budget_untouched(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(*(Reply(status=503, error_message="overloaded") for _ in range(3)))
    async with engine_for(fake_model.base_url, db_path, CHATBOT_USER_DAILY_TOKENS=1000) as engine:
        for i in range(3):
            question = f"Question number {i}: how long does it take to boil an egg at high altitude?"
            assert await engine.reply_text(msg(question)) == conv.UNAVAILABLE
        assert await limiter(engine).spent_today("telegram:1") == 0
    assert turn_tokens(db_path) == [("error", 0, 0)] * 3


async def test_turn_that_streamed_text_then_failed_counts_the_text_it_produced(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text="a partial answer that breaks off " * 4, chunk_size=16, fail_after=4))
    async with engine_for(fake_model.base_url, db_path, CHATBOT_USER_DAILY_TOKENS=1000) as engine:
        reply = await engine.reply_text(msg("tell me a story"))
        assert reply.endswith(conv.INTERRUPTED)
        spent = await limiter(engine).spent_today("telegram:1")
        produced = engine.counter.count(reply.removesuffix(conv.INTERRUPTED))
    [(status, prompt, completion)] = turn_tokens(db_path)
    assert status == "interrupted"
    assert completion == produced > 0  # what it produced, estimated: the server reported nothing
    assert prompt > 0  # a stream that produced text was billed for its prompt
    assert spent == prompt + completion
