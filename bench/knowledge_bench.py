"""The knowledge base: ingest throughput, and query latency at 10,000 and 100,000 passages.

Embeddings come from an instant in-process embedder (hashed unit vectors, 1,536 dimensions like OpenAI's
text-embedding-3-small), so the figures are this code's own cost: reading, chunking, token counting,
SQLite writes with the FTS5 index, the NumPy scan, the keyword search and the ranking. A real embeddings
server adds its own time per batch on top.

Query latency uses synthetic passages (about 200 words from a 5,000-word vocabulary, Zipf-distributed)
with random unit vectors, inserted directly into the store. Each query is a full ``Retriever.search``:
the vector index's version check, the scan (in a worker thread), FTS5 BM25, fusion and the passage fetch.

    python -m bench.knowledge_bench [--quick]
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.report import table
from core.knowledge import NewDocument
from core.sqlite_store import SQLiteStore
from core.store import KnowledgeStore
from core.tokens import TokenCounter
from features.knowledge.chunking import Chunk
from features.knowledge.embeddings import Embedder, Matrix, normalise
from features.knowledge.ingest import Ingestor
from features.knowledge.retrieval import Retriever

DIMENSIONS = 1536
VOCABULARY = 5_000
WORDS_PER_PASSAGE = 200
QUERIES = 60
BOT = "bench"


class InstantEmbedder(Embedder):
    """Deterministic unit vectors without a server (a hash of the text seeds them)."""

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self.model = f"instant-{dimensions}"
        self.dimensions = dimensions
        self.batch_size = 64

    async def embed(self, texts: Sequence[str]) -> Matrix:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            rows.append(np.random.default_rng(seed).standard_normal(self.dimensions, dtype=np.float32))
        return normalise(np.asarray(rows, dtype=np.float32))


def words(rng: np.random.Generator, count: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.2, count), VOCABULARY) - 1
    return [f"w{rank}" for rank in ranks]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def write_corpus(folder: Path, documents: int, rng: np.random.Generator) -> int:
    """Markdown files of ~20 sections of ~120 words each; returns their total size in bytes."""
    size = 0
    for d in range(documents):
        parts = [f"# Document {d}\n"]
        for s in range(20):
            parts.append(f"## Section {s} of {d}\n")
            for _ in range(2):
                parts.append(" ".join(words(rng, 60)) + ".\n")
        text = "\n".join(parts)
        (folder / f"doc{d:04d}.md").write_text(text)
        size += len(text.encode())
    return size


async def ingest_throughput(documents: int = 200) -> list[tuple[str, ...]]:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        size = write_corpus(folder, documents, rng)
        opened = SQLiteStore(Path(tmp) / "bench.db")
        await opened.open()
        counter = TokenCounter("text-embedding-3-small", allow_download=False)
        ingestor = Ingestor(opened.knowledge, InstantEmbedder(), counter, chunk_tokens=300, chunk_overlap=40)
        started = time.perf_counter()
        report = await ingestor.ingest(BOT, [folder])
        first = time.perf_counter() - started
        started = time.perf_counter()
        again = await ingestor.ingest(BOT, [folder])
        unchanged = time.perf_counter() - started
        await opened.close()
    assert len(report.added) == documents and len(again.unchanged) == documents
    return [
        (
            f"ingest {documents} Markdown files ({size / 1e6:.1f} MB)",
            f"{documents / first:.0f} files/s",
            f"{report.chunks / first:.0f} passages/s",
            f"{size / 1e6 / first:.2f} MB/s",
        ),
        (
            f"re-run, nothing changed ({documents} files)",
            f"{documents / unchanged:.0f} files/s",
            "",
            f"{unchanged * 1000:.0f} ms total",
        ),
    ]


async def fill(store: KnowledgeStore, total: int, start: int, rng: np.random.Generator) -> None:
    """Add synthetic passages up to ``total`` (from ``start``), 1,000 per document, random vectors."""
    for first in range(start, total, 1000):
        count = min(1000, total - first)
        chunks = [
            Chunk(f"doc{first // 1000}.md", f"Section {i}", " ".join(words(rng, WORDS_PER_PASSAGE)), 260)
            for i in range(count)
        ]
        vectors = normalise(rng.standard_normal((count, DIMENSIONS), dtype=np.float32))
        await store.write_documents(
            BOT,
            [
                NewDocument(
                    f"/bench/doc{first // 1000}.md", f"doc{first // 1000}.md", "x", "r", chunks, vectors
                )
            ],
        )


async def query_latency(sizes: tuple[int, ...] = (10_000, 100_000)) -> list[tuple[str, ...]]:
    rng = np.random.default_rng(11)
    rows: list[tuple[str, ...]] = []
    embedder = InstantEmbedder()
    questions = [" ".join(words(rng, 8)) for _ in range(QUERIES)]
    with tempfile.TemporaryDirectory() as tmp:
        opened = SQLiteStore(Path(tmp) / "bench.db")
        await opened.open()
        store = opened.knowledge
        filled = 0
        for size in sizes:
            added = size - filled
            started = time.perf_counter()
            await fill(store, size, filled, rng)
            filled = size
            insert = time.perf_counter() - started
            started = time.perf_counter()
            cold = SQLiteStore(Path(tmp) / "bench.db")  # a bot process starting cold
            await cold.open()
            reader = cold.knowledge
            index = await reader.vectors(BOT)
            load = time.perf_counter() - started
            retriever = Retriever(reader, embedder, BOT, top_k=4, min_score=0.0)
            queries = await embedder.embed(questions)
            scan, keyword, full = [], [], []
            for i, question in enumerate(questions):
                t0 = time.perf_counter()
                index.top(queries[i : i + 1], 40)
                t1 = time.perf_counter()
                await reader.keyword_search(BOT, question, 40)
                t2 = time.perf_counter()
                await retriever.search(question, "an earlier question about w1 w2 w3")
                t3 = time.perf_counter()
                scan.append((t1 - t0) * 1000)
                keyword.append((t2 - t1) * 1000)
                full.append((t3 - t2) * 1000)
            await cold.close()
            label = f"{size:,} passages"
            megabytes = index.matrix.nbytes / 1e6
            rows += [
                (
                    f"query, {label}: full search",
                    f"{statistics.median(full):.1f} ms",
                    f"{pct(full, 0.95):.1f} ms",
                    "",
                ),
                (
                    f"query, {label}: vector scan",
                    f"{statistics.median(scan):.1f} ms",
                    f"{pct(scan, 0.95):.1f} ms",
                    "",
                ),
                (
                    f"query, {label}: FTS5 keywords",
                    f"{statistics.median(keyword):.1f} ms",
                    f"{pct(keyword, 0.95):.1f} ms",
                    "",
                ),
                (
                    f"load vectors, {label} (cold)",
                    f"{load * 1000:.0f} ms",
                    "",
                    f"{megabytes:.0f} MB in memory",
                ),
                (f"insert {added:,} passages with vectors", f"{insert:.1f} s", "", f"{added / insert:.0f}/s"),
            ]
        await opened.close()
    return rows


async def run(quick: bool = False) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The table: ingest throughput, then query latency at 10,000 and 100,000 passages (``quick``: 20
    files, and 2,000 and 10,000 passages)."""
    header = ("measure", "median / rate", "p95 / rate", "notes")
    rows = await ingest_throughput(20 if quick else 200)
    rows += await query_latency((2_000, 10_000) if quick else (10_000, 100_000))
    return header, rows


def main() -> None:
    header, rows = asyncio.run(run(quick="--quick" in sys.argv))
    print(f"Knowledge base, {DIMENSIONS}-dimensional vectors, instant embedder\n")
    print(table(header, rows))


if __name__ == "__main__":
    main()
