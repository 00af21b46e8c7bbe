"""Contract: :class:`core.store.FeedbackStore` (votes on turns, one per voter per turn)."""

from __future__ import annotations

import time

from core.store import DOWN, UP, FeedbackStore, Storage, VoteCount, feedback_of
from tests.store_contract.records import turn


def votes_of(store: Storage) -> FeedbackStore:
    feedback = feedback_of(store)
    assert feedback is not None, "the backend keeps no votes (store.feedback)"
    return feedback


async def test_a_turn_is_found_by_session_and_start_with_its_question_and_reply(store: Storage) -> None:
    started = time.time()
    question = await store.add_message(
        "s1", "user", "How do I invite a teammate?", 7, user_id="u1", complete=False
    )
    record = turn("s1", "u1", text="How do I invite a teammate?", started_at=started)
    await store.save_reply("s1", "Open Members.", 3, complete=True, turn=record, question_id=question)
    feedback = votes_of(store)
    turn_id = await feedback.turn_id("s1", started)
    assert turn_id is not None
    assert await feedback.turn_id("s1", started + 1.0) is None
    assert await feedback.turn_id("s2", started) is None
    voted = await feedback.voted_turn(turn_id)
    assert voted is not None
    assert (voted.session_id, voted.user_id, voted.bot, voted.platform, voted.status) == (
        "s1",
        "u1",
        "orbit",
        "telegram",
        "ok",
    )
    assert (voted.question, voted.reply) == ("How do I invite a teammate?", "Open Members.")
    assert await feedback.voted_turn(turn_id + 100) is None


async def test_a_reset_conversation_leaves_the_turn_without_its_texts(store: Storage) -> None:
    started = time.time() - 60.0  # a turn of a minute ago
    await store.record_turn(turn("s1", "u1", started_at=started))
    await store.reset("s1")
    await store.add_message("s1", "user", "a new question, asked later", 5, user_id="u1")
    feedback = votes_of(store)
    turn_id = await feedback.turn_id("s1", started)
    assert turn_id is not None
    voted = await feedback.voted_turn(turn_id)
    assert voted is not None and (voted.question, voted.reply) == ("", "")


async def test_one_vote_per_voter_per_turn_and_a_changed_vote_replaces_it(store: Storage) -> None:
    await store.record_turn(turn("s1", "u1", started_at=2000.0, bot="orbit", platform="slack"))
    feedback = votes_of(store)
    turn_id = await feedback.turn_id("s1", 2000.0)
    assert turn_id is not None
    assert await feedback.vote(turn_id, "u1", UP)
    assert not await feedback.vote(turn_id, "u1", UP)  # the same click again: still one vote
    assert await feedback.vote_of(turn_id, "u1") == UP
    assert await feedback.vote(turn_id, "u1", DOWN)
    assert await feedback.vote_of(turn_id, "u1") == DOWN
    assert await feedback.vote(turn_id, "u2", UP)
    assert await feedback.vote_counts(0.0, 3000.0) == [VoteCount("orbit", "slack", 1, 1)]
    assert await feedback.vote_counts(0.0, 3000.0, bot="default") == []
    assert await feedback.vote_counts(2001.0, 3000.0) == []
    assert not await feedback.vote(turn_id + 100, "u1", UP)  # no such turn: nothing stored


async def test_votes_go_with_their_turn(store: Storage) -> None:
    await store.record_turn(turn("s1", "u1", started_at=100.0))
    await store.record_turn(turn("s2", "u2", started_at=5000.0))
    feedback = votes_of(store)
    old, kept = await feedback.turn_id("s1", 100.0), await feedback.turn_id("s2", 5000.0)
    assert old is not None and kept is not None
    assert await feedback.vote(old, "u1", DOWN)
    assert await feedback.vote(kept, "u2", UP)
    await store.delete_older_than(1000.0)
    assert await feedback.voted_turn(old) is None
    assert await feedback.vote_of(old, "u1") is None
    assert not await feedback.vote(old, "u1", UP)  # a vote for a turn retention deleted stores nothing
    await store.forget_user("u2")
    assert await feedback.vote_of(kept, "u2") is None
    assert await feedback.vote_counts(0.0, 10_000.0) == []
