"""Summaries never lose history: every fact of a long conversation is in the summary or in the prompt.

Folding goes oldest first and the summary's mark moves only past what a summary call actually folded, so a
summary outage or a switch of an existing conversation to the summary strategy delays summarising, never
skips messages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.trimming import prompt_budget
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said

FACT = re.compile(r"fact-\d+")
SMALL_WINDOW = {"CHATBOT_MODEL": "gpt-4", "CHATBOT_CONTEXT_TOKENS": 1500, "CHATBOT_MAX_TOKENS": 200}


class Summariser:
    """Plays the model for summary calls (non-streamed, see core/summary.py): like SUMMARY_INSTRUCTIONS asks,
    it merges the new messages into the summary so far, keeping every fact; streamed replies say "noted"."""

    def __init__(self) -> None:
        self.outage = False
        self.calls = 0

    def __call__(self, body: dict[str, Any]) -> str | Reply:
        if body.get("stream"):
            return "noted"
        self.calls += 1
        if self.outage:
            return Reply(status=500, error_message="summary backend down")
        facts = sorted(set(FACT.findall(body["messages"][-1]["content"])), key=lambda f: int(f[5:]))
        return "Facts: " + " ".join(facts)


def fact_message(i: int) -> str:
    return f"fact-{i}: the code for locker {i} is {i * 7919 % 10_000:04d}, please remember it."


def facts_in_last_prompt(fake_model: FakeOpenAI) -> set[str]:
    return set(FACT.findall(" ".join(m["content"] for m in fake_model.last_messages())))


async def test_every_fact_survives_a_summary_outage(fake_model: FakeOpenAI, db_path: Path) -> None:
    summariser = Summariser()
    fake_model.default = summariser
    async with engine_for(
        fake_model.base_url, db_path, CHATBOT_TRIM_STRATEGY="summary", **SMALL_WINDOW
    ) as engine:
        budget = prompt_budget(engine.bot)
        for i in range(120):
            summariser.outage = 30 <= i < 60  # the summary calls fail for 30 turns
            await engine.reply_text(said("console:s", fact_message(i)))
        for i in range(3):  # a few turns more to catch up (at most 3 summary calls a turn)
            await engine.reply_text(said("console:s", f"anything else {i}?"))
            assert (
                sum(engine.counter.message_tokens(m["content"]) for m in fake_model.last_messages()) <= budget
            )
    assert summariser.calls > 0
    missing = {f"fact-{i}" for i in range(120)} - facts_in_last_prompt(fake_model)
    assert not missing, f"lost for good: {sorted(missing, key=lambda f: int(f[5:]))}"


async def test_switching_a_long_conversation_to_summaries_loses_nothing(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    summariser = Summariser()
    fake_model.default = summariser
    async with engine_for(fake_model.base_url, db_path, **SMALL_WINDOW) as engine:  # sliding: drops history
        for i in range(100):  # 200 messages
            await engine.reply_text(said("console:s", fact_message(i)))
    assert summariser.calls == 0
    assert len(facts_in_last_prompt(fake_model)) < 100
    async with engine_for(
        fake_model.base_url, db_path, CHATBOT_TRIM_STRATEGY="summary", **SMALL_WINDOW
    ) as engine:
        for i in range(4):
            await engine.reply_text(said("console:s", f"what do you remember? ({i})"))
    missing = {f"fact-{i}" for i in range(100)} - facts_in_last_prompt(fake_model)
    assert not missing, f"lost for good: {sorted(missing, key=lambda f: int(f[5:]))}"
