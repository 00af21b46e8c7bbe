"""Model server faults: rate limits, errors, outages, context overflow and servers without usage reports."""

from __future__ import annotations

from pathlib import Path

from core import conversation as conv
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said


async def test_429_with_retry_after_is_retried(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(Reply(status=429, retry_after=0.2, error_message="slow down"), "fine now")
    async with engine_for(fake_model.base_url, db_path, CHATBOT_MAX_RETRIES=2) as engine:
        assert await engine.reply_text(said("console:a", "hi")) == "fine now"
    assert len(fake_model.chat_requests) == 2
    start_first, _ = fake_model.request_times[0]
    start_second, _ = fake_model.request_times[1]
    assert start_second - start_first >= 0.2  # honoured Retry-After


async def test_persistent_errors_give_a_short_answer_and_the_session_keeps_working(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(*(Reply(status=500) for _ in range(3)))
    async with engine_for(fake_model.base_url, db_path, CHATBOT_MAX_RETRIES=2) as engine:
        assert await engine.reply_text(said("console:a", "first")) == conv.UNAVAILABLE
        assert await engine.reply_text(said("console:a", "second")) == "You said: second"
    assert "first" not in str(fake_model.last_messages())  # the failed question is not merged into this one


async def test_unreachable_server_is_a_short_answer(db_path: Path) -> None:
    async with engine_for("http://127.0.0.1:9/v1", db_path) as engine:
        assert await engine.reply_text(said("console:a", "anyone?")) == conv.UNAVAILABLE


async def test_rejected_key_is_reported_without_the_key(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(Reply(status=401, error_message="Incorrect API key provided: sk-test-secret-key-123456"))
    async with engine_for(fake_model.base_url, db_path) as engine:
        reply = await engine.reply_text(said("console:a", "hi"))
    assert reply.startswith("⚠️ The model server refused this request")
    assert "sk-test" not in reply


async def test_context_length_exceeded_trims_harder_and_retries_once(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(
        fake_model.base_url, db_path, CHATBOT_CONTEXT_TOKENS=4000, CHATBOT_MAX_TOKENS=400
    ) as engine:
        for i in range(30):
            await engine.reply_text(said("console:a", f"message {i} " + "filler text " * 20))
        fake_model.context_limit = 2600  # the server's real window turns out smaller than we were told
        before = len(fake_model.chat_requests)
        reply = await engine.reply_text(said("console:a", "still there?"))
    assert reply.startswith("You said: still there?") or "still there?" in reply
    sent = fake_model.chat_requests[before:]
    assert len(sent) == 2
    assert len(str(sent[1]["messages"])) < len(str(sent[0]["messages"]))


async def test_context_error_that_persists_is_explained(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.context_limit = 10
    async with engine_for(fake_model.base_url, db_path) as engine:
        assert await engine.reply_text(said("console:a", "hello")) == conv.TOO_LONG
    # the first try, one at the 10-token window the server named, one trimmed to half: then it gives up
    assert len(fake_model.chat_requests) == 3


async def test_server_that_rejects_stream_options_still_streams(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.reject_stream_options = True
    async with engine_for(fake_model.base_url, db_path) as engine:
        assert await engine.reply_text(said("console:a", "one")) == "You said: one"
        assert (await engine.reply_text(said("console:a", "two"))).startswith("You said:")
    with_options = [r for r in fake_model.chat_requests if "stream_options" in r]
    assert len(with_options) == 1  # asked once, then remembered


async def test_empty_model_reply_is_explained(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(Reply(text=""))
    async with engine_for(fake_model.base_url, db_path) as engine:
        assert await engine.reply_text(said("console:a", "hm")) == conv.EMPTY_REPLY
