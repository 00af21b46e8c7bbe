""":class:`core.store.KnowledgeStore` in SQLite: the store's connection, tables created by its migrations.

Tables::

    knowledge_documents  one row per ingested file and bot: path, source name, content hash, recipe
    knowledge_chunks     the passages: bot, source, section, text, tokens, embedding (float32 BLOB)
    knowledge_fts        FTS5 index over source, section and text (kept in step by triggers)
    knowledge_versions   a counter per bot, bumped by every change, so running bots notice an ingest

Vector search is a NumPy scan over a float32 matrix per bot, loaded once and brought up to date
incrementally when the bot's version changes (chunk ids only grow, so new rows are ``id > last``).
At 100,000 chunks of 1,536 dimensions the scan is tens of milliseconds; see ``bench/knowledge_bench.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager

import aiosqlite

from core.knowledge import DocumentInfo, NewDocument, StoredChunk, VectorIndex, empty_index
from core.knowledge_search import (
    CHUNK_COLUMNS,
    chunk_rows,
    common_limit,
    exported_document,
    query_terms,
    refreshed_index,
)
from core.sqlite_connection import SharedConnection

log = logging.getLogger(__name__)

# Column weights for bm25(): a word in a section title counts double, in a file name half.
BM25_WEIGHTS = "0.5, 2.0, 1.0"


def fts_query(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of the terms (``"pro" OR "plan"``), or ""."""
    return " OR ".join(f'"{term}"' for term in terms)


