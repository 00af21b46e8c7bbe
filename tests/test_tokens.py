"""Token counting offline: exact when bundled, approximate with one warning otherwise, never a crash."""

from __future__ import annotations

import logging

import pytest

from core import tokens
from core.tokens import TokenCounter, estimate_tokens


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
