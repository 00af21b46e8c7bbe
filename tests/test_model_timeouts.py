"""Issue 11 item 9: a hung or stalled model server is given up on within bounded time, a slow one is not.

Limits are small here (0.5-1 s) and the bounds asserted are generous (< 5 s), never thin margins.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from bots.app import connect_model
from core.bot_profile import ModelParams
from core.errors import ModelTimeout
from core.model_client import OpenAIChatModel
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said, settings_for

FAST = {"CHATBOT_FIRST_TOKEN_TIMEOUT": 0.5, "CHATBOT_STALL_TIMEOUT": 0.5, "CHATBOT_REPLY_TIMEOUT": 30}


def rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql).fetchall()


def model_for(fake: FakeOpenAI, db_path: Path, **overrides: object) -> OpenAIChatModel:
    return connect_model(settings_for(fake.base_url, db_path, **{**FAST, **overrides}))


async def collect(model: OpenAIChatModel, text: str = "hi") -> tuple[str, Exception | None]:
    got: list[str] = []
    try:
        async for piece in model.stream("gpt-4o-mini", [{"role": "user", "content": text}], ModelParams()):
            got.append(piece)
    except Exception as exc:
        return "".join(got), exc
    return "".join(got), None


async def test_a_server_that_never_answers_is_given_up_on_within_the_first_token_limit(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text="too late", first_delay=60))
    async with engine_for(fake_model.base_url, db_path, **FAST) as engine:
        started = time.monotonic()
        reply = await engine.reply_text(said("console:a", "hello?"))
        waited = time.monotonic() - started
    assert reply == "⚠️ The model did not start answering within 0.5 s. Please try again in a moment."
    assert waited < 5  # was request timeout x retries (243 s with the defaults)


async def test_the_timeout_says_what_happened(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(Reply(text="too late", first_delay=60))
    model = model_for(fake_model, db_path)
    try:
        text, error = await collect(model)
    finally:
        await model.close()
    assert text == ""
    assert isinstance(error, ModelTimeout)
    assert str(error) == "the model server did not start answering within 0.5 s"


async def test_client_retries_of_a_failing_server_stop_at_the_first_token_limit(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(*(Reply(status=503, retry_after=2) for _ in range(10)))
    model = model_for(fake_model, db_path, CHATBOT_MAX_RETRIES=10, CHATBOT_FIRST_TOKEN_TIMEOUT=1)
    started = time.monotonic()
    try:
        _, error = await collect(model)
    finally:
        await model.close()
    assert isinstance(error, ModelTimeout)
    assert time.monotonic() - started < 5  # ten retries 2 s apart would take 20 s


async def test_a_stream_that_stalls_mid_reply_is_cut_after_the_stall_limit_keeping_the_text_so_far(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text="The first part. And the rest", chunk_size=5, pause_at=3, pause=60))
    async with engine_for(fake_model.base_url, db_path, **FAST) as engine:
        started = time.monotonic()
        reply = await engine.reply_text(said("console:a", "tell me"))
        waited = time.monotonic() - started
    assert reply == (
        "The first part.\n\n⚠️ The reply was interrupted: the model stopped sending for 0.5 s. Please try again."
    )
    assert waited < 5
    assert rows(db_path, "SELECT status FROM turns") == [("interrupted",)]


async def test_a_slow_but_steady_stream_longer_than_the_stall_limit_is_not_cut(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    text = "one two three four five six seven eight nine ten"
    fake_model.queue(Reply(text=text, chunk_size=5, delay=0.2))  # ~2 s in all, 0.2 s between chunks
    async with engine_for(fake_model.base_url, db_path, **FAST) as engine:
        reply = await engine.reply_text(said("console:a", "count"))
    assert reply == text


async def test_a_reply_over_the_total_limit_is_cut(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(Reply(text="x" * 200, chunk_size=5, delay=0.2))  # 8 s if left alone
    model = model_for(fake_model, db_path, CHATBOT_REPLY_TIMEOUT=1)
    started = time.monotonic()
    try:
        text, error = await collect(model)
    finally:
        await model.close()
    assert isinstance(error, ModelTimeout) and error.phase == "total"
    assert 0 < len(text) < 200
    assert time.monotonic() - started < 5


async def test_a_summary_call_to_a_hung_server_is_bounded(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(Reply(text="late", first_delay=60))
    model = model_for(fake_model, db_path, CHATBOT_REPLY_TIMEOUT=1)
    started = time.monotonic()
    try:
        with pytest.raises(ModelTimeout):
            await model.complete("gpt-4o-mini", [{"role": "user", "content": "sum up"}], ModelParams())
    finally:
        await model.close()
    assert time.monotonic() - started < 5


async def test_time_limits_default_to_15_20_and_180_seconds(fake_model: FakeOpenAI, db_path: Path) -> None:
    model = connect_model(settings_for(fake_model.base_url, db_path))
    await model.close()
    assert (model.limits.first_token, model.limits.stall, model.limits.total) == (15, 20, 180)
    await asyncio.sleep(0)


async def test_a_server_that_goes_quiet_after_finishing_the_reply_does_not_cost_the_reply(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text="all said", hang_at_end=3))  # 6x the stall limit
    async with engine_for(fake_model.base_url, db_path, **FAST) as engine:
        started = time.monotonic()
        reply = await engine.reply_text(said("console:a", "go"))
        waited = time.monotonic() - started
    assert reply == "all said"
    assert waited < 5
    assert rows(db_path, "SELECT status FROM turns") == [("ok",)]
