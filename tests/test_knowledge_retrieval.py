"""Retrieval over the Orbit documents through the fake embeddings endpoint (real HTTP, openai client), and
the knowledge feature putting passages with their sources into the system message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.errors import ModelUnavailable
from core.sqlite_store import SQLiteStore
from core.store import KnowledgeStore
from core.tokens import TokenCounter
from features.knowledge.embeddings import Embedder
from features.knowledge.ingest import Ingestor
from features.knowledge.retrieval import Retriever, relevance
from tests.fakes.openai_server import FakeOpenAI
from tests.support.engines import engine_for, said
from tests.support.openai_clients import client_for, close_clients  # noqa: F401 (autouse)

ORBIT_DOCS = Path(__file__).resolve().parent.parent / "bots" / "data" / "orbit" / "docs"

# Each question, with the passage that answers it: (source, last part of the section title).
QUESTIONS = [
    ("How much does the Pro plan cost?", "pricing.md", "Pro plan"),
    ("What is the price of the Business plan per user?", "pricing.md", "Business plan"),
    ("Is there a free plan, and how many members can it have?", "pricing.md", "Free plan"),
    ("How long is the free trial?", "pricing.md", "Free trial"),
    ("Do nonprofits get a discount?", "pricing.md", "Discounts"),
    (
        "Which payment methods do you accept? Can I pay with PayPal?",
        "billing-faq.md",
        "payment methods do you accept?",
    ),
    ("Can I get a refund for my annual plan?", "billing-faq.md", "Can I get a refund?"),
    ("How do I cancel my subscription?", "billing-faq.md", "How do I cancel my subscription?"),
    ("Where can I download my invoices?", "billing-faq.md", "Where do I find my invoices?"),
    ("Do you charge VAT?", "billing-faq.md", "Do you charge VAT or sales tax?"),
    (
        "My card payment failed, what happens to my workspace?",
        "billing-faq.md",
        "My payment failed. What now?",
    ),
    ("Am I charged when I add a new member in the middle of the month?", "billing-faq.md", "remove members?"),
    ("How many automation runs do I get each month?", "features.md", "Automations"),
    ("Can I see my project as a Gantt chart?", "features.md", "Views"),
    ("How do I import my projects from Trello?", "features.md", "Import and export"),
    ("Does the mobile app work offline?", "features.md", "Mobile and offline"),
    ("Can I track the time spent on tasks?", "features.md", "Time tracking"),
    ("How do I connect Slack?", "integrations.md", "Slack"),
    ("How do I link GitHub pull requests to tasks?", "integrations.md", "GitHub and GitLab"),
    ("What is the API rate limit?", "integrations.md", "Zapier and the API"),
    ("Does single sign-on include SCIM provisioning?", "integrations.md", "Single sign-on"),
    ("Can I sync task due dates with Google Calendar?", "integrations.md", "Google Calendar and Outlook"),
    ("I can't log in to my account", "troubleshooting.md", "I can't log in"),
    ("I never got the password reset email", "troubleshooting.md", "password reset email"),
    ("What is the maximum file size I can upload?", "troubleshooting.md", "File upload fails"),
    ("I deleted a task by accident. Can I restore it?", "troubleshooting.md", "I deleted a task by mistake"),
    ("Notifications are not showing up on my phone", "troubleshooting.md", "Notifications are not arriving"),
    ("How do I turn on two-factor authentication?", "account-security.md", "Two-factor authentication"),
    ("Where is my data stored, and is it encrypted?", "account-security.md", "Where is my data stored?"),
    ("How long do you keep backups?", "account-security.md", "Backups and data retention"),
    ("What is the keyboard shortcut to create a new task?", "getting-started.html", "Keyboard shortcuts"),
    ("How do I invite my team to the workspace?", "getting-started.html", "Invite your team"),
]
OFF_TOPIC = ["What's the capital of France?", "How do I bake bread?", "tell me a joke", "hi"]


@pytest.fixture
async def knowledge(fake_model: FakeOpenAI, db_path: Path) -> AsyncIterator[KnowledgeStore]:
    """The Orbit documents ingested into a fresh database through the fake embeddings endpoint."""
    client = client_for(fake_model)
    opened = SQLiteStore(db_path)
    await opened.open()
    store = opened.knowledge
    counter = TokenCounter("text-embedding-3-small", allow_download=False)
    ingestor = Ingestor(store, Embedder(client, "fake-embed"), counter, chunk_tokens=300, chunk_overlap=40)
    report = await ingestor.ingest("orbit", [ORBIT_DOCS])
    assert len(report.added) == 7 and not report.failed
    try:
        yield store
    finally:
        await opened.close()


def retriever(fake_model: FakeOpenAI, store: KnowledgeStore, *, retries: int = 0) -> Retriever:
    client = client_for(fake_model, max_retries=retries)
    return Retriever(store, Embedder(client, "fake-embed"), "orbit", top_k=4, min_score=0.3)


async def test_the_right_passage_is_in_the_top_3_for_90_percent(
    fake_model: FakeOpenAI, knowledge: KnowledgeStore
) -> None:
    search = retriever(fake_model, knowledge)
    misses = []
    for question, source, section in QUESTIONS:
        top = (await search.search(question))[:3]
        if not any(p.source == source and p.section.endswith(section) for p in top):
            misses.append((question, [(p.source, p.section) for p in top]))
    assert len(QUESTIONS) >= 20
    assert len(misses) <= len(QUESTIONS) // 10, misses
    embedding_calls = [r for r in fake_model.requests if "input" in r]
    assert embedding_calls and all(r["model"] == "fake-embed" for r in embedding_calls)


async def test_off_topic_questions_find_nothing(fake_model: FakeOpenAI, knowledge: KnowledgeStore) -> None:
    search = retriever(fake_model, knowledge)
    for question in OFF_TOPIC:
        assert await search.search(question) == [], question


async def test_recent_context_carries_a_follow_up(fake_model: FakeOpenAI, knowledge: KnowledgeStore) -> None:
    search = retriever(fake_model, knowledge)
    found = await search.search("and if we pay for a whole year?", "How much does the Business plan cost?")
    assert ("pricing.md", "Orbit pricing > Business plan") in [(p.source, p.section) for p in found[:3]]


async def test_embedding_failures_are_retried_like_chat_calls(
    fake_model: FakeOpenAI, knowledge: KnowledgeStore
) -> None:
    fake_model.embedding_failures = 1
    found = await retriever(fake_model, knowledge, retries=1).search("Do you charge VAT?")
    assert fake_model.embedding_failures == 0
    assert found[0].section.endswith("VAT or sales tax?") and found[0].cosine > 0


async def test_without_embeddings_keywords_still_answer(
    fake_model: FakeOpenAI, knowledge: KnowledgeStore
) -> None:
    fake_model.embedding_failures = 10
    found = await retriever(fake_model, knowledge).search("Do you charge VAT?")
    assert found[0].section.endswith("VAT or sales tax?") and found[0].cosine == 0
    with pytest.raises(ModelUnavailable):  # the embedder itself reports the failure in our error tree
        await retriever(fake_model, knowledge).embedder.embed(["x"])


async def test_new_documents_reach_a_running_retriever(
    fake_model: FakeOpenAI, knowledge: KnowledgeStore, db_path: Path, tmp_path: Path
) -> None:
    search = retriever(fake_model, knowledge)
    await search.search("What is the uptime SLA for Business?")  # loads the vector index
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "sla.md").write_text(
        "# SLA\n\nBusiness workspaces get a 99.95% uptime SLA with service credits.\n"
    )
    other_store = SQLiteStore(db_path)  # another connection, as `chatbot ingest` in another process
    await other_store.open()
    other = other_store.knowledge
    client = client_for(fake_model)
    counter = TokenCounter("text-embedding-3-small", allow_download=False)
    await Ingestor(other, Embedder(client, "fake-embed"), counter, chunk_tokens=300, chunk_overlap=40).ingest(
        "orbit", [extra]
    )
    await other_store.close()
    found = await search.search("What is the uptime SLA for Business?")
    assert found[0].source == "sla.md" and "99.95%" in found[0].text


def test_relevance_is_the_cosine_raised_by_keywords() -> None:
    assert relevance(0.4, 0.0) == pytest.approx(0.4)
    assert relevance(0.4, 5.0) == pytest.approx(0.4 + 0.6 * 0.5 * 0.5)
    assert relevance(-0.2, 0.0) == 0.0
    assert 0.4 < relevance(0.4, 1e9) <= 0.7 + 1e-9


# The feature, through the engine --------------------------------------------------------------------


async def ingest_orbit(fake_model: FakeOpenAI, db_path: Path) -> None:
    opened = SQLiteStore(db_path)
    await opened.open()
    store = opened.knowledge
    client = client_for(fake_model)
    counter = TokenCounter("text-embedding-3-small", allow_download=False)
    await Ingestor(store, Embedder(client, "fake-embed"), counter, chunk_tokens=300, chunk_overlap=40).ingest(
        "orbit", [ORBIT_DOCS]
    )
    await opened.close()


async def test_passages_and_sources_go_into_the_system_message(fake_model: FakeOpenAI, db_path: Path) -> None:
    await ingest_orbit(fake_model, db_path)
    fake_model.queue("The Pro plan costs $12 per user per month [pricing.md].")
    async with engine_for(fake_model.base_url, db_path, bot="orbit") as engine:
        reply = await engine.reply_text(said("c:1", "How much does the Pro plan cost?"))
    assert reply == "The Pro plan costs $12 per user per month [pricing.md]."
    system = fake_model.last_messages()[0]["content"]
    assert system.startswith(engine.bot.system_prompt)
    assert (
        "Use these passages from Orbit's documentation to answer. Cite the source names in brackets" in system
    )
    assert "[pricing.md] Orbit pricing > Pro plan\nThe Pro plan costs $12 per user per month" in system
    embeds = [r for r in fake_model.requests if "input" in r]
    assert embeds[-1]["input"] == ["How much does the Pro plan cost?"]


async def test_the_previous_exchange_joins_the_query(fake_model: FakeOpenAI, db_path: Path) -> None:
    await ingest_orbit(fake_model, db_path)
    async with engine_for(fake_model.base_url, db_path, bot="orbit") as engine:
        await engine.reply_text(said("c:1", "How much does the Business plan cost?"))
        await engine.reply_text(said("c:1", "and billed annually?"))
    question, context = [r for r in fake_model.requests if "input" in r][-1]["input"]
    assert question == "and billed annually?"
    assert "How much does the Business plan cost?" in context


async def test_nothing_relevant_tells_the_model_to_say_it_does_not_know(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    await ingest_orbit(fake_model, db_path)
    async with engine_for(fake_model.base_url, db_path, bot="orbit") as engine:
        await engine.reply_text(said("c:1", "How do I bake bread?"))
    system = fake_model.last_messages()[0]["content"]
    assert system.endswith(
        "Nothing in Orbit's documentation matches this message. If it asks about facts (prices, limits, "
        "features, steps), say that you don't know rather than guessing."
    )


async def test_passages_stay_within_the_context_allowance(fake_model: FakeOpenAI, db_path: Path) -> None:
    await ingest_orbit(fake_model, db_path)
    question = "What does the Business plan include and cost?"
    async with engine_for(
        fake_model.base_url, db_path, bot="orbit", CHATBOT_CONTEXT_TOKENS=2000, CHATBOT_MAX_TOKENS=200
    ) as engine:
        await engine.reply_text(said("c:1", question))
        source = engine.hooks.context_sources[0]
        roomy = await source.context_for(said("c:2", question), question, 5000)
        tight = await source.context_for(said("c:2", question), question, 200)
    assert "[pricing.md] Orbit pricing > Business plan" in fake_model.last_messages()[0]["content"]
    assert roomy.count("\n\n[") == 4  # top_k passages
    assert 1 <= tight.count("\n\n[") < 4 and engine.counter.message_tokens(tight) <= 200


async def test_bots_without_a_knowledge_base_get_no_context_source(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    await ingest_orbit(fake_model, db_path)
    async with engine_for(fake_model.base_url, db_path, bot="default") as engine:
        assert engine.hooks.context_sources == []
        await engine.reply_text(said("c:1", "How much does the Pro plan cost?"))
    assert fake_model.last_messages()[0]["content"] == engine.bot.system_prompt