class SQLiteKnowledge:
    """Documents, passages, their vectors and a keyword index, per bot (``SQLiteStore.knowledge``)."""

    def __init__(self, shared: SharedConnection) -> None:
        self._shared = shared
        self._load_lock = asyncio.Lock()
        self._indexes: dict[str, tuple[int, VectorIndex]] = {}
        self._document_counts: dict[str, int] = {}  # term -> passages containing it, all bots
        self._passages = -1  # passages in the keyword index, all bots; -1: not counted yet

    @property
    def db(self) -> aiosqlite.Connection:
        return self._shared.db

    def clear_caches(self) -> None:
        """Drop the loaded vector indexes (the store closed)."""
        self._indexes.clear()
        self._forget_counts()

    def _forget_counts(self) -> None:
        self._document_counts.clear()
        self._passages = -1

    def _transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        return self._shared.transaction()

    # Documents -----------------------------------------------------------------------------------------

    async def bots(self) -> list[str]:
        async with self.db.execute("SELECT DISTINCT bot FROM knowledge_documents ORDER BY bot") as cursor:
            rows = await cursor.fetchall()
        return [str(r[0]) for r in rows]

    async def documents(self, bot: str) -> list[DocumentInfo]:
        """The bot's ingested files, by source name."""
        async with self.db.execute(
            "SELECT path, source, content_hash, recipe, chunks, tokens, ingested_at "
            "FROM knowledge_documents WHERE bot = ? ORDER BY source, path",
            (bot,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [DocumentInfo(str(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4], r[5], r[6]) for r in rows]

    async def chunk_count(self, bot: str) -> int:
        async with self.db.execute("SELECT count(*) FROM knowledge_chunks WHERE bot = ?", (bot,)) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def write_documents(self, bot: str, documents: Iterable[NewDocument]) -> None:
        """Add or replace documents (their old passages go) in one transaction."""
        now = time.time()
        async with self._transaction() as db:
            for doc in documents:
                await db.execute(
                    "DELETE FROM knowledge_documents WHERE bot = ? AND path = ?", (bot, doc.path)
                )
                cursor = await db.execute(
                    "INSERT INTO knowledge_documents "
                    "(bot, path, source, content_hash, recipe, chunks, tokens, ingested_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        bot,
                        doc.path,
                        doc.source,
                        doc.content_hash,
                        doc.recipe,
                        len(doc.chunks),
                        sum(c.tokens for c in doc.chunks),
                        now,
                    ),
                )
                document_id = cursor.lastrowid
                await db.executemany(
                    f"INSERT INTO knowledge_chunks ({CHUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    chunk_rows(document_id, bot, doc),
                )
            await self._bump(db, bot)

    async def remove_documents(self, bot: str, paths: Iterable[str]) -> int:
        """Forget documents and their passages; return how many went."""
        removed = 0
        async with self._transaction() as db:
            for path in paths:
                cursor = await db.execute(
                    "DELETE FROM knowledge_documents WHERE bot = ? AND path = ?", (bot, path)
                )
                removed += max(0, cursor.rowcount)
            if removed:
                await self._bump(db, bot)
        return removed

    async def export_documents(self, bot: str) -> list[NewDocument]:
        documents = await self.db.execute_fetchall(
            "SELECT id, path, source, content_hash, recipe FROM knowledge_documents WHERE bot = ? ORDER BY id",
            (bot,),
        )
        exported = []
        for document_id, path, source, content_hash, recipe in documents:
            rows = list(
                await self.db.execute_fetchall(
                    "SELECT source, section, text, tokens, embedding FROM knowledge_chunks "
                    "WHERE document_id = ? ORDER BY id",
                    (document_id,),
                )
            )
            exported.append(exported_document(str(path), str(source), str(content_hash), str(recipe), rows))
        return exported

    @staticmethod
    async def _bump(db: aiosqlite.Connection, bot: str) -> None:
        await db.execute(
            "INSERT INTO knowledge_versions (bot, version) VALUES (?, 1) "
            "ON CONFLICT (bot) DO UPDATE SET version = version + 1",
            (bot,),
        )

    async def version(self, bot: str) -> int:
        async with self.db.execute("SELECT version FROM knowledge_versions WHERE bot = ?", (bot,)) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

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
            index = await self._refresh(bot, cached[1] if cached else empty_index())
            self._indexes[bot] = (version, index)
            return index

    async def _refresh(self, bot: str, old: VectorIndex) -> VectorIndex:
        """``old`` without the chunks deleted since, plus the ones added (ids above its last)."""
        started = time.perf_counter()
        last = int(old.ids[-1]) if len(old) else 0
        current: list[int] = []
        added: list[tuple[int, bytes]] = []
        # One statement, so one read snapshot of the ids and the new vectors, without holding the store's
        # write lock (conversation writes go on between batches): vectors already loaded are not re-read.
        async with self.db.execute(
            "SELECT id, CASE WHEN id > ? THEN embedding END FROM knowledge_chunks WHERE bot = ? ORDER BY id",
            (last, bot),
        ) as cursor:
            while rows := await cursor.fetchmany(4096):
                for chunk_id, blob in rows:
                    current.append(chunk_id)
                    if blob is not None:
                        added.append((chunk_id, blob))
        index = refreshed_index(bot, old, current, added)
        log.info(
            "%s: knowledge vectors loaded (%d passages, %d new, %.0f ms)",
            bot,
            len(index),
            len(added),
            (time.perf_counter() - started) * 1000,
        )
        return index

    async def keyword_search(self, bot: str, text: str, limit: int) -> list[tuple[int, float]]:
        """Passages matching the text's significant words, best first, as ``(chunk id, BM25 > 0)``.

        Words found in over a tenth of a large index are left out (see ``COMMON_SHARE``)."""
        query = fts_query(await self._distinctive(query_terms(text)))
        if not query:
            return []
        sql = (
            f"SELECT c.id, -bm25(knowledge_fts, {BM25_WEIGHTS}) AS score "
            "FROM knowledge_fts JOIN knowledge_chunks AS c ON c.id = knowledge_fts.rowid "
            "WHERE knowledge_fts MATCH ? AND c.bot = ? ORDER BY score DESC LIMIT ?"
        )
        try:
            async with self.db.execute(sql, (query, bot, limit)) as cursor:
                rows = await cursor.fetchall()
        except aiosqlite.OperationalError as exc:  # a query FTS5 cannot parse: no keyword hits
            log.warning("keyword search failed for %r: %s", query, exc)
            return []
        return [(int(r[0]), float(r[1])) for r in rows]

    async def _distinctive(self, terms: list[str]) -> list[str]:
        """The terms that are not in too many passages (counts cached until the next ingest)."""
        if not terms:
            return []
        if self._passages < 0:
            async with self.db.execute("SELECT count(*) FROM knowledge_chunks") as cursor:
                row = await cursor.fetchone()
            self._passages = int(row[0]) if row else 0
        limit = common_limit(self._passages)
        if self._passages <= limit:
            return terms  # a small index: every word may count, and it costs nothing
        for term in terms:
            if term not in self._document_counts:
                count = 0
                try:
                    async with self.db.execute(
                        "SELECT count(*) FROM knowledge_fts WHERE knowledge_fts MATCH ?", (fts_query([term]),)
                    ) as cursor:
                        found = await cursor.fetchone()
                    count = int(found[0]) if found else 0
                except aiosqlite.OperationalError:
                    pass
                self._document_counts[term] = count
        return [term for term in terms if self._document_counts[term] <= limit]

    async def chunks(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        async with self.db.execute(
            f"SELECT id, source, section, text, tokens FROM knowledge_chunks WHERE id IN ({marks})",
            list(chunk_ids),
        ) as cursor:
            rows = await cursor.fetchall()
        return {int(r[0]): StoredChunk(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows}
