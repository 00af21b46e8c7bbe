"""Issue 13's conversation-level test: the same 30-turn conversation, with the window deliberately too small,
against every server family the fake reproduces (tests/fakes/openai_server.py): every turn answered, and no
turn stored complete that the user did not see complete.

The bot is told the window is 4,096 tokens (``CHATBOT_CONTEXT_TOKENS``); the server's real one is 1,024.
Without window discovery every server but Ollama (which truncates silently) overflows and the engine must
recover; with discovery the servers that report their window (vLLM, llama.cpp, LM Studio) are budgeted
right from the start. Every seventh reply is cut at the length limit: shown with a notice, stored complete.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.model_outcomes import LENGTH_NOTICE
from core.prompt import NOTICE_DROPPED, NOTICE_SUMMARISED
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said

REAL_WINDOW = 1024
TOLD_WINDOW = 4096
TURNS = 30
WORDS = ["filler", "internationalization", "text", "counterrevolutionaries", "a", "établissement", "日本語"]

SERVERS: list[tuple[str, dict[str, Any], bool]] = [
    (dialect, {}, discover)
    for dialect in ("openai", "vllm", "llamacpp-python", "llama-server", "ollama", "lmstudio")
    for discover in (False, True)
]
# Several llama-server slots sharing one cache: the overflow is an error inside the stream, without numbers,
# so only discovery (/props, on by default) can tell the engine the real window; told 4,096 without it, even
# a lone max_tokens of 1,024 does not fit a 1,024 window, and halving the prompt cannot fix that.
SERVERS.append(("llama-server", {"slot_overflow": True}, True))
REPORTS_OVERFLOW_WINDOW = {"openai", "vllm", "llamacpp-python", "lmstudio", "llama-server"}


def question(i: int) -> str:
    """A question of 150-400 characters, its words varied so that our token estimate is sometimes off."""
    words = [WORDS[(i * 3 + k) % len(WORDS)] for k in range(20 + (i * 7) % 30)]
    return f"question {i}: " + " ".join(words)


def answer(body: dict[str, Any]) -> Reply:
    """The fake's reply: an echo of the question, cut at the length limit every seventh turn."""
    asked = str(body["messages"][-1]["content"])
    number = int(asked.split(":", 1)[0].removeprefix("question ")) if asked.startswith("question ") else 0
    return Reply(text=f"You said: {asked}", finish_reason="length" if number % 7 == 6 else "stop")


def model_part(shown: str) -> tuple[str, bool]:
    """What the user saw of the model's own text (engine notices taken off), and whether it was cut."""
    for notice in (NOTICE_DROPPED, NOTICE_SUMMARISED):
        shown = shown.removeprefix(notice)
    cut = shown.endswith(LENGTH_NOTICE)
    return shown.removesuffix(LENGTH_NOTICE), cut


def messages(db_path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT role, content, complete FROM messages ORDER BY id").fetchall()


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[FakeOpenAI]:
    dialect, knobs, _ = request.param
    fake = FakeOpenAI(dialect=dialect, context_limit=REAL_WINDOW, default=answer, **knobs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def _id(case: tuple[str, dict[str, Any], bool]) -> str:
    dialect, knobs, discover = case
    return dialect + ("-shared-slots" if knobs else "") + ("-discovered" if discover else "-told-4096")


@pytest.mark.parametrize("server", SERVERS, indirect=True, ids=[_id(case) for case in SERVERS])
async def test_a_long_conversation_in_a_window_too_small_is_answered_on_every_server(
    server: FakeOpenAI, db_path: Path, request: pytest.FixtureRequest
) -> None:
    discover = request.node.callspec.params["server"][2]
    shown: list[str] = []
    async with engine_for(
        server.base_url,
        db_path,
        CHATBOT_MODEL="local-model",
        CHATBOT_CONTEXT_TOKENS=TOLD_WINDOW,
        CHATBOT_DISCOVER_WINDOW=discover,
    ) as engine:
        for i in range(TURNS):
            shown.append(await engine.reply_text(said("console:a", question(i))))
        learned = engine.bot.window

    for i, reply in enumerate(shown):  # every turn answered, as itself, never with an error text
        text, cut = model_part(reply)
        assert text == f"You said: {question(i)}", (i, reply)
        assert cut == (i % 7 == 6), (i, reply)

    stored = messages(db_path)
    assert [role for role, _, _ in stored] == ["user", "assistant"] * TURNS
    for i in range(TURNS):  # what is stored complete is exactly what the user saw complete
        (_, asked, asked_complete), (_, replied, replied_complete) = stored[2 * i], stored[2 * i + 1]
        assert (asked, asked_complete) == (question(i), 1)
        assert (replied, replied_complete) == (model_part(shown[i])[0], 1)

    overflowed = len(server.chat_requests) > TURNS
    if server.dialect == "ollama":
        assert not overflowed  # it never reports an overflow: it truncates silently
    elif not discover:
        assert overflowed  # the recovery path really ran
        if server.dialect in REPORTS_OVERFLOW_WINDOW and not server.slot_overflow:
            assert learned == REAL_WINDOW  # adopted from the overflow's numbers
