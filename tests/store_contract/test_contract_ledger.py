"""Contract: :class:`core.store.TurnLedger` (token budgets, ``chatbot stats``)."""

from __future__ import annotations

from core.store import Storage
from tests.store_contract.records import turn


async def test_tokens_are_summed_per_user_and_per_bot_since_a_time(store: Storage) -> None:
    await store.record_turn(turn("s", "u1", started_at=100.0, prompt=10, completion=5))
    await store.record_turn(turn("s", "u1", started_at=200.0, prompt=20, completion=7))
    await store.record_turn(turn("t", "u2", started_at=200.0, prompt=1, completion=1, bot="default"))
    assert await store.ledger.user_tokens_since("u1", 0.0) == 42
    assert await store.ledger.user_tokens_since("u1", 200.0) == 27  # at or after
    assert await store.ledger.user_tokens_since("u1", 201.0) == 0
    assert await store.ledger.user_tokens_since("nobody", 0.0) == 0
    assert await store.ledger.bot_tokens_since("orbit", 150.0) == 27
    assert await store.ledger.bot_tokens_since("default", 0.0) == 2
    assert await store.ledger.count_user_turns("u1") == 2


async def test_a_users_tokens_can_be_counted_for_one_bot(store: Storage) -> None:
    """Several bots share one store and each keeps its own limits (bots file, issue 16)."""
    await store.record_turn(turn("s", "u1", started_at=100.0, prompt=10, completion=5, bot="orbit"))
    await store.record_turn(turn("t", "u1", started_at=100.0, prompt=1, completion=1, bot="default"))
    assert await store.ledger.user_tokens_since("u1", 0.0, bot="orbit") == 15
    assert await store.ledger.user_tokens_since("u1", 0.0, bot="default") == 2
    assert await store.ledger.user_tokens_since("u1", 0.0) == 17


async def test_turns_between_are_oldest_first_within_bounds_and_per_bot(store: Storage) -> None:
    await store.record_turn(turn("s", "u1", started_at=300.0, status="error", platform="slack"))
    await store.record_turn(turn("s", "u1", started_at=100.0))
    await store.record_turn(turn("s", "u2", started_at=200.0, bot="default"))
    await store.record_turn(turn("s", "u2", started_at=400.0))
    turns = await store.ledger.turns_between(100.0, 400.0)
    assert [t.started_at for t in turns] == [100.0, 200.0, 300.0]  # until is exclusive
    assert [t.started_at for t in await store.ledger.turns_between(0.0, 1000.0, bot="orbit")] == [
        100.0,
        300.0,
        400.0,
    ]
    last = turns[-1]
    assert (last.user_id, last.status, last.platform, last.bot, last.model) == (
        "u1",
        "error",
        "slack",
        "orbit",
        "m",
    )
    assert (last.prompt_tokens, last.completion_tokens, last.latency_ms) == (10, 5, 120.0)
