"""Issue 13: every OpenAI-compatible server family, as the fake reproduces it (tests/fakes/openai_server.py).

Overflows in each real form become ContextTooLong with the server's numbers; streams that end wrong are never
a complete reply; the window is discovered per server; calls beyond the limit wait in arrival order.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bots.app import connect_model
from core import conversation as conv
from core.bot_profile import ModelParams
from core.errors import ContextTooLong, ModelError, StreamIncomplete
from core.model_client import OpenAIChatModel, ReplyStream
from core.model_servers import ServerWindow, WindowChoice, choose_window, discover_window, overflow_from
from core.model_tokenize import ServerTokenCounter
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said, settings_for

DIALECTS = ["openai", "vllm", "llamacpp-python", "llama-server", "ollama", "lmstudio"]
Start = Callable[..., Awaitable[FakeOpenAI]]


@pytest.fixture
async def start_server() -> AsyncIterator[Start]:
    started: list[FakeOpenAI] = []

    async def start(dialect: str, **knobs: object) -> FakeOpenAI:
        server = FakeOpenAI(dialect=dialect, **knobs)  # type: ignore[arg-type]
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


def rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql).fetchall()


def model_for(server: FakeOpenAI, db_path: Path, **overrides: object) -> OpenAIChatModel:
    return connect_model(settings_for(server.base_url, db_path, **overrides))


async def run(stream: ReplyStream) -> tuple[str, Exception | None]:
    got: list[str] = []
    try:
        async for piece in stream:
            got.append(piece)
    except Exception as exc:
        return "".join(got), exc
    return "".join(got), None


LONG = [{"role": "user", "content": "word " * 2000}]  # ~2,500 tokens by the fake's estimate
PARAMS = ModelParams(max_tokens=100)


@pytest.mark.parametrize("dialect", ["openai", "vllm", "llamacpp-python", "llama-server", "lmstudio"])
async def test_an_overflow_on_every_server_is_context_too_long_with_the_window(
    start_server: Start, db_path: Path, dialect: str
) -> None:
    server = await start_server(dialect, context_limit=512)
    model = model_for(server, db_path)
    try:
        _, error = await run(model.stream("fake-model", LONG, PARAMS))
    finally:
        await model.close()
    assert isinstance(error, ContextTooLong), error
    assert error.window == 512
    assert error.requested is not None and error.requested > 512


async def test_llama_server_overflow_inside_a_200_stream_is_context_too_long(
    start_server: Start, db_path: Path
) -> None:
    server = await start_server("llama-server", context_limit=512, slot_overflow=True)
    model = model_for(server, db_path)
    try:
        _, error = await run(model.stream("fake-model", LONG, PARAMS))
    finally:
        await model.close()
    assert isinstance(error, ContextTooLong)
    assert "Context size has been exceeded" in str(error)


@pytest.mark.parametrize("dialect", ["vllm", "llamacpp-python", "llama-server", "lmstudio"])
async def test_an_overflowing_conversation_is_trimmed_and_answered_on_every_server(
    start_server: Start, db_path: Path, dialect: str
) -> None:
    server = await start_server(dialect)
    async with engine_for(
        server.base_url,
        db_path,
        CHATBOT_CONTEXT_TOKENS=4000,
        CHATBOT_MAX_TOKENS=400,
        CHATBOT_DISCOVER_WINDOW=0,
    ) as engine:
        for i in range(30):
            await engine.reply_text(said("console:a", f"message {i} " + "filler text " * 20))
        server.context_limit = 2600  # the server's real window is smaller than we were told
        reply = await engine.reply_text(said("console:a", "still there?"))
    assert "still there?" in reply
    assert reply != conv.EMPTY_REPLY
    assert rows(db_path, "SELECT status FROM turns ORDER BY rowid DESC LIMIT 1") == [("ok",)]


async def test_llamacpp_python_streamed_overflow_is_not_stored_as_an_empty_reply(
    start_server: Start, db_path: Path
) -> None:
    server = await start_server("llamacpp-python", context_limit=10)
    async with engine_for(server.base_url, db_path, CHATBOT_DISCOVER_WINDOW=0) as engine:
        reply = await engine.reply_text(said("console:a", "hello"))
    assert reply == conv.TOO_LONG
    assert rows(db_path, "SELECT status FROM turns") == [("error",)]


async def test_a_stream_interrupted_with_done_and_no_finish_reason_is_not_a_complete_reply(
    start_server: Start, db_path: Path
) -> None:
    server = await start_server("llamacpp-python")
    server.queue(Reply(text="A long answer that gets cut off", chunk_size=4, interrupt_after=3))
    async with engine_for(server.base_url, db_path) as engine:
        reply = await engine.reply_text(said("console:a", "go"))
    assert reply == "A long answe" + conv.INTERRUPTED
    assert rows(db_path, "SELECT status FROM turns") == [("interrupted",)]


async def test_a_stream_broken_before_any_text_is_retried_once(start_server: Start, db_path: Path) -> None:
    server = await start_server("llamacpp-python")
    server.queue(Reply(text="lost", interrupt_after=0), "second try")
    async with engine_for(server.base_url, db_path) as engine:
        reply = await engine.reply_text(said("console:a", "go"))
    assert reply == "second try"
    assert len(server.chat_requests) == 2


async def test_an_error_event_before_any_text_is_retried_once(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(Reply(text="lost", fail_after=0), "second try")
    async with engine_for(fake_model.base_url, db_path) as engine:
        reply = await engine.reply_text(said("console:a", "go"))
    assert reply == "second try"


async def test_a_stream_that_keeps_breaking_is_reported_not_stored_as_complete(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text="lost", fail_after=0), Reply(text="lost", fail_after=0))
    model = model_for(fake_model, db_path)
    try:
        _, error = await run(model.stream("fake-model", [{"role": "user", "content": "go"}], PARAMS))
    finally:
        await model.close()
    assert isinstance(error, StreamIncomplete)
    assert "upstream model crashed" in str(error)
    assert len(fake_model.chat_requests) == 2


@pytest.mark.parametrize("reason", ["stop", "length", "content_filter"])
async def test_the_finish_reason_is_visible_on_the_stream(
    fake_model: FakeOpenAI, db_path: Path, reason: str
) -> None:
    fake_model.queue(Reply(text="some text", finish_reason=reason))
    model = model_for(fake_model, db_path)
    try:
        stream = model.stream("fake-model", [{"role": "user", "content": "go"}], PARAMS)
        text, error = await run(stream)
    finally:
        await model.close()
    assert (text, error, stream.finish_reason) == ("some text", None, reason)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_usage_is_reported_by_every_server_but_llamacpp_python(
    start_server: Start, db_path: Path, dialect: str
) -> None:
    server = await start_server(dialect)
    model = model_for(server, db_path)
    try:
        stream = model.stream("fake-model", [{"role": "user", "content": "go"}], PARAMS)
        text, error = await run(stream)
    finally:
        await model.close()
    assert error is None and text == "You said: go"
    assert (stream.usage is None) == (dialect == "llamacpp-python")


@pytest.mark.parametrize(
    ("dialect", "knobs", "expected"),
    [
        ("openai", {}, None),
        ("vllm", {"context_limit": 4096}, ("vllm", 4096, True, None)),
        ("llama-server", {"context_limit": 512, "slots": 4}, ("llama-server", 512, True, 4)),
        ("lmstudio", {"context_limit": 8192}, ("lmstudio", 8192, True, None)),
        ("ollama", {"ollama_num_ctx": 16384}, ("ollama", 16384, True, None)),
        ("ollama", {"ollama_loaded_context": 32768}, ("ollama", 32768, True, None)),
        ("ollama", {}, ("ollama", 4096, False, None)),
    ],
)
async def test_the_window_is_discovered_per_server(
    start_server: Start,
    db_path: Path,
    dialect: str,
    knobs: dict[str, object],
    expected: tuple[str, int, bool, int | None] | None,
) -> None:
    server = await start_server(dialect, **knobs)
    model = model_for(server, db_path)
    try:
        found = await discover_window(model.client, "fake-model")
    finally:
        await model.close()
    got = None if found is None else (found.dialect, found.window, found.exact, found.slots)
    assert got == expected


async def test_a_small_server_window_caps_max_tokens_and_keeps_history(
    start_server: Start, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server("llama-server", context_limit=512, slots=2)
    with caplog.at_level("INFO"):
        async with engine_for(server.base_url, db_path, CHATBOT_MODEL="local-model") as engine:
            await engine.reply_text(said("console:a", "first"))
            await engine.reply_text(said("console:a", "second"))
            assert engine.model.call_limit.limit == 2  # type: ignore[attr-defined]
    assert engine.bot.window == 512
    assert engine.bot.params.max_tokens == 128  # 25% of the window, not the default 1024
    assert "first" in str(server.last_messages())  # history kept on turn 2
    assert "llama.cpp /props" in caplog.text
    assert "capped to 128" in caplog.text


async def test_the_n_plus_first_call_waits_and_calls_are_served_in_arrival_order(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.default = lambda body: Reply(
        text=f"reply to {body['messages'][-1]['content']}", chunk_size=2, delay=0.05
    )
    model = model_for(fake_model, db_path, CHATBOT_MAX_CONCURRENT_CALLS=2)
    order: list[str] = []

    async def call(name: str) -> None:
        async for _ in model.stream("fake-model", [{"role": "user", "content": name}], PARAMS):
            pass
        order.append(name)

    try:
        tasks = []
        for name in ("a", "b", "c", "d", "e"):
            tasks.append(asyncio.create_task(call(name)))
            await asyncio.sleep(0.01)  # arrive in this order
        await asyncio.gather(*tasks)
    finally:
        await model.close()
    served = [r["messages"][-1]["content"] for r in fake_model.chat_requests]
    assert served == ["a", "b", "c", "d", "e"]
    spans = sorted(fake_model.request_times)
    most_at_once = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most_at_once == 2


async def test_a_model_error_never_leaks_to_the_caller_as_another_type(
    start_server: Start, db_path: Path
) -> None:
    server = await start_server("ollama", context_limit=10)  # ollama truncates silently: an answer
    model = model_for(server, db_path)
    try:
        text, error = await run(model.stream("fake-model", LONG, PARAMS))
    finally:
        await model.close()
    assert error is None or isinstance(error, ModelError)
    assert text.startswith("You said:")


@pytest.mark.parametrize(("dialect", "exact"), [("llama-server", True), ("vllm", True), ("ollama", False)])
async def test_exact_token_counts_come_from_servers_that_can_count(
    start_server: Start, db_path: Path, dialect: str, exact: bool
) -> None:
    server = await start_server(dialect)
    model = model_for(server, db_path)
    counter = ServerTokenCounter(model.client, "fake-model", dialect)
    try:
        first = await counter.count("x" * 400)
        again = await counter.count("x" * 400)
    finally:
        await model.close()
    assert first == again == (100 if exact else None)  # the fake counts 4 characters a token
    assert len([r for r in server.requests if "content" in r or "prompt" in r]) == (1 if exact else 0)


async def test_a_reply_stopped_early_frees_its_model_slot(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(Reply(text="a long reply " * 20, chunk_size=4, delay=0.05), "next")
    model = model_for(fake_model, db_path, CHATBOT_MAX_CONCURRENT_CALLS=1)
    try:
        pieces = aiter(model.stream("fake-model", [{"role": "user", "content": "a"}], PARAMS))
        assert await anext(pieces)
        await pieces.aclose()  # type: ignore[attr-defined]  # what the engine does when a guard stops a reply
        text, error = await asyncio.wait_for(
            run(model.stream("fake-model", [{"role": "user", "content": "b"}], PARAMS)), timeout=5
        )
    finally:
        await model.close()
    assert (text, error) == ("next", None)


@pytest.mark.parametrize(
    ("message", "window", "requested"),
    [
        (
            "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is "
            "4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778). None",
            4096,
            10778,
        ),
        (
            "Trying to keep the first 10136 tokens when context the overflows. However, the model is loaded "
            "with context length of only 7866 tokens, which is not enough.",
            7866,
            10136,
        ),
        ("Cannot truncate prompt with n_keep (15028) >= n_ctx (7424)", 7424, 15028),
    ],
)
def test_overflow_messages_of_other_server_versions_carry_their_numbers(
    message: str, window: int | None, requested: int | None
) -> None:
    found = overflow_from(message)
    assert found is not None
    assert (found.window, found.requested) == (window, requested)


def test_a_configured_window_smaller_than_the_servers_wins_and_a_larger_one_loses() -> None:
    exact = ServerWindow("llama-server", 4096, "llama.cpp /props")
    guess = ServerWindow("ollama", 4096, "ollama default num_ctx (guess)", exact=False)
    assert choose_window(exact, 2048, None, 8192).window == 2048
    assert choose_window(exact, 32768, None, 8192).window == 4096
    assert choose_window(guess, 32768, None, 8192).window == 32768
    assert choose_window(None, None, 128000, 8192) == WindowChoice(128000, "known-model table")


async def test_a_system_prompt_that_leaves_no_room_for_history_is_warned_about_with_the_numbers(
    start_server: Start, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server("llama-server", context_limit=512)
    with caplog.at_level("WARNING"):
        async with engine_for(server.base_url, db_path, bot="orbit", CHATBOT_MODEL="local-model"):
            pass
    assert "little room for history: window 512" in caplog.text
