"""Vectors for texts from the model server's OpenAI-compatible ``/v1/embeddings`` endpoint.

The client is the chat one, or its own (``CHATBOT_EMBEDDING_BASE_URL`` / ``CHATBOT_EMBEDDING_API_KEY``).
Inputs are cut to the embedding model's limit (``max_input_tokens``). Failures quote the server's own words
with a hint that fits them (a chat-only llama.cpp server, an input too long, an unknown model). Only
transient failures are retried (up to the client's ``max_retries``, with backoff): a 4xx, a 5xx whose
message is known to be deterministic, or a 5xx repeating the same message, is not. Texts are sent in
batches, a few batches at a time; vectors come back as one float32 matrix with unit-length rows, so a dot
product is the cosine similarity.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import openai
from openai import AsyncOpenAI

from core.errors import ModelError, ModelRejected, ModelUnavailable
from core.model_client import server_message, translate_error
from features.knowledge.settings import KnowledgeSettings

log = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float32]  # as core.knowledge.Matrix

BATCH_SIZE = 64
PARALLEL_BATCHES = 4
OPENAI_EMBEDDING_LIMIT = 8191  # tokens of input for text-embedding-3-* and ada-002

NO_EMBEDDINGS = re.compile(
    r"embedding=True|--embeddings?\b|does not support embeddings|not_supported|embeddings? (are )?not enabled",
    re.IGNORECASE,
)
TOO_LONG = re.compile(
    r"too large|too long|maximum context|context length|exceeds?|input length|n_ubatch|batch size",
    re.IGNORECASE,
)


def embedding_error(exc: Exception, base_url: str) -> ModelError:
    """Our error for a failed embeddings call: the server's own words and a hint that fits them."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailable(f"cannot reach the embedding server at {base_url}")
    if not isinstance(exc, openai.APIStatusError):
        return translate_error(exc, base_url)
    said = server_message(exc)
    if NO_EMBEDDINGS.search(said):
        return ModelRejected(
            f"the embedding server said: {said}. This server does not serve embeddings: start it with "
            "--embeddings (llama.cpp) or set CHATBOT_EMBEDDING_BASE_URL to one that does"
        )
    if TOO_LONG.search(said):
        return ModelRejected(
            f"the embedding server said: {said}. An input is longer than the embedding model accepts: lower "
            "CHATBOT_EMBEDDING_MAX_TOKENS (or CHATBOT_CHUNK_TOKENS)"
        )
    if isinstance(exc, openai.NotFoundError):
        return ModelRejected(
            f"the embedding server said: {said}. Set CHATBOT_EMBEDDING_MODEL to a model it serves"
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelRejected(
            "the embedding server rejected the API key (check CHATBOT_EMBEDDING_API_KEY or OPENAI_API_KEY)"
        )
    if exc.status_code >= 500 or exc.status_code == 429:
        return ModelUnavailable(f"the embedding server failed: {said}")
    return ModelRejected(f"the embedding server refused the request: {said}")


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, openai.APIConnectionError):
        return True
    if not isinstance(exc, openai.APIStatusError):
        return False
    if exc.status_code < 500 and exc.status_code not in (408, 409, 429):
        return False
    said = server_message(exc)
    return not (NO_EMBEDDINGS.search(said) or TOO_LONG.search(said))


def cut_to_tokens(text: str, limit: int, count: Callable[[str], int] | None) -> str:
    """``text`` cut to at most ``limit`` tokens by ``count`` (or ~3 characters a token without one)."""
    if count is None:
        return text[: limit * 3]
    tokens = count(text)
    while tokens > limit:
        text = text[: max(1, int(len(text) * limit / tokens * 0.95))]
        tokens = count(text)
    return text


def embedding_client(settings: KnowledgeSettings, chat: AsyncOpenAI | None) -> tuple[AsyncOpenAI, bool]:
    """The client for embeddings and whether it is a client of its own (the caller closes it then): the chat
    client unless ``CHATBOT_EMBEDDING_BASE_URL`` or ``CHATBOT_EMBEDDING_API_KEY`` is set."""
    if chat is not None and not settings.embedding_base_url and settings.embedding_api_key is None:
        return chat, False
    client = AsyncOpenAI(
        base_url=settings.embedding_url(),
        api_key=settings.embedding_key(),
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
    )
    return client, True


def normalise(vectors: Matrix) -> Matrix:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    scaled: Matrix = (vectors / norms).astype(np.float32, copy=False)
    return scaled


class Embedder:
    """Embeds texts with one model on an OpenAI-compatible server."""

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        *,
        batch_size: int = BATCH_SIZE,
        parallel: int = PARALLEL_BATCHES,
        max_input_tokens: int = OPENAI_EMBEDDING_LIMIT,
        count: Callable[[str], int] | None = None,
        retry_delay: float = 0.5,
    ) -> None:
        self.client = client
        self.model = model
        self.batch_size = max(1, batch_size)
        self.base_url = str(client.base_url).rstrip("/")
        self.max_input_tokens = max_input_tokens
        self.count = count
        self.retries = client.max_retries
        self.retry_delay = retry_delay
        self._once = client.with_options(max_retries=0)  # retries are ours: only the transient ones
        self._gate = asyncio.Semaphore(max(1, parallel))

    async def embed(self, texts: Sequence[str]) -> Matrix:
        """One unit-length row per text, in order. Raises :class:`core.errors.ModelError`."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        parts = await asyncio.gather(*(self._batch(batch) for batch in batches))
        widths = {part.shape[1] for part in parts}
        if len(widths) != 1:
            raise ModelRejected(f"the embedding model {self.model} returned vectors of different sizes")
        return normalise(np.concatenate(parts))

    async def _batch(self, texts: Sequence[str]) -> Matrix:
        inputs = [  # servers refuse empty strings
            cut_to_tokens(text, self.max_input_tokens, self.count) if text.strip() else "." for text in texts
        ]
        async with self._gate:
            response = await self._create(inputs)
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(inputs):
            raise ModelRejected(
                f"the embedding model {self.model} returned {len(data)} vectors for {len(inputs)} texts"
            )
        try:
            return np.asarray([item.embedding for item in data], dtype=np.float32)
        except ValueError as exc:
            raise ModelRejected(f"the embedding model {self.model} returned malformed vectors") from exc

    async def _create(self, inputs: list[str]) -> Any:
        last_said: str | None = None
        for attempt in range(self.retries + 1):
            try:
                create: Any = self._once.embeddings.create
                return await create(model=self.model, input=inputs, encoding_format="float")
            except Exception as exc:
                said = server_message(exc) if isinstance(exc, openai.APIError) else repr(exc)
                if attempt == self.retries or not _retryable(exc) or said == last_said:
                    raise embedding_error(exc, self.base_url) from exc
                last_said = said
                log.warning("embeddings call failed (%s); retrying", said)
                await asyncio.sleep(self.retry_delay * 2**attempt)
        raise AssertionError("unreachable")
