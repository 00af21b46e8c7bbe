"""Contract: :class:`core.store.EventQuestions` (a question stored once per platform delivery, and the
reply that answered it, for a work queue's retried jobs)."""

from __future__ import annotations

from core.store import EventQuestions, EventTurn, Storage
from tests.store_contract.records import turn


async def test_a_delivery_handled_twice_stores_its_question_once(store: Storage) -> None:
    assert isinstance(store, EventQuestions)
    assert await store.event_turn("telegram:1:10") is None
    first = await store.add_question_once("s1", "telegram:1:10", "hello", 3, user_id="telegram:7")
    again = await store.add_question_once("s1", "telegram:1:10", "hello", 3, user_id="telegram:7")
    other = await store.add_question_once("s1", "telegram:1:11", "hello", 3, user_id="telegram:7")
    assert again == first and other != first
    assert await store.count_messages("s1") == 2
    assert await store.event_turn("telegram:1:10") == EventTurn(first, None)
    # unanswered, the question is not part of the model's context yet
    assert await store.recent_messages("s1") == []


async def test_the_complete_reply_to_a_delivery_is_found_by_its_id(store: Storage) -> None:
    assert isinstance(store, EventQuestions)
    question = await store.add_question_once("s1", "slack:Ev1", "what time is it?", 5)
    await store.save_reply("s1", "Noon.", 2, complete=True, turn=turn("s1"), question_id=question)
    assert await store.event_turn("slack:Ev1") == EventTurn(question, "Noon.")


async def test_an_interrupted_reply_leaves_the_delivery_unanswered(store: Storage) -> None:
    assert isinstance(store, EventQuestions)
    question = await store.add_question_once("s1", "slack:Ev2", "tell me more", 5)
    await store.save_reply("s1", "Half", 1, complete=False, turn=turn("s1"), question_id=question)
    assert await store.event_turn("slack:Ev2") == EventTurn(question, None)


async def test_a_reset_session_forgets_its_deliveries(store: Storage) -> None:
    assert isinstance(store, EventQuestions)
    old = await store.add_question_once("s1", "telegram:1:12", "hi", 2)
    await store.reset("s1")
    assert await store.event_turn("telegram:1:12") is None
    new = await store.add_question_once("s1", "telegram:1:12", "hi", 2)
    assert new != old and await store.count_messages("s1") == 1
