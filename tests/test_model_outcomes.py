"""Issue 13, the engine's side: what the user sees and the store keeps when a reply ends other than "stop",
when a time limit runs out, and when a server's overflow names a window smaller than the one we budget for.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.hooks import Refusal, Retraction
from core.incoming import IncomingMessage
from core.model_outcomes import FILTERED, LENGTH_NOTICE
from core.tokens import PER_MESSAGE_OVERHEAD, TokenCounter
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said


def rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql).fetchall()


FILLER = "filler text " * 20


async def test_an_overflow_naming_a_smaller_window_is_answered_and_later_turns_fit_it_first_time(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(
        fake_model.base_url, db_path, CHATBOT_CONTEXT_TOKENS=8000, CHATBOT_DISCOVER_WINDOW=0
    ) as engine:
        for i in range(40):
            await engine.reply_text(said("console:a", f"message {i} " + FILLER))
        fake_model.context_limit = 1500  # the server's real window is much smaller than we were told
        reply = await engine.reply_text(said("console:a", "still there?"))
        before = len(fake_model.chat_requests)
        later = await engine.reply_text(said("console:a", "and now?"))
        assert engine.bot.window == 1500
        assert engine.bot.params.max_tokens == 375  # the start-up share (25%) of the learned window
    assert reply.endswith("You said: still there?")  # was TOO_LONG: half of 8,000 tokens still overflowed
    assert later.endswith("You said: and now?")
    assert len(fake_model.chat_requests) == before + 1  # budgeted for the real window: no overflow
    assert rows(db_path, "SELECT status FROM turns ORDER BY id DESC LIMIT 2") == [("ok",), ("ok",)]


async def test_a_server_without_usage_reports_teaches_the_token_count_through_its_overflows(
    db_path: Path,
) -> None:
    # llama-cpp-python never reports usage in streams; "internationalization" costs the fake twice what we
    # estimate, so without learning from the overflow's numbers every later turn overflowed first.
    server = FakeOpenAI(dialect="llamacpp-python", context_limit=2048)
    await server.start()
    try:
        async with engine_for(
            server.base_url, db_path, CHATBOT_CONTEXT_TOKENS=2048, CHATBOT_DISCOVER_WINDOW=0
        ) as engine:
            for i in range(12):
                reply = await engine.reply_text(said("console:a", f"m{i} " + "internationalization " * 20))
                assert reply.endswith(f"You said: m{i} " + "internationalization " * 20)
            before = len(server.chat_requests)
            for i in range(12, 18):
                await engine.reply_text(said("console:a", f"m{i} " + "internationalization " * 20))
    finally:
        await server.stop()
    assert len(server.chat_requests) - before == 6  # one request a turn: the estimate learned the real size


async def test_a_reply_cut_at_the_length_limit_is_shown_with_a_notice_and_kept_for_the_model(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text="The first half of a long", finish_reason="length"), "the rest")
    async with engine_for(fake_model.base_url, db_path) as engine:
        reply = await engine.reply_text(said("console:a", "tell me everything"))
        await engine.reply_text(said("console:a", "continue"))
    assert reply == "The first half of a long" + LENGTH_NOTICE
    assert rows(db_path, "SELECT status FROM turns ORDER BY id") == [("length",), ("ok",)]
    sent = [(m["role"], m["content"]) for m in fake_model.last_messages()[1:]]
    assert sent == [
        ("user", "tell me everything"),
        ("assistant", "The first half of a long"),
        ("user", "continue"),
    ]


async def test_a_reply_stopped_by_the_content_filter_is_explained_and_never_fed_back(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(
        Reply(text="Here is how to", finish_reason="content_filter"),
        Reply(text="", finish_reason="content_filter"),
    )
    async with engine_for(fake_model.base_url, db_path) as engine:
        partial = await engine.reply_text(said("console:a", "something filtered"))
        nothing = await engine.reply_text(said("console:a", "another filtered"))
        await engine.reply_text(said("console:a", "hello"))
    assert partial == "Here is how to\n\n" + FILTERED
    assert nothing == FILTERED  # was EMPTY_REPLY, as if the model had nothing to say
    assert rows(db_path, "SELECT status FROM turns ORDER BY id") == [("filtered",), ("filtered",), ("ok",)]
    assert [(m["role"], m["content"]) for m in fake_model.last_messages()[1:]] == [("user", "hello")]
    assert rows(db_path, "SELECT content FROM messages WHERE complete = 1 AND role = 'user'") == [("hello",)]


FAST = {"CHATBOT_FIRST_TOKEN_TIMEOUT": 0.5, "CHATBOT_STALL_TIMEOUT": 0.5, "CHATBOT_REPLY_TIMEOUT": 30}


async def test_a_reply_over_the_total_time_limit_says_it_was_cut_off_after_that_many_seconds(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text="x" * 200, chunk_size=5, delay=0.2))  # 8 s if left alone
    async with engine_for(fake_model.base_url, db_path, **{**FAST, "CHATBOT_REPLY_TIMEOUT": 1}) as engine:
        reply = await engine.reply_text(said("console:a", "go on"))
    text, _, notice = reply.partition("\n\n")
    assert 0 < len(text) < 200 and set(text) == {"x"}
    assert (
        notice
        == "⚠️ The reply was cut off: it took longer than 1 s. Please try again, or ask for a shorter answer."
    )
    assert rows(db_path, "SELECT status FROM turns") == [("interrupted",)]


class _StopAt:
    """An output guard that withdraws the reply as soon as ``word`` shows up in it."""

    def __init__(self, word: str) -> None:
        self.word = word

    def check_partial(self, message: IncomingMessage, text: str) -> Refusal | None:
        return Refusal("I can't share that.", "test") if self.word in text else None

    async def check_reply(self, message: IncomingMessage, text: str) -> Refusal | None:
        return None


async def test_a_reply_a_guard_stops_frees_its_model_slot_before_the_refusal_is_shown(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue(Reply(text="fine fine secret and a long tail " * 10, chunk_size=4, delay=0.02))
    async with engine_for(fake_model.base_url, db_path, CHATBOT_MAX_CONCURRENT_CALLS=1) as engine:
        engine.hooks.output_guards.append(_StopAt("secret"))
        free_when_refused: bool | None = None
        async for chunk in engine.reply(said("console:a", "tell me")):
            if isinstance(chunk, Retraction):
                # was left to the garbage collector: the slot stayed taken until a later loop iteration
                free_when_refused = engine.model.call_limit.active == 0  # type: ignore[attr-defined]
        assert free_when_refused is True
        assert await engine.reply_text(said("console:b", "next")) == "You said: next"


@pytest.mark.parametrize(("dialect", "exact"), [("llama-server", True), ("vllm", True), ("ollama", False)])
async def test_on_servers_that_can_count_the_store_holds_their_exact_token_counts(
    db_path: Path, dialect: str, exact: bool
) -> None:
    server = FakeOpenAI(dialect=dialect)
    await server.start()
    text = "x" * 400  # 100 tokens by the fake server's tokenizer, about 58 by our estimate
    estimate = TokenCounter("local-model", allow_download=False).message_tokens(text)
    try:
        async with engine_for(server.base_url, db_path, CHATBOT_MODEL="local-model") as engine:
            await engine.reply_text(said("console:a", text))
    finally:
        await server.stop()
    stored = rows(db_path, "SELECT role, tokens FROM messages ORDER BY id")
    # the two counts differ, so the test can tell which one was stored
    assert estimate != len(text) // 4 + PER_MESSAGE_OVERHEAD
    if exact:  # by the server's tokenizer (4 characters a token in the fake), plus the message overhead
        assert stored == [
            ("user", len(text) // 4 + PER_MESSAGE_OVERHEAD),
            ("assistant", len("You said: " + text) // 4 + PER_MESSAGE_OVERHEAD),
        ]
    else:
        assert stored[0] == ("user", estimate)
