"""The knowledge base's records and the in-memory vector index, shared by every knowledge store backend.

A store (:class:`core.store.KnowledgeStore`) keeps, per bot, ingested documents, their passages with one
embedding vector each, and a version counter that every change bumps, so running bots notice an ingest.
Vector search is a NumPy scan over a :class:`VectorIndex` the store loads per bot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


class PassageText(Protocol):
    """What a store needs of a passage to write it (``features.knowledge.chunking.Chunk`` is one)."""

    @property
    def source(self) -> str: ...

    @property
    def section(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def tokens(self) -> int: ...


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """What the knowledge base knows about one ingested file."""

    path: str
    source: str
    content_hash: str
    recipe: str
    chunks: int
    tokens: int
    ingested_at: float


@dataclass(frozen=True, slots=True)
class StoredChunk:
    id: int
    source: str
    section: str
    text: str
    tokens: int


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A file to (re)write: its identity, its passages and their vectors (one row per passage)."""

    path: str
    source: str
    content_hash: str
    recipe: str
    chunks: Sequence[PassageText]
    vectors: Matrix


class VectorIndex:
    """One bot's chunk vectors as a matrix, for a brute-force cosine scan."""

    def __init__(self, ids: Ids, matrix: Matrix) -> None:
        self.ids = ids
        self.matrix = matrix

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def dimensions(self) -> int:
        return int(self.matrix.shape[1]) if self.matrix.ndim == 2 else 0

    def scores(self, queries: Matrix) -> npt.NDArray[np.float32]:
        """For each chunk, its best cosine similarity to any of the (unit-length) query vectors."""
        if len(self) == 0:
            return np.zeros(0, dtype=np.float32)
        # One matrix-vector product per query: BLAS is much faster at those than at a thin matrix product.
        best: npt.NDArray[np.float32] = self.matrix @ queries[0]
        for query in queries[1:]:
            best = np.maximum(best, self.matrix @ query)
        return best

    def top(self, queries: Matrix, limit: int) -> list[tuple[int, float]]:
        """The ``limit`` best chunks as ``(chunk id, cosine)``, best first."""
        scores = self.scores(queries)
        if scores.shape[0] == 0:
            return []
        limit = min(limit, scores.shape[0])
        best = np.argpartition(-scores, limit - 1)[:limit]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in best]

    def cosine_of(self, chunk_ids: Sequence[int], queries: Matrix) -> dict[int, float]:
        """The cosine of particular chunks (keyword hits the vector side did not bring)."""
        if len(self) == 0 or not chunk_ids:
            return {}
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        rows = np.searchsorted(self.ids, wanted)
        rows = np.clip(rows, 0, len(self) - 1)
        found = self.ids[rows] == wanted
        if not found.any():
            return {}
        product = self.matrix[rows[found]] @ queries.T
        values = product.max(axis=1)
        return {int(i): float(v) for i, v in zip(wanted[found], values, strict=True)}


def empty_index() -> VectorIndex:
    return VectorIndex(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))
