"""Token counting offline: exact when bundled, approximate with one warning otherwise, never a crash."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core import tokens
from core.tokens import REPLY_PRIMING, TokenCounter, estimate_tokens
from tests.fakes.openai_server import FakeOpenAI, estimate_prompt_tokens
from tests.support.engines import engine_for, said


def test_cl100k_models_count_exactly_offline() -> None:
    counter = TokenCounter("gpt-4", allow_download=False)
    assert counter.exact
    assert counter.count("hello world") == 2


def test_o200k_model_without_download_falls_back_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    tokens._warned.clear()
    tokens.load_encoding.cache_clear()
    caplog.set_level(logging.WARNING, logger="core.tokens")
    first = TokenCounter("gpt-4o-mini", allow_download=False)
    second = TokenCounter("gpt-4o", allow_download=False)
    assert not first.exact and not second.exact
    assert first.count("hello world") >= 2  # inflated approximation, never under
    warnings = [r for r in caplog.records if "o200k_base" in r.getMessage()]
    assert len(warnings) == 1


def test_unknown_models_are_approximated(caplog: pytest.LogCaptureFixture) -> None:
    counter = TokenCounter("qwen2.5:7b-instruct", allow_download=False)
    assert not counter.exact
    assert counter.count("a" * 100) > 0


def test_estimate_without_any_tokeniser_is_conservative() -> None:
    exact = TokenCounter("gpt-4", allow_download=False)
    for text in ["plain english words in a sentence", "日本語のテキストです", "emoji 🎉🎉🎉", "x" * 50]:
        assert estimate_tokens(text) >= exact.count(text)


def test_counter_survives_a_tokeniser_that_cannot_load(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens.load_encoding.cache_clear()
    monkeypatch.setattr(tokens, "load_encoding", lambda name, allow: (None, False))
    counter = TokenCounter("gpt-4", allow_download=False)
    assert counter.count("some text here") == estimate_tokens("some text here")


def test_usage_moves_the_correction() -> None:
    counter = TokenCounter("llama3", allow_download=False)
    for _ in range(10):
        counter.observe_usage(100, 150)
    assert counter.correction == pytest.approx(1.5, rel=0.05)
    assert counter.budgeted(100) >= 150


async def test_correction_learns_the_whole_error_of_our_estimate(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    """The server counts twice what we estimate: within a few turns budgets use the real ratio, not its
    square root (the correction must compare the server's count with our raw estimate, not a corrected one)."""
    fake_model.usage_factor = 2.0
    async with engine_for(fake_model.base_url, db_path, CHATBOT_MODEL="llama3.1:8b") as engine:
        counter = engine.counter
        for i in range(6):
            await engine.reply_text(said("console:a", f"message number {i} with some words in it"))
        sent = fake_model.last_messages()
        ours = sum(counter.message_tokens(m["content"]) for m in sent) + REPLY_PRIMING
        real_ratio = int(estimate_prompt_tokens(sent) * 2.0) / ours
        assert counter.correction == pytest.approx(real_ratio, rel=0.05)
