"""Trimming: the prompt always fits, the system prompt always leads, each strategy does what it says."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from core import conversation as conv
from core import prompt
from core.summary import SUMMARY_HEADING
from core.tokens import PER_MESSAGE_OVERHEAD, REPLY_PRIMING, TokenCounter
from core.trimming import prompt_budget
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said


def prompt_tokens(messages: list[dict[str, Any]], counter: TokenCounter) -> int:
    return sum(counter.count(m["content"]) + PER_MESSAGE_OVERHEAD for m in messages) + REPLY_PRIMING


async def test_a_thousand_turns_never_exceed_the_budget(fake_model: FakeOpenAI, db_path: Path) -> None:
    rng = random.Random(7)
    vocabulary = "orbit plan price team board task sprint invoice login export calendar sync".split()
    exact = TokenCounter("gpt-4", allow_download=False)
    assert exact.exact

    def answer(body: dict[str, Any]) -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(rng.randint(5, 120)))

    fake_model.default = answer
    fake_model.context_limit = 1024 * 4  # the fake counts ~4 chars a token; the real limit is checked below
    notices = 0
    async with engine_for(
        fake_model.base_url,
        db_path,
        CHATBOT_MODEL="gpt-4",
        CHATBOT_CONTEXT_TOKENS=1024,
        CHATBOT_MAX_TOKENS=200,
    ) as engine:
        budget = prompt_budget(engine.bot)
        system = engine.bot.system_prompt
        for turn in range(1000):
            text = f"turn {turn}: " + " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 150)))
            reply = await engine.reply_text(said("console:long", text))
            notices += reply.count(prompt.NOTICE_DROPPED.strip())
            sent = fake_model.last_messages()
            assert sent[0] == {"role": "system", "content": system}
            assert sent[-1] == {"role": "user", "content": text}
            assert prompt_tokens(sent, exact) <= budget, f"turn {turn} over budget"
            assert prompt_tokens(sent, exact) + 200 <= 1024
    assert notices == 1  # told once that older messages were dropped
    assert len(fake_model.chat_requests) == 1000


async def test_fixed_turn_limit_keeps_the_last_n_turns(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(
        fake_model.base_url, db_path, CHATBOT_TRIM_STRATEGY="turns", CHATBOT_MAX_TURNS=3
    ) as engine:
        for i in range(8):
            await engine.reply_text(said("console:a", f"q{i}"))
    contents = [m["content"] for m in fake_model.last_messages()[1:]]
    assert contents == ["q4", "You said: q4", "q5", "You said: q5", "q6", "You said: q6", "q7"]


async def test_summary_strategy_folds_old_messages_incrementally(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    summaries: list[dict[str, Any]] = []

    def answer(body: dict[str, Any]) -> str:
        if not body.get("stream"):
            summaries.append(body)
            return f"SUMMARY v{len(summaries)}: the user asked many things."
        return "an answer " + "with many words " * 15

    fake_model.default = answer
    replies = []
    async with engine_for(
        fake_model.base_url,
        db_path,
        CHATBOT_MODEL="gpt-4",
        CHATBOT_CONTEXT_TOKENS=1500,
        CHATBOT_MAX_TOKENS=200,
        CHATBOT_TRIM_STRATEGY="summary",
    ) as engine:
        budget = prompt_budget(engine.bot)
        for i in range(40):
            replies.append(await engine.reply_text(said("console:s", f"question {i} " + "about orbit " * 10)))
            assert prompt_tokens(fake_model.last_messages(), engine.counter) <= budget
    assert len(summaries) >= 2
    first, second = summaries[0]["messages"][1]["content"], summaries[1]["messages"][1]["content"]
    assert "question 0 " in first
    assert "SUMMARY v1" in second and "question 0 " not in second  # incremental: old summary + new messages
    system = fake_model.last_messages()[0]["content"]
    assert SUMMARY_HEADING in system and f"SUMMARY v{len(summaries)}" in system
    assert sum(r.count(prompt.NOTICE_SUMMARISED.strip()) for r in replies) == 1


async def test_summary_failure_falls_back_to_dropping(fake_model: FakeOpenAI, db_path: Path) -> None:
    def answer(body: dict[str, Any]) -> str | Reply:
        return "reply " * 30 if body.get("stream") else Reply(status=500)

    fake_model.default = answer
    async with engine_for(
        fake_model.base_url,
        db_path,
        CHATBOT_CONTEXT_TOKENS=1200,
        CHATBOT_MAX_TOKENS=200,
        CHATBOT_TRIM_STRATEGY="summary",
    ) as engine:
        replies = [await engine.reply_text(said("console:f", f"q{i} " + "words " * 30)) for i in range(25)]
        budget = prompt_budget(engine.bot)
        assert prompt_tokens(fake_model.last_messages(), engine.counter) <= budget
    assert not any(conv.UNAVAILABLE in r for r in replies)
    assert any(not r.get("stream") for r in fake_model.requests)  # summaries were tried ...
    assert sum(r.count(prompt.NOTICE_DROPPED.strip()) for r in replies) == 1  # ... and history was dropped
