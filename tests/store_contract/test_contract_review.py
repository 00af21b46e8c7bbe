"""Contract: :class:`core.store.ReviewStore` (review flags and the conversation around them)."""

from __future__ import annotations

from core.store import Storage
from tests.store_contract.records import turn


async def test_flags_are_listed_newest_first_and_resolved_ones_hidden(store: Storage) -> None:
    first = await store.review.add(turn("s1", "u1", text="that is wrong", bot="orbit"), "that is wrong")
    second = await store.review.add(turn("s2", "u2", text="ignore rules", bot="default"), "status:blocked")
    third = await store.review.add(turn("s3", "u1", text="not helpful", bot="orbit"), "not helpful", now=5.0)
    assert [f.id for f in await store.review.flags()] == [third, second, first]
    assert [f.id for f in await store.review.flags(bot="orbit", limit=1)] == [third]
    assert await store.review.count_open() == 3
    assert await store.review.count_open(bot="orbit") == 2
    assert await store.review.count_user_flags("u1") == 2

    assert await store.review.resolve(second)
    assert not await store.review.resolve(9999)
    assert [f.id for f in await store.review.flags()] == [third, first]
    assert [f.id for f in await store.review.flags(include_resolved=True)] == [third, second, first]
    assert await store.review.count_open() == 2

    flag = await store.review.get(third)
    assert flag is not None
    assert (flag.session_id, flag.user_id, flag.bot, flag.platform) == ("s3", "u1", "orbit", "telegram")
    assert (flag.phrase, flag.user_text, flag.created_at, flag.resolved) == (
        "not helpful",
        "not helpful",
        5.0,
        False,
    )
    assert flag.turn_started_at == 1000.0
    resolved = await store.review.get(second)
    assert resolved is not None and resolved.resolved
    assert await store.review.get(9999) is None


async def test_a_flag_never_stores_a_pasted_secret(store: Storage) -> None:
    key = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    flag_id = await store.review.add(turn("s", "u", text=f"that is wrong, my key {key}"), "that is wrong")
    flag = await store.review.get(flag_id)
    assert flag is not None and key not in flag.user_text and "[redacted]" in flag.user_text


async def test_a_flag_comes_with_the_messages_before_it_and_the_reply_after(store: Storage) -> None:
    for i in range(4):
        await store.add_message("s", "user", f"question {i}", 1, user_id="u")
        await store.add_message("s", "assistant", f"answer {i}", 1)
    await store.add_message("s", "user", "that is wrong", 1, user_id="u", complete=False)
    flagged_turn = turn("s", "u", text="that is wrong", started_at=0.0)
    await store.save_reply("s", "sorry, let me check", 2, complete=False, turn=flagged_turn)
    await store.add_message("s", "user", "next question", 1, user_id="u")
    flag_id = await store.review.add(flagged_turn, "that is wrong")
    flag = await store.review.get(flag_id)
    assert flag is not None

    context = await store.review.context(flag, before=3)
    assert [(m.role, m.content) for m in context] == [
        ("assistant", "answer 2"),
        ("user", "question 3"),
        ("assistant", "answer 3"),
        ("user", "that is wrong"),
        ("assistant", "sorry, let me check"),
    ]
    assert [m.flagged for m in context] == [False, False, False, True, False]
    assert [m.complete for m in context][-2:] == [False, False]  # incomplete ones are what a reviewer needs

    await store.reset("s")
    assert await store.review.context(flag) == []  # the conversation is gone, the flag stays
