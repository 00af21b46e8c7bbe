"""Small builders shared by the contract tests."""

from __future__ import annotations

import numpy as np

from core.knowledge import NewDocument
from core.store import TurnRecord
from features.knowledge.chunking import Chunk


def turn(
    session: str,
    user: str = "",
    *,
    text: str = "hi",
    started_at: float = 1000.0,
    prompt: int = 10,
    completion: int = 5,
    status: str = "ok",
    bot: str = "orbit",
    platform: str = "telegram",
) -> TurnRecord:
    return TurnRecord(
        session, text, "reply", started_at, 120.0, prompt, completion, status, "m", user, bot, platform
    )


def document(path: str, *texts: str, width: int = 3, seed: int = 0) -> NewDocument:
    """A document with one passage per text and unit vectors of ``width`` dimensions."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(texts), width)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    source = path.rsplit("/", 1)[-1]
    chunks = [Chunk(source, f"Section {i}", text, len(text.split())) for i, text in enumerate(texts)]
    return NewDocument(path, source, f"hash-{path}", "recipe", chunks, vectors)
