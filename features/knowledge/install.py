"""Answers from the bot's own documents: retrieved passages go into the system message, with sources.

Installed when the bot has a knowledge base (``chatbot ingest --bot NAME PATH...`` has stored passages for
it). Each turn, the question and the previous exchange retrieve the best passages (see
:mod:`features.knowledge.retrieval`); they are added to the system message with their file and section, within
the token allowance the engine grants context sources (the engine counts them into the prompt budget), and
the model is asked to cite the file names in brackets. When nothing relevant is found, the model is told
so, and to say it does not know rather than guess.

Documents ingested while the bot runs are picked up on the next question; a bot that had no knowledge
base when it started needs a restart.
"""

from __future__ import annotations

import logging

from openai import AsyncOpenAI

from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from core.store import storage_of
from core.tokens import TokenCounter
from core.trimming import cut_to_tokens
from features import FeatureContext
from features.knowledge.embeddings import Embedder, embedding_client
from features.knowledge.retrieval import Passage, Retriever

log = logging.getLogger(__name__)

ORDER = 30
CONTEXT_CHARS = 600  # of the previous exchange, added to the question for retrieval

INSTRUCTION = (
    "Use these passages from {owner} documentation to answer. Cite the source names in brackets, "
    "e.g. [{example}]. If they do not contain the answer, say you don't know."
)
NOTHING_FOUND = (
    "Nothing in {owner} documentation matches this message. If it asks about facts (prices, limits, "
    "features, steps), say that you don't know rather than guessing."
)


def owner_of(bot_name: str) -> str:
    """``Orbit's`` for the bot ``orbit``."""
    name = bot_name[:1].upper() + bot_name[1:]
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def passage_block(passage: Passage) -> str:
    heading = f"[{passage.source}]" + (f" {passage.section}" if passage.section else "")
    return f"{heading}\n{passage.text}"


def format_context(bot_name: str, passages: list[Passage], counter: TokenCounter, max_tokens: int) -> str:
    """The context block: the instruction, then passages (best first) while they fit in ``max_tokens``."""
    owner = owner_of(bot_name)
    if not passages:
        return NOTHING_FOUND.format(owner=owner)
    text = INSTRUCTION.format(owner=owner, example=passages[0].source)
    kept = 0
    for passage in passages:
        candidate = f"{text}\n\n{passage_block(passage)}"
        if counter.message_tokens(candidate) <= max_tokens:
            text, kept = candidate, kept + 1
        elif kept == 0:  # not even the best fits whole: give what fits of it
            return cut_to_tokens(candidate, max_tokens, counter)
    return text


class KnowledgeContext:
    """A :class:`core.hooks.ContextSource` over one bot's knowledge base."""

    def __init__(self, engine: ConversationEngine, retriever: Retriever) -> None:
        self.engine = engine
        self.retriever = retriever

    async def recent_context(self, message: IncomingMessage) -> str:
        """The exchange before this message (the user's previous message and the reply to it)."""
        recent = await self.engine.store.recent_messages(message.session_id, limit=3)
        earlier = recent[1:] if recent and recent[0].role == "user" else recent
        parts = [m.content for m in reversed(earlier[:2])]
        return " ".join(parts)[-CONTEXT_CHARS:]

    async def context_for(self, message: IncomingMessage, text: str, max_tokens: int) -> str:
        passages = await self.retriever.search(text, await self.recent_context(message))
        log.debug(
            "%s: %d passages (%s)",
            message.session_id,
            len(passages),
            ", ".join(f"{p.source}#{p.chunk_id} cos={p.cosine:.2f}" for p in passages),
        )
        return format_context(self.engine.bot.name, passages, self.engine.counter, max_tokens)


async def install(ctx: FeatureContext) -> None:
    engine, settings = ctx.engine, ctx.settings
    client = getattr(engine.model, "client", None)
    if not isinstance(client, AsyncOpenAI):
        return  # a model without an OpenAI-compatible client has no embeddings endpoint
    store = storage_of(engine.store).knowledge
    if not await store.chunk_count(engine.bot.name):
        return
    embed_client, own_client = embedding_client(settings, client)
    if own_client:
        ctx.closers.append(embed_client.close)
    retriever = Retriever(
        store,
        Embedder(
            embed_client,
            settings.embedding_model,
            max_input_tokens=settings.embedding_max_tokens,
            count=engine.counter.count,
        ),
        engine.bot.name,
        top_k=settings.knowledge_top_k,
        min_score=settings.knowledge_min_score,
    )
    index = await store.vectors(engine.bot.name)  # load now rather than on the first question
    engine.hooks.context_sources.append(KnowledgeContext(engine, retriever))
    log.info("%s answers from its knowledge base (%d passages)", engine.bot.name, len(index))
