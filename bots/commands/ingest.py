"""``chatbot ingest``: put documents into a bot's knowledge base, or list what it holds.

chatbot ingest --bot orbit bots/data/orbit/docs     # add, update (changed files only), remove deleted
chatbot ingest --bot orbit --list                   # what is indexed
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from pathlib import Path

from bots.app import connect_model
from bots.registry import bot_names_help, get_entry
from bots.settings import Settings
from core.storage_url import nothing_stored, storage_for
from core.store import KnowledgeStore
from core.tokens import TokenCounter
from features.knowledge.embeddings import Embedder, embedding_client
from features.knowledge.ingest import Ingestor, IngestReport

NAME = "ingest"
HELP = "add documents (Markdown, text, HTML, PDF; folders recursively) to a bot's knowledge base"
CONSOLE_LOG_LEVEL = "WARNING"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bot", help=f"which bot: {bot_names_help()}; default: CHATBOT_BOT or 'default'")
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="files or folders to ingest (default: the bot's knowledge folder)",
    )
    parser.add_argument("--list", action="store_true", help="list the documents in the knowledge base")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    entry = get_entry(args.bot or settings.bot)
    bot = entry.name
    if not args.list and not args.paths and entry.knowledge_dir is not None:
        args.paths = [entry.knowledge_dir]  # the bot's knowledge folder, as the bots file names it
    if not args.list and not args.paths:
        print("error: give files or folders to ingest, or --list", file=sys.stderr)
        return 2
    if args.list and nothing_stored(
        settings.database(), settings.db_path
    ):  # listing is read-only: it creates no database
        print(empty_message(bot))
        return 0
    store = storage_for(settings.database(), settings.db_path)
    await store.open()
    try:
        if args.list:
            return await list_documents(store.knowledge, bot)
        return await ingest(store.knowledge, bot, args.paths, settings)
    finally:
        await store.close()


async def list_documents(store: KnowledgeStore, bot: str) -> int:
    documents = await store.documents(bot)
    if not documents:
        print(empty_message(bot))
        return 0
    width = max(len(doc.source) for doc in documents)
    for doc in documents:
        when = datetime.datetime.fromtimestamp(doc.ingested_at).strftime("%Y-%m-%d %H:%M")
        print(f"{doc.source:<{width}}  {doc.chunks:>5} passages  {doc.tokens:>7} tokens  {when}  {doc.path}")
    passages = sum(doc.chunks for doc in documents)
    print(f"{bot}: {len(documents)} documents, {passages} passages")
    return 0


def empty_message(bot: str) -> str:
    return f"{bot}: the knowledge base is empty. Add documents with: chatbot ingest --bot {bot} PATH..."


async def ingest(store: KnowledgeStore, bot: str, paths: list[Path], settings: Settings) -> int:
    model = connect_model(settings)
    client, own_client = embedding_client(settings, model.client)
    try:
        counter = await asyncio.to_thread(
            TokenCounter, settings.embedding_model, allow_download=settings.tiktoken_download
        )
        ingestor = Ingestor(
            store,
            Embedder(
                client,
                settings.embedding_model,
                max_input_tokens=settings.embedding_max_tokens,
                count=counter.count,
            ),
            counter,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
            progress=_print_event,
        )
        report = await ingestor.ingest(bot, paths)
    finally:
        if own_client:
            await client.close()
        await model.close()
    print(summary(bot, report))
    return 1 if report.failed else 0


def _print_event(event: str, name: str, detail: str) -> None:
    if event == "failed":
        print(f"failed     {name}: {detail}", flush=True)
    else:
        print(f"{event:<10} {name}" + (f" ({detail})" if detail else ""), flush=True)


def summary(bot: str, report: IngestReport) -> str:
    line = (
        f"{bot}: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed, {len(report.failed)} failed"
    )
    if report.failed:
        line += "\nnot ingested: " + ", ".join(name for name, _ in report.failed)
    return line
