"""Contract: :class:`core.store.KnowledgeStore` (documents, passages, vectors, keywords, versions)."""

from __future__ import annotations

import numpy as np
import pytest

from core.store import Storage
from tests.store_contract.records import document


async def test_documents_are_written_replaced_listed_and_removed_per_bot(store: Storage) -> None:
    knowledge = store.knowledge
    assert await knowledge.bots() == [] and await knowledge.version("orbit") == 0
    await knowledge.write_documents(
        "orbit",
        [
            document("docs/b.md", "Billing is monthly.", "Refunds within 30 days."),
            document("docs/a.md", "Hi."),
        ],
    )
    await knowledge.write_documents("default", [document("x.md", "Other bot.")])
    v1 = await knowledge.version("orbit")
    listed = await knowledge.documents("orbit")
    assert [(d.source, d.path, d.chunks) for d in listed] == [
        ("a.md", "docs/a.md", 1),
        ("b.md", "docs/b.md", 2),
    ]
    assert listed[1].content_hash == "hash-docs/b.md" and listed[1].recipe == "recipe"
    assert listed[1].tokens == 3 + 4 and listed[1].ingested_at > 0
    assert await knowledge.chunk_count("orbit") == 3
    assert await knowledge.bots() == ["default", "orbit"]

    await knowledge.write_documents("orbit", [document("docs/b.md", "Billing is yearly now.")])
    v2 = await knowledge.version("orbit")
    assert v2 != v1
    assert await knowledge.chunk_count("orbit") == 2  # the old passages of b.md went

    assert await knowledge.remove_documents("orbit", ["docs/a.md", "docs/never.md"]) == 1
    assert await knowledge.version("orbit") not in (v1, v2)
    assert [d.path for d in await knowledge.documents("orbit")] == ["docs/b.md"]
    assert await knowledge.remove_documents("orbit", ["docs/never.md"]) == 0
    assert await knowledge.chunk_count("default") == 1


async def test_keyword_search_finds_passages_of_the_bot_only(store: Storage) -> None:
    knowledge = store.knowledge
    await knowledge.write_documents(
        "orbit",
        [document("docs/plans.md", "Orbit Pro includes unlimited boards.", "Support hours are 9 to 5.")],
    )
    await knowledge.write_documents("default", [document("docs/other.md", "Unlimited boards elsewhere.")])
    hits = await knowledge.keyword_search("orbit", "How many boards does Pro include?", 5)
    assert hits and all(score > 0 for _, score in hits)
    chunks = await knowledge.chunks([chunk_id for chunk_id, _ in hits])
    assert chunks[hits[0][0]].text == "Orbit Pro includes unlimited boards."
    assert all(c.source == "plans.md" for c in chunks.values())
    assert await knowledge.keyword_search("orbit", "the and of", 5) == []  # stop words only
    odd = await knowledge.keyword_search("orbit", 'boards!!! "pro" AND (or) NOT -x * \'; DROP --', 5)
    assert [chunk_id for chunk_id, _ in odd][:1] == [hits[0][0]]  # query syntax in the text is just words
    assert await knowledge.chunks([]) == {}


async def test_vectors_follow_every_change_of_the_bot_documents(store: Storage) -> None:
    knowledge = store.knowledge
    first = document("docs/a.md", "One.", "Two.", seed=1)
    await knowledge.write_documents("orbit", [first])
    index = await knowledge.vectors("orbit")
    assert len(index) == 2 and index.dimensions == 3
    assert np.allclose(index.matrix, first.vectors)
    best_id, best_score = index.top(first.vectors[1:2], 1)[0]
    assert (await knowledge.chunks([best_id]))[best_id].text == "Two." and best_score == pytest.approx(1.0)

    await knowledge.write_documents("orbit", [document("docs/b.md", "Three.", seed=2)])
    assert len(await knowledge.vectors("orbit")) == 3
    await knowledge.remove_documents("orbit", ["docs/a.md"])
    assert len(await knowledge.vectors("orbit")) == 1
    assert len(await knowledge.vectors("nobody")) == 0


async def test_an_exported_knowledge_base_writes_back_the_same(store: Storage) -> None:
    original = document(
        "docs/a.md", "Orbit Pro includes unlimited boards.", "Refunds within 30 days.", seed=3
    )
    await store.knowledge.write_documents("orbit", [original])
    exported = await store.knowledge.export_documents("orbit")
    assert len(exported) == 1
    copy = exported[0]
    assert (copy.path, copy.source, copy.content_hash, copy.recipe) == (
        original.path,
        original.source,
        original.content_hash,
        original.recipe,
    )
    assert [(c.source, c.section, c.text, c.tokens) for c in copy.chunks] == [
        (c.source, c.section, c.text, c.tokens) for c in original.chunks
    ]
    assert np.allclose(copy.vectors, original.vectors)
    assert await store.knowledge.export_documents("nobody") == []


async def test_passages_of_another_vector_size_stay_out_of_the_vector_index(store: Storage) -> None:
    knowledge = store.knowledge
    await knowledge.write_documents("orbit", [document("docs/a.md", "One.", "Two.", width=3)])
    assert len(await knowledge.vectors("orbit")) == 2
    await knowledge.write_documents("orbit", [document("docs/b.md", "Three.", width=4)])  # another model
    index = await knowledge.vectors("orbit")
    assert (len(index), index.dimensions) == (2, 3)
    await knowledge.remove_documents("orbit", ["docs/a.md"])  # re-ingested: the newest size decides
    index = await knowledge.vectors("orbit")
    assert (len(index), index.dimensions) == (1, 4)
