"""The in-memory window of each session's newest messages (core/recent_window.py) changes no prompt.

The cached store and the uncached read (``SQLiteStore(..., cache_windows=False)``) must give the model the
same prompts turn after turn, with failed turns (questions that stay incomplete), resets, and a second
process (a second store on its own connection) writing the same file; /reset, /forget and retention must be
seen at once, also when another connection made them.
"""

from __future__ import annotations

import functools
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from core.conversation import ConversationEngine
from core.sqlite_store import SQLiteStore
from core.store import TurnRecord
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said

SMALL_WINDOW = {"CHATBOT_MODEL": "gpt-4", "CHATBOT_CONTEXT_TOKENS": 1500, "CHATBOT_MAX_TOKENS": 200}
SESSION = "console:long"


def scripted(body: dict[str, Any]) -> str | Reply:
    """Answers by the question: "fail" questions get a server error (their turn fails, the question stays
    incomplete), the others an answer that names them."""
    question = body["messages"][-1]["content"]
    if "fail" in question.rsplit("\n\n", 1)[-1]:
        return Reply(status=500, error_message="backend down")
    return f"answer to <{question[-40:]}> " + "and some more words " * (len(question) % 7)


def question(i: int) -> str:
    text = f"question {i}: " + "tell me about the plan " * (i % 9)
    return text + " fail" if i % 37 == 5 else text


async def open_engines(
    stack: AsyncExitStack, fake_model: FakeOpenAI, path: Path, count: int, *, cached: bool
) -> list[ConversationEngine]:
    """``count`` engines on one file, each with its own store and connection (a process's worth)."""
    engines = []
    with pytest.MonkeyPatch.context() as patch:
        if not cached:
            patch.setattr("core.storage_url.SQLiteStore", functools.partial(SQLiteStore, cache_windows=False))
        for _ in range(count):
            engine = await stack.enter_async_context(engine_for(fake_model.base_url, path, **SMALL_WINDOW))
            assert isinstance(engine.store, SQLiteStore) and (engine.store._windows is not None) == cached
            engines.append(engine)
    return engines


async def talk(engine: ConversationEngine, fake_model: FakeOpenAI, text: str) -> tuple[str, Any]:
    before = len(fake_model.chat_requests)
    reply = await engine.reply_text(said(SESSION, text))
    sent = [r["messages"] for r in fake_model.chat_requests[before:]]
    return reply, sent


@pytest.mark.parametrize("writers", [1, 2], ids=["one process", "two processes"])
async def test_the_cached_window_gives_the_same_prompts_as_the_uncached_read_over_1000_turns(
    writers: int, fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    """Each engine learns its own token correction, so the reference has as many engines, taking the
    same turns: only the stores differ."""
    fake_model.default = scripted
    async with AsyncExitStack() as stack:
        cached = await open_engines(stack, fake_model, tmp_path / "cached.db", writers, cached=True)
        uncached = await open_engines(stack, fake_model, tmp_path / "reference.db", writers, cached=False)
        for i in range(1000):
            text = "/reset" if i == 600 else question(i)
            got = await talk(cached[i % writers], fake_model, text)
            expected = await talk(uncached[i % writers], fake_model, text)
            assert got == expected, f"turn {i}"
        last_prompt = " ".join(m["content"] for m in got[1][-1])
        assert "question 998:" in last_prompt and "question 700:" not in last_prompt  # history was trimmed


async def test_reset_forget_and_retention_by_another_connection_are_seen_at_once(db_path: Path) -> None:
    store, other = SQLiteStore(db_path), SQLiteStore(db_path)
    await store.open()
    await other.open()
    try:
        for session, user in (("a", "alice"), ("b", "bob"), ("c", "carol")):
            question_id = await store.add_message(
                session, "user", f"hi from {user}", 5, user_id=user, complete=False
            )
            record = TurnRecord(session, "hi", "hello", 0.0, 1.0, 5, 2, "ok", "m", user_id=user)
            await store.save_reply(session, "hello", 2, complete=True, turn=record, question_id=question_id)
            assert len(await store.recent_messages(session)) == 2  # read, so the window is cached

        await other.reset("a")
        assert await store.recent_messages("a") == []
        await other.forget_user("bob")
        assert await store.recent_messages("b") == []
        await other.delete_older_than(float("inf"))
        assert await store.recent_messages("c") == []
    finally:
        await store.close()
        await other.close()


async def test_reset_forget_and_retention_are_seen_at_once(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    try:
        for session, user in (("a", "alice"), ("b", "bob"), ("c", "carol")):
            await store.add_message(session, "user", f"hi from {user}", 5, user_id=user)
            await store.add_message(session, "assistant", "hello", 2)
            assert len(await store.recent_messages(session)) == 2

        await store.reset("a")
        assert await store.recent_messages("a") == []
        await store.forget_user("bob")
        assert await store.recent_messages("b") == []
        await store.delete_older_than(float("inf"))
        assert await store.recent_messages("c") == []
    finally:
        await store.close()


async def test_a_question_answered_after_the_window_was_read_joins_the_next_prompt(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    try:
        question_id = await store.add_message("s", "user", "what is the plan?", 5, complete=False)
        assert await store.recent_messages("s") == []  # awaiting its answer: not history yet
        record = TurnRecord("s", "what is the plan?", "this one", 0.0, 1.0, 5, 2, "ok", "m")
        await store.save_reply("s", "this one", 2, complete=True, turn=record, question_id=question_id)
        assert [m.content for m in await store.recent_messages("s")] == ["this one", "what is the plan?"]
    finally:
        await store.close()


async def test_a_window_read_in_pages_is_the_same_as_one_read(db_path: Path) -> None:
    store, uncached = SQLiteStore(db_path), SQLiteStore(db_path, cache_windows=False)
    await store.open()
    await uncached.open()
    try:
        for i in range(300):
            await store.add_message(
                "s", "user" if i % 2 == 0 else "assistant", f"m{i}", 3, complete=i % 11 != 3
            )
        for after_id, before_id, limit in (
            (0, None, 10),
            (0, 200, 50),
            (40, 290, 64),
            (0, 120, 500),
            (250, None, 3),
        ):
            got = await store.recent_messages("s", after_id=after_id, before_id=before_id, limit=limit)
            want = await uncached.recent_messages("s", after_id=after_id, before_id=before_id, limit=limit)
            assert got == want, (after_id, before_id, limit)
    finally:
        await store.close()
        await uncached.close()


async def test_cached_windows_stay_within_their_budget_and_still_answer_right(db_path: Path) -> None:
    store, uncached = SQLiteStore(db_path), SQLiteStore(db_path, cache_windows=False)
    assert store._windows is not None
    store._windows.max_chars, store._windows.rows_per_session = 5_000, 20
    await store.open()
    await uncached.open()
    try:
        for i in range(400):
            session = f"s{i % 10}"
            await store.add_message(session, "user" if i % 2 == 0 else "assistant", f"message {i} " * 5, 9)
            for limit in (5, 64):
                got = await store.recent_messages(session, limit=limit)
                assert got == await uncached.recent_messages(session, limit=limit)
            assert store._windows._chars <= 5_000 + 20 * (128 + 60)  # one session may pass it on its own
            assert all(len(entry.rows) <= 20 for entry in store._windows._entries.values())
    finally:
        await store.close()
        await uncached.close()
