"""Contract: :class:`core.store.ConversationStore` (messages, sessions, turns, user data, retention)."""

from __future__ import annotations

import asyncio
import time

from core.store import Storage
from tests.store_contract.records import document, turn


async def test_messages_come_back_newest_first_or_oldest_first_within_bounds(store: Storage) -> None:
    ids = [await store.add_message("s", "user", f"m{i}", i + 1, user_id="u") for i in range(5)]
    await store.add_message("other", "user", "elsewhere", 1)
    assert ids == sorted(ids) and len(set(ids)) == 5
    recent = await store.recent_messages("s", limit=3)
    assert [m.content for m in recent] == ["m4", "m3", "m2"]
    assert [m.tokens for m in recent] == [5, 4, 3]
    assert all(m.role == "user" and m.complete for m in recent)
    assert [m.content for m in await store.recent_messages("s", after_id=ids[1], before_id=ids[4])] == [
        "m3",
        "m2",
    ]
    between = await store.messages_between("s", after_id=ids[0], limit=2)
    assert [m.content for m in between] == ["m1", "m2"]
    assert [m.content for m in await store.messages_between("s", before_id=ids[1])] == ["m0"]
    assert await store.count_messages("s") == 5
    assert await store.count_messages("nobody") == 0


async def test_a_question_joins_the_history_only_with_its_complete_answer(store: Storage) -> None:
    question = await store.add_message("s", "user", "why?", 2, user_id="u", complete=False)
    assert await store.recent_messages("s") == []
    cut = await store.save_reply("s", "because", 1, complete=False, turn=turn("s", "u"), question_id=question)
    assert await store.recent_messages("s") == []
    assert await store.count_messages("s") == 2  # kept for the record, never fed back
    again = await store.add_message("s", "user", "why though?", 3, user_id="u", complete=False)
    answer = await store.save_reply(
        "s", "that's why", 2, complete=True, turn=turn("s", "u", started_at=1001.0), question_id=again
    )
    assert cut < again < answer
    assert [(m.role, m.content) for m in await store.messages_between("s")] == [
        ("user", "why though?"),
        ("assistant", "that's why"),
    ]
    assert await store.ledger.count_user_turns("u") == 2  # save_reply records its turn


async def test_a_recorded_turn_is_counted_without_a_message(store: Storage) -> None:
    await store.record_turn(turn("s", "u", status="command"))
    assert await store.ledger.count_user_turns("u") == 1
    assert await store.count_messages("s") == 0


async def test_session_state_keeps_the_summary_and_the_trim_notice(store: Storage) -> None:
    fresh = await store.session("s")
    assert (fresh.summary, fresh.summary_upto, fresh.summary_tokens, fresh.trim_notified) == ("", 0, 0, False)
    await store.set_summary("s", "they talked", 7, 3)
    await store.mark_trim_notified("s")
    state = await store.session("s")
    assert (state.summary, state.summary_upto, state.summary_tokens, state.trim_notified) == (
        "they talked",
        7,
        3,
        True,
    )
    await store.set_summary("s", "longer talk", 9, 4)
    assert (await store.session("s")).trim_notified  # a new summary keeps the notice


async def test_reset_forgets_the_session_and_says_how_many_messages(store: Storage) -> None:
    await store.add_message("s", "user", "a", 1)
    await store.add_message("s", "assistant", "b", 1)
    await store.set_summary("s", "sum", 1, 1)
    await store.add_message("t", "user", "kept", 1)
    assert await store.reset("s") == 2
    assert await store.count_messages("s") == 0
    assert (await store.session("s")).summary == ""
    assert await store.count_messages("t") == 1
    assert await store.reset("s") == 0


