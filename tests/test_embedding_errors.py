"""Issue 13: embeddings on the servers people run. A chat-only server, a too-long input, a separate server.

The server's own words reach the user with a hint that fits them; deterministic failures are not retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from core.errors import ModelRejected
from features.knowledge.embeddings import Embedder
from tests.fakes.openai_server import FakeOpenAI
from tests.support.cli import run_chatbot


@pytest.fixture
async def chat_only() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI(dialect="llamacpp-python", serves_embeddings=False)
    await server.start()
    yield server
    await server.stop()


def embeddings_calls(server: FakeOpenAI) -> int:
    return len([r for r in server.requests if "input" in r])


async def test_a_chat_only_server_is_named_as_such_not_as_a_server_that_is_down(
    chat_only: FakeOpenAI, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.md").write_text("# FAQ\n\nOrbit is a task app.\n")
    env = {"OPENAI_BASE_URL": chat_only.base_url, "OPENAI_API_KEY": "sk-local", "CHATBOT_MAX_RETRIES": "3"}
    code, out, err = await run_chatbot(["ingest", "--bot", "orbit", str(docs)], b"", tmp_path, env)
    shown = out + err
    assert code != 0
    assert "Llama model must be created with embedding=True" in shown  # the server's own words
    assert "start it with --embeddings" in shown and "CHATBOT_EMBEDDING_BASE_URL" in shown
    assert "Is the server running" not in shown
    assert embeddings_calls(chat_only) == 1  # a deterministic 500 is not retried


@pytest.mark.parametrize("dialect", ["llamacpp-python", "llama-server"])
async def test_no_embeddings_error_gives_the_hint_and_is_not_retried(dialect: str) -> None:
    server = FakeOpenAI(dialect=dialect, serves_embeddings=False)
    await server.start()
    client = AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=3)
    try:
        with pytest.raises(ModelRejected, match="does not serve embeddings"):
            await Embedder(client, "m", retry_delay=0).embed(["hello"])
    finally:
        await client.close()
        await server.stop()
    assert embeddings_calls(server) == 1


async def test_a_too_long_input_is_not_retried_and_says_which_setting_to_lower() -> None:
    server = FakeOpenAI(dialect="llama-server", embedding_token_limit=50)
    await server.start()
    client = AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=3)
    try:
        with pytest.raises(ModelRejected, match="CHATBOT_EMBEDDING_MAX_TOKENS") as raised:
            await Embedder(client, "m", retry_delay=0).embed(["word " * 400])
    finally:
        await client.close()
        await server.stop()
    assert "input is too large to process" in str(raised.value)
    assert embeddings_calls(server) == 1


async def test_inputs_are_cut_to_the_embedding_models_limit() -> None:
    server = FakeOpenAI(dialect="llama-server", embedding_token_limit=50)
    await server.start()
    client = AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    try:
        vectors = await Embedder(client, "m", max_input_tokens=40, count=lambda text: len(text) // 4).embed(
            ["word " * 400, "short"]
        )
    finally:
        await client.close()
        await server.stop()
    assert vectors.shape[0] == 2
    assert len(server.requests[-1]["input"][0]) <= 160


async def test_a_transient_500_repeating_the_same_message_is_tried_twice_not_four_times(
    fake_model: FakeOpenAI,
) -> None:
    fake_model.embedding_failures = 10
    client = AsyncOpenAI(base_url=fake_model.base_url, api_key="x", max_retries=3)
    try:
        with pytest.raises(Exception, match="embedding backend hiccup"):
            await Embedder(client, "m", retry_delay=0).embed(["hello"])
    finally:
        await client.close()
    assert embeddings_calls(fake_model) == 2


async def test_embeddings_can_use_their_own_server_and_key(
    chat_only: FakeOpenAI, fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.md").write_text("# FAQ\n\nOrbit is a task app.\n")
    env = {
        "OPENAI_BASE_URL": chat_only.base_url,
        "OPENAI_API_KEY": "sk-chat",
        "CHATBOT_EMBEDDING_BASE_URL": fake_model.base_url,
        "CHATBOT_EMBEDDING_API_KEY": "sk-embed",
    }
    code, out, err = await run_chatbot(["ingest", "--bot", "orbit", str(docs)], b"", tmp_path, env)
    assert code == 0, out + err
    assert embeddings_calls(chat_only) == 0
    assert embeddings_calls(fake_model) >= 1
    assert set(fake_model.embedding_keys) == {"sk-embed"}
