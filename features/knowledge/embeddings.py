"""Vectors for texts from the model server's OpenAI-compatible ``/v1/embeddings`` endpoint.

It goes through the same ``AsyncOpenAI`` client as chat calls, so it has the same retry rules (the client's
``max_retries``, with backoff, honouring ``Retry-After``) and the same error translation
(:func:`core.model_client.translate_error`). Texts are sent in batches, a few batches at a time; vectors come
back as one float32 matrix with unit-length rows, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from openai import AsyncOpenAI

from core.errors import ModelRejected
from core.model_client import translate_error

Matrix = npt.NDArray[np.float32]  # as core.knowledge.Matrix

BATCH_SIZE = 64
PARALLEL_BATCHES = 4


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
    ) -> None:
        self.client = client
        self.model = model
        self.batch_size = max(1, batch_size)
        self.base_url = str(client.base_url).rstrip("/")
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
        inputs = [text if text.strip() else "." for text in texts]  # servers refuse empty strings
        async with self._gate:
            try:
                create: Any = self.client.embeddings.create
                response = await create(model=self.model, input=inputs, encoding_format="float")
            except Exception as exc:
                raise translate_error(exc, self.base_url) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(inputs):
            raise ModelRejected(
                f"the embedding model {self.model} returned {len(data)} vectors for {len(inputs)} texts"
            )
        try:
            return np.asarray([item.embedding for item in data], dtype=np.float32)
        except ValueError as exc:
            raise ModelRejected(f"the embedding model {self.model} returned malformed vectors") from exc
