""":class:`core.store.KnowledgeStore` in PostgreSQL: the store's pool, tables created by its migrations.

Tables (:data:`core.postgres_migrations.PG_MIGRATIONS` 6)::

    knowledge_documents  one row per ingested file and bot: path, source name, content hash, recipe
    knowledge_chunks     the passages: bot, source, section, text, tokens, embedding (float32 BYTEA), and
                         ``words``, a generated tsvector (section weight A, text B, file name C), GIN-indexed
    knowledge_versions   a counter per bot, bumped by every change, so every worker notices an ingest

Vector search is the same NumPy scan as SQLite's (:mod:`core.knowledge_search`): the bot's vectors are
loaded once per worker and brought up to date when the bot's version changes. Keyword search is
PostgreSQL's full text search (English stemming, ``ts_rank`` with the section counting double and the file
name half, like SQLite's BM25 weights), with the same significant words and the same cut of common ones.
pgvector would move the scan into the server; it is not installable here (docs/storage.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

from core.knowledge import DocumentInfo, NewDocument, StoredChunk, VectorIndex, empty_index
from core.knowledge_search import (
    CHUNK_COLUMNS,
    chunk_rows,
    common_limit,
    exported_document,
    query_terms,
    refreshed_index,
)
from core.postgres_connection import Connection, SharedPool, row_count

log = logging.getLogger(__name__)

# ts_rank's weights for D, C, B, A: file names (C) half of a passage's text (B), section titles (A) double.
RANK_WEIGHTS = [0.1, 0.25, 0.5, 1.0]
WORDS_QUERY = "websearch_to_tsquery('english', $1)"  # never a syntax error, whatever the words


def any_of(terms: Sequence[str]) -> str:
    """A web search query matching any of the terms (``pro or plan``), or ""."""
    return " or ".join(terms)


class PostgresKnowledge:
    """Documents, passages, their vectors and a keyword index, per bot (``PostgresStore.knowledge``)."""

    def __init__(self, shared: SharedPool) -> None:
        self._shared = shared
        self._load_lock = asyncio.Lock()
        self._indexes: dict[str, tuple[int, VectorIndex]] = {}
        self._document_counts: dict[str, int] = {}  # term -> passages containing it, all bots
        self._passages = -1  # passages in the keyword index, all bots; -1: not counted yet

    def clear_caches(self) -> None:
        """Drop the loaded vector indexes (the store closed)."""
        self._indexes.clear()
        self._forget_counts()

    def _forget_counts(self) -> None:
        self._document_counts.clear()
        self._passages = -1

    # Documents -----------------------------------------------------------------------------------------

    async def bots(self) -> list[str]:
        rows = await self._shared.fetch("SELECT DISTINCT bot FROM knowledge_documents ORDER BY bot")
        return [str(r[0]) for r in rows]

    async def documents(self, bot: str) -> list[DocumentInfo]:
        rows = await self._shared.fetch(
            "SELECT path, source, content_hash, recipe, chunks, tokens, ingested_at "
            "FROM knowledge_documents WHERE bot = $1 ORDER BY source, path",
            bot,
        )
        return [DocumentInfo(str(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4], r[5], r[6]) for r in rows]

    async def chunk_count(self, bot: str) -> int:
        return int(await self._shared.fetchval("SELECT count(*) FROM knowledge_chunks WHERE bot = $1", bot))

    async def write_documents(self, bot: str, documents: Iterable[NewDocument]) -> None:
        """Add or replace documents (their old passages go) in one transaction."""
        now = time.time()
        async with self._shared.transaction() as db:
            for doc in documents:
                await db.execute(
                    "DELETE FROM knowledge_documents WHERE bot = $1 AND path = $2", bot, doc.path
                )
                document_id = await db.fetchval(
                    "INSERT INTO knowledge_documents "
                    "(bot, path, source, content_hash, recipe, chunks, tokens, ingested_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    bot,
                    doc.path,
                    doc.source,
                    doc.content_hash,
                    doc.recipe,
                    len(doc.chunks),
                    sum(c.tokens for c in doc.chunks),
                    now,
                )
                await db.executemany(
                    f"INSERT INTO knowledge_chunks ({CHUNK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    chunk_rows(document_id, bot, doc),
                )
            await self._bump(db, bot)

    async def remove_documents(self, bot: str, paths: Iterable[str]) -> int:
        """Forget documents and their passages; return how many went."""
        removed = 0
        async with self._shared.transaction() as db:
            for path in paths:
                status = await db.execute(
                    "DELETE FROM knowledge_documents WHERE bot = $1 AND path = $2", bot, path
                )
                removed += row_count(status)
            if removed:
                await self._bump(db, bot)
        return removed

    async def export_documents(self, bot: str) -> list[NewDocument]:
        documents = await self._shared.fetch(
            "SELECT id, path, source, content_hash, recipe FROM knowledge_documents WHERE bot = $1 ORDER BY id",
            bot,
        )
        exported = []
        for document_id, path, source, content_hash, recipe in documents:
            rows = await self._shared.fetch(
                "SELECT source, section, text, tokens, embedding FROM knowledge_chunks "
                "WHERE document_id = $1 ORDER BY id",
                document_id,
            )
            exported.append(exported_document(str(path), str(source), str(content_hash), str(recipe), rows))
        return exported

    @staticmethod
    async def _bump(db: Connection, bot: str) -> None:
        await db.execute(
            "INSERT INTO knowledge_versions (bot, version) VALUES ($1, 1) "
            "ON CONFLICT (bot) DO UPDATE SET version = knowledge_versions.version + 1",
            bot,
        )

    async def version(self, bot: str) -> int:
        found = await self._shared.fetchval("SELECT version FROM knowledge_versions WHERE bot = $1", bot)
        return int(found) if found is not None else 0

    # Search --------------------------------------------------------------------------------------------

    async def vectors(self, bot: str) -> VectorIndex:
        """The bot's vector index, brought up to date if anything was ingested since it was loaded."""
        version = await self.version(bot)
        cached = self._indexes.get(bot)
        if cached is not None and cached[0] == version:
            return cached[1]
        async with self._load_lock:
            cached = self._indexes.get(bot)
            if cached is not None and cached[0] == version:
                return cached[1]
            self._forget_counts()
            started = time.perf_counter()
            old = cached[1] if cached else empty_index()
            last = int(old.ids[-1]) if len(old) else 0
            # One statement, so one snapshot of the ids and the new vectors; loaded vectors are not re-read.
            rows = await self._shared.fetch(
                "SELECT id, CASE WHEN id > $1 THEN embedding END FROM knowledge_chunks "
                "WHERE bot = $2 ORDER BY id",
                last,
                bot,
            )
            current = [int(r[0]) for r in rows]
            added = [(int(r[0]), bytes(r[1])) for r in rows if r[1] is not None]
            index = refreshed_index(bot, old, current, added)
            log.info(
                "%s: knowledge vectors loaded (%d passages, %d new, %.0f ms)",
                bot,
                len(index),
                len(added),
                (time.perf_counter() - started) * 1000,
            )
            self._indexes[bot] = (version, index)
            return index

    async def keyword_search(self, bot: str, text: str, limit: int) -> list[tuple[int, float]]:
        """Passages matching the text's significant words, best first, as ``(chunk id, rank > 0)``."""
        query = any_of(await self._distinctive(query_terms(text)))
        if not query:
            return []
        rows = await self._shared.fetch(
            f"SELECT id, ts_rank($2::float4[], words, {WORDS_QUERY}) AS score FROM knowledge_chunks "
            f"WHERE words @@ {WORDS_QUERY} AND bot = $3 ORDER BY score DESC, id LIMIT $4",
            query,
            RANK_WEIGHTS,
            bot,
            limit,
        )
        return [(int(r[0]), float(r[1])) for r in rows if r[1] > 0]

    async def _distinctive(self, terms: list[str]) -> list[str]:
        """The terms that are not in too many passages (counts cached until the next ingest)."""
        if not terms:
            return []
        if self._passages < 0:
            self._passages = int(await self._shared.fetchval("SELECT count(*) FROM knowledge_chunks"))
        limit = common_limit(self._passages)
        if self._passages <= limit:
            return terms  # a small index: every word may count, and it costs nothing
        for term in terms:
            if term not in self._document_counts:
                self._document_counts[term] = int(
                    await self._shared.fetchval(
                        f"SELECT count(*) FROM knowledge_chunks WHERE words @@ {WORDS_QUERY}", term
                    )
                )
        return [term for term in terms if self._document_counts[term] <= limit]

    async def chunks(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        if not chunk_ids:
            return {}
        rows = await self._shared.fetch(
            "SELECT id, source, section, text, tokens FROM knowledge_chunks WHERE id = ANY($1::bigint[])",
            list(chunk_ids),
        )
        return {int(r[0]): StoredChunk(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows}
