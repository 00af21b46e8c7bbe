"""What every knowledge store backend shares for search: a question's significant words, the cut of words
too common to be worth a keyword query, and bringing a bot's in-memory :class:`VectorIndex` up to date.

The SQLite store (:mod:`core.sqlite_knowledge`) and the PostgreSQL store (:mod:`core.postgres_knowledge`)
read their rows differently but rank the same way: a NumPy scan over the same index, built here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.knowledge import Matrix, NewDocument, VectorIndex
from core.store import Row

log = logging.getLogger(__name__)

STOPWORDS = frozenset(
    """a about above after again all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he
    her here hers him his how i if in into is it its itself just me more most my no nor not now of off on
    once only or other our ours out over own same she should so some such than that the their theirs them
    then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself please tell know want need get got let like
    thanks thank hi hello hey ok okay also really much many""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_TERMS = 24
# A word found in more passages than this is left out of keyword queries: BM25 gives it almost no weight
# (its IDF is near zero), yet scoring every passage it matches is what makes a large index slow.
COMMON_SHARE = 0.1
COMMON_FLOOR = 1000


def query_terms(text: str) -> list[str]:
    """The text's significant words, lower-cased, without stop words or repeats."""
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        if len(word) > 1 and word not in STOPWORDS and word not in terms:
            terms.append(word)
    return terms[:MAX_QUERY_TERMS]


def common_limit(passages: int) -> float:
    """How many passages a word may be in and still count in a keyword query (see ``COMMON_SHARE``)."""
    return max(COMMON_FLOOR, COMMON_SHARE * passages)


def refreshed_index(
    bot: str, old: VectorIndex, current: Sequence[int], added: Sequence[tuple[int, bytes]]
) -> VectorIndex:
    """``old`` without the chunks no longer in ``current`` (every chunk id of the bot, ascending), plus the
    ``added`` ones (ids above old's last, with their float32 little-endian vectors).

    The vector size of the index, or else of the most recent ingest, decides: passages of another size
    (embedded by another model) stay out, with a warning.
    """
    keep = np.isin(old.ids, np.asarray(current, dtype=np.int64), assume_unique=True)
    kept = bool(keep.any())
    width = old.dimensions if kept else (len(added[-1][1]) // 4 if added else 0)
    fitting = [(chunk_id, blob) for chunk_id, blob in added if len(blob) == width * 4]
    skipped = len(added) - len(fitting)
    filled = len(fitting)
    new = np.frombuffer(b"".join(blob for _, blob in fitting), dtype="<f4").astype(np.float32)
    new = new.reshape(filled, width)
    new_ids = [chunk_id for chunk_id, _ in fitting]
    if skipped:
        log.warning(
            "%s: %d passages were embedded by another model (their vector size differs), so only "
            "keywords find them; re-ingest their files",
            bot,
            skipped,
        )
    ids = np.concatenate([old.ids[keep], np.asarray(new_ids, dtype=np.int64)])
    matrix = np.concatenate([old.matrix[keep], new]) if kept else new
    return VectorIndex(ids, np.ascontiguousarray(matrix))


def vectors_of(blobs: Sequence[bytes]) -> Matrix:
    """Stored float32 vectors as one matrix (no columns when their sizes differ), for an export."""
    widths = {len(blob) for blob in blobs}
    if len(widths) != 1:
        return np.zeros((len(blobs), 0), dtype=np.float32)
    return np.stack([np.frombuffer(blob, dtype="<f4") for blob in blobs]).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Passage:
    """A stored passage read back for an export (a :class:`core.knowledge.PassageText`)."""

    source: str
    section: str
    text: str
    tokens: int


CHUNK_COLUMNS = "document_id, bot, source, section, text, tokens, embedding"
"""The ``knowledge_chunks`` columns of :func:`chunk_rows`, in its order."""


def chunk_rows(document_id: int | None, bot: str, doc: NewDocument) -> list[tuple[object, ...]]:
    """The ``knowledge_chunks`` rows of a document being ingested (vectors stored as little-endian float32)."""
    vectors = np.ascontiguousarray(doc.vectors, dtype="<f4")
    return [
        (document_id, bot, c.source, c.section, c.text, c.tokens, vectors[i].tobytes())
        for i, c in enumerate(doc.chunks)
    ]


def exported_document(
    path: str, source: str, content_hash: str, recipe: str, rows: Sequence[Row]
) -> NewDocument:
    """A stored document read back for an export, from its ``(source, section, text, tokens, embedding)``
    chunk rows in order."""
    chunks = [Passage(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]
    return NewDocument(path, source, content_hash, recipe, chunks, vectors_of([bytes(r[4]) for r in rows]))
