"""Files and folders into a bot's knowledge base, incrementally.

A file is read, chunked and embedded only when its content hash (or the recipe: embedding model and chunk
sizes) differs from what is stored; documents that were under an ingested folder, or were an ingested file,
and no longer exist are removed. A file that cannot be read is reported and skipped (an earlier version of
it, if any, stays). Passages are embedded in batches across files and written a few files at a time, each
group in one transaction, so an interrupted run keeps what it finished and the next run does the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.knowledge import DocumentInfo, NewDocument
from core.store import KnowledgeStore
from core.tokens import TokenCounter
from features.knowledge.chunking import Chunk, chunk_document
from features.knowledge.embeddings import Embedder
from features.knowledge.readers import (
    Document,
    UnreadableFile,
    content_hash,
    find_files,
    parse_document,
    read_file,
)

log = logging.getLogger(__name__)

RECIPE_VERSION = 1
WAVE_CHUNKS = 512  # passages embedded before the files they belong to are written

Progress = Callable[[str, str, str], None]  # (event, name, detail): "added", "pricing.md", "4 passages"


def recipe(embedding_model: str, chunk_tokens: int, chunk_overlap: int) -> str:
    """What, besides a file's content, decides its passages and vectors."""
    return f"{embedding_model}|{chunk_tokens}|{chunk_overlap}|v{RECIPE_VERSION}"


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a passage: its file and section titles, then its text."""
    stem = Path(chunk.source).stem.replace("-", " ").replace("_", " ")
    heading = " > ".join(part for part in (stem, chunk.section) if part)
    return f"{heading}\n{chunk.text}"


@dataclass
class IngestReport:
    """What one run changed, by source name; ``failed`` pairs a file with the reason."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0  # passages written


@dataclass
class _Pending:
    document: Document
    chunks: list[Chunk]
    replaces: bool


def _display(path: Path) -> str:
    """A path as the user would recognise it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


class Ingestor:
    """Reads, chunks, embeds and stores documents for one bot at a time."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        counter: TokenCounter,
        *,
        chunk_tokens: int,
        chunk_overlap: int,
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.counter = counter
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.recipe = recipe(embedder.model, chunk_tokens, chunk_overlap)
        self._progress = progress

    def _tell(self, event: str, name: str, detail: str = "") -> None:
        if self._progress is not None:
            self._progress(event, name, detail)

    async def ingest(self, bot: str, roots: Sequence[Path]) -> IngestReport:
        """Bring the bot's knowledge base in line with ``roots`` (files and folders)."""
        report = IngestReport()
        existing = {doc.path: doc for doc in await self.store.documents(bot)}
        files, stale_paths, missing = await asyncio.to_thread(_plan, roots, set(existing))
        for path in missing:
            report.failed.append((_display(path), "no such file or folder"))
            self._tell("failed", _display(path), "no such file or folder")
        stale = {path: existing[path] for path in sorted(stale_paths)}

        pending: list[_Pending] = []
        for path, source in files.items():
            item = await self._prepare(path, source, existing.get(str(path)), report)
            if item is not None:
                pending.append(item)
        await self._write(bot, pending, report)
        if stale:
            await self.store.remove_documents(bot, list(stale))
            for doc in stale.values():
                report.removed.append(doc.source)
                self._tell("removed", doc.source)
        return report

    async def _prepare(
        self, path: Path, source: str, known: DocumentInfo | None, report: IngestReport
    ) -> _Pending | None:
        """The file's passages when it needs (re)writing; ``None`` when unchanged or unreadable."""
        try:
            data = await asyncio.to_thread(read_file, path)
            digest = content_hash(data)
            if (
                known is not None
                and known.content_hash == digest
                and known.recipe == self.recipe
                and known.source == source
            ):
                report.unchanged.append(source)
                return None
            document = await asyncio.to_thread(parse_document, path, source, data)
        except UnreadableFile as exc:
            report.failed.append((_display(path), exc.reason))
            self._tell("failed", _display(path), exc.reason)
            return None
        chunks = await asyncio.to_thread(
            chunk_document, document, self.counter, self.chunk_tokens, self.chunk_overlap
        )
        return _Pending(document, chunks, replaces=known is not None)

    async def _write(self, bot: str, pending: list[_Pending], report: IngestReport) -> None:
        wave: list[_Pending] = []
        size = 0
        for item in pending:
            wave.append(item)
            size += len(item.chunks)
            if size >= WAVE_CHUNKS:
                await self._write_wave(bot, wave, report)
                wave, size = [], 0
        if wave:
            await self._write_wave(bot, wave, report)

    async def _write_wave(self, bot: str, wave: list[_Pending], report: IngestReport) -> None:
        texts = [embedding_text(chunk) for item in wave for chunk in item.chunks]
        vectors = await self.embedder.embed(texts)
        documents = []
        start = 0
        for item in wave:
            end = start + len(item.chunks)
            doc = item.document
            documents.append(
                NewDocument(
                    path=str(doc.path),
                    source=doc.source,
                    content_hash=doc.content_hash,
                    recipe=self.recipe,
                    chunks=item.chunks,
                    vectors=vectors[start:end],
                )
            )
            start = end
        await self.store.write_documents(bot, documents)
        for item in wave:
            name = item.document.source
            (report.updated if item.replaces else report.added).append(name)
            report.chunks += len(item.chunks)
            self._tell("updated" if item.replaces else "added", name, f"{len(item.chunks)} passages")


def _plan(roots: Sequence[Path], known: set[str]) -> tuple[dict[Path, str], set[str], list[Path]]:
    """What to look at (absolute path -> source name), which known documents are gone, which roots do not
    exist (and held no known documents)."""
    files: dict[Path, str] = {}
    stale: set[str] = set()
    missing: list[Path] = []
    for given in roots:
        root = Path(os.path.abspath(given))
        under = {path for path in known if path == str(root) or _inside(path, root)}
        if not root.exists():
            if under:
                stale |= under
            else:
                missing.append(root)
            continue
        for path in find_files(root):
            source = path.name if path == root else path.relative_to(root).as_posix()
            files.setdefault(Path(os.path.abspath(path)), source)
        stale |= under
    return files, stale - {str(path) for path in files}, missing


def _inside(path: str, root: Path) -> bool:
    return path.startswith(str(root).rstrip(os.sep) + os.sep)
