"""The SQLite store: schema, WAL, persistence, incomplete replies, reset."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.sqlite_store import SCHEMA_VERSION, SQLiteStore
from core.store import TurnRecord


async def test_schema_is_versioned_and_wal(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    await store.close()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_newer_schema_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store = SQLiteStore(db_path)
    with pytest.raises(RuntimeError, match="newer than this bot knows"):
        await store.open()
    await store.close()


async def test_messages_survive_reopen_and_incomplete_ones_are_not_history(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    first = await store.add_message("s", "user", "hello", 5, user_id="u1")
    turn = TurnRecord("s", "hello", "partial", 0.0, 1.0, 5, 1, "interrupted", "m")
    await store.save_reply("s", "partial", 3, complete=False, turn=turn)
    await store.add_message("s", "user", "again", 5)
    await store.close()

    store = SQLiteStore(db_path)
    await store.open()
    recent = await store.recent_messages("s")
    assert [(m.role, m.content) for m in recent] == [("user", "again"), ("user", "hello")]
    assert recent[-1].id == first and recent[-1].tokens == 5
    assert await store.count_messages("s") == 3
    assert await store.reset("s") == 3
    assert await store.recent_messages("s") == []
    await store.close()


async def test_summary_and_notice_flag_are_kept_per_session(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    await store.set_summary("a", "they talked", 7, 12)
    await store.mark_trim_notified("a")
    state = await store.session("a")
    assert (state.summary, state.summary_upto, state.summary_tokens, state.trim_notified) == (
        "they talked",
        7,
        12,
        True,
    )
    assert (await store.session("b")).summary == ""
    await store.close()


async def test_paging_by_id_window(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    ids = [await store.add_message("s", "user", f"m{i}", 1) for i in range(10)]
    page = await store.recent_messages("s", after_id=ids[2], before_id=ids[8], limit=3)
    assert [m.content for m in page] == ["m7", "m6", "m5"]
    await store.close()


async def test_forget_user_removes_their_sessions_and_their_group_messages(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    await store.add_message("telegram:1", "user", "my private stuff", 3, user_id="telegram:1")
    await store.add_message("telegram:1", "assistant", "a reply to it", 3)
    await store.add_message("telegram:-5", "user", "group hello", 2, user_id="telegram:1")
    await store.add_message("telegram:-5", "user", "someone else", 2, user_id="telegram:2")
    await store.add_message("telegram:-5", "assistant", "group reply", 2)
    assert await store.forget_user("telegram:1") == 3
    assert await store.recent_messages("telegram:1") == []
    assert [m.content for m in await store.recent_messages("telegram:-5")] == ["group reply", "someone else"]
    await store.close()


async def test_retention_deletes_old_messages(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    await store.add_message("s", "user", "old", 1)
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE messages SET created_at = 1000")
    await store.add_message("s", "user", "new", 1)
    assert await store.delete_older_than(2000) == 1
    assert [m.content for m in await store.recent_messages("s")] == ["new"]
    await store.close()


async def test_a_complete_reply_completes_its_question_and_a_failed_one_does_not(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    turn = TurnRecord("s", "q", "a", 0.0, 1.0, 5, 1, "ok", "m")
    failed = await store.add_message("s", "user", "failed question", 5, complete=False)
    await store.save_reply("s", "partial", 3, complete=False, turn=turn, question_id=failed)
    answered = await store.add_message("s", "user", "answered question", 5, complete=False)
    await store.save_reply("s", "the answer", 3, complete=True, turn=turn, question_id=answered)
    history = await store.messages_between("s")
    await store.close()
    assert [m.content for m in history] == ["answered question", "the answer"]  # oldest first, complete only
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT content, complete FROM messages ORDER BY id").fetchall() == [
            ("failed question", 0),
            ("partial", 0),
            ("answered question", 1),
            ("the answer", 1),
        ]