async def test_forgetting_a_user_deletes_everything_about_them_and_nothing_else(store: Storage) -> None:
    ada, bob = "telegram:1", "telegram:2"
    await store.add_message("private", "user", "my order 4411", 3, user_id=ada)
    await store.add_message("private", "assistant", "noted", 1)
    await store.add_message("group", "user", "hello group", 2, user_id=ada)
    await store.add_message("group", "user", "hi all", 2, user_id=bob)
    await store.add_message("group", "assistant", "hello both", 2)
    await store.record_turn(turn("private", ada, started_at=1000.0))
    await store.record_turn(turn("group", bob, started_at=1001.0))
    await store.review.add(turn("private", ada, text="that is wrong", started_at=1000.0), "that is wrong")
    await store.review.add(turn("elsewhere", ada, text="not helpful", started_at=5.0), "not helpful")
    await store.review.add(turn("group", bob, text="wrong answer", started_at=1001.0), "wrong answer")
    await store.begin_reply("private", "telegram", "orbit", ada, {"chat": 1})
    bobs_reply = await store.begin_reply("group", "telegram", "orbit", bob, {"chat": -5})
    await store.knowledge.write_documents("orbit", [document("docs/a.md", "Orbit Pro has boards.")])

    assert await store.forget_user(ada) == 3  # their two messages and the reply in their own session
    assert [m.content for m in await store.messages_between("group")] == ["hi all", "hello both"]
    assert await store.count_messages("private") == 0
    assert await store.ledger.count_user_turns(ada) == 0
    assert await store.ledger.count_user_turns(bob) == 1
    assert await store.review.count_user_flags(ada) == 0
    assert [f.user_id for f in await store.review.flags(include_resolved=True)] == [bob]
    assert [r.id for r in await store.unfinished_replies("telegram", "orbit")] == [bobs_reply]
    assert await store.knowledge.chunk_count("orbit") == 1  # knowledge is the bot's, not the user's
    assert await store.forget_user(ada) == 0


async def test_forgetting_an_empty_user_id_deletes_nothing(store: Storage) -> None:
    await store.add_message("s", "user", "anonymous", 1)
    await store.add_message("s", "assistant", "reply", 1)
    assert await store.forget_user("") == 0
    assert await store.count_messages("s") == 2


async def test_retention_deletes_what_is_older_than_the_cutoff_in_every_table(store: Storage) -> None:
    await store.add_message("s", "user", "old", 1, user_id="u")
    await store.begin_reply("s", "telegram", "orbit", "u", {"chat": 1})
    await asyncio.sleep(0.05)
    cutoff = time.time()
    await asyncio.sleep(0.05)
    await store.add_message("s", "user", "new", 1, user_id="u")
    await store.record_turn(turn("s", "u", started_at=cutoff - 100))
    await store.record_turn(turn("s", "u", started_at=cutoff + 100))
    await store.review.add(turn("s", "u", started_at=cutoff - 50), "old flag", now=cutoff - 50)
    await store.review.add(turn("s", "u", started_at=cutoff + 50), "new flag", now=cutoff + 50)
    await store.knowledge.write_documents("orbit", [document("docs/a.md", "Passage.")])

    assert await store.delete_older_than(cutoff) == 1
    assert [m.content for m in await store.messages_between("s")] == ["new"]
    assert [t.started_at for t in await store.ledger.turns_between(0, cutoff + 1000)] == [cutoff + 100]
    assert [f.phrase for f in await store.review.flags()] == ["new flag"]
    assert await store.unfinished_replies("telegram", "orbit") == []
    assert await store.knowledge.chunk_count("orbit") == 1


async def test_a_replys_tool_steps_are_kept_with_it_and_go_when_it_goes(store: Storage) -> None:
    q1 = await store.add_message("s", "user", "weather?", 2, user_id="u", complete=False)
    steps = '{"final_from": 0, "steps": [{"text": "", "calls": [], "results": {}}]}'
    r1 = await store.save_reply(
        "s", "sunny", 40, complete=True, turn=turn("s", "u"), question_id=q1, tools=steps
    )
    q2 = await store.add_message("s", "user", "and now?", 2, user_id="u", complete=False)
    r2 = await store.save_reply(
        "s", "half", 1, complete=False, turn=turn("s", "u"), question_id=q2, tools=steps
    )
    plain = await store.save_reply("s", "no tools", 2, complete=True, turn=turn("s", "u"))
    assert await store.tool_exchanges("s", after_id=0, before_id=plain + 1) == {r1: steps}
    assert r2 not in await store.tool_exchanges("s", after_id=0, before_id=r2 + 1), (
        "incomplete: never replayed"
    )
    assert await store.tool_exchanges("s", after_id=r1, before_id=plain + 1) == {}
    assert [m.tokens for m in await store.recent_messages("s") if m.id == r1] == [40]
    await store.reset("s")
    assert await store.tool_exchanges("s", after_id=0, before_id=plain + 1) == {}
