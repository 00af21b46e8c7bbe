"""The SQLite store: schema, WAL, persistence, incomplete replies, reset."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from core.sqlite_store import MIGRATIONS, SCHEMA_VERSION, SQLiteStore, schema_statements, write_transaction
from core.store import TurnRecord
from tests.fakes.openai_server import FakeOpenAI
from tests.support.cli import run_chatbot


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


async def test_a_write_after_a_failed_commit_is_stored(db_path: Path) -> None:
    """COMMIT fails for real (a deferred foreign key); the connection must take the next write."""
    store = SQLiteStore(db_path)
    await store.open()
    await store.db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    await store.db.execute(
        "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        async with write_transaction(store.db, asyncio.Lock()) as db:
            await db.execute("INSERT INTO child (parent_id) VALUES (99)")  # fails only at COMMIT

    await store.add_message("s", "user", "still here", 3)
    turn = TurnRecord("s", "still here", "yes", 0.0, 1.0, 3, 1, "ok", "m")
    await store.save_reply("s", "yes", 1, complete=True, turn=turn)
    await store.close()

    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT role, content FROM messages ORDER BY id").fetchall() == [
            ("user", "still here"),
            ("assistant", "yes"),
        ]
        assert db.execute("SELECT count(*) FROM child").fetchone()[0] == 0


async def test_eight_connections_opening_one_fresh_database_at_once_all_succeed(db_path: Path) -> None:
    stores = [SQLiteStore(db_path) for _ in range(8)]
    results = await asyncio.gather(*(store.open() for store in stores), return_exceptions=True)
    for store in stores:
        await store.close()
    assert [r for r in results if r is not None] == []
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "messages", "turns"} <= tables


def _open_store_in_a_process(path: str) -> str:
    async def main() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.close()

    try:
        asyncio.run(main())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def test_eight_processes_starting_on_one_fresh_database_all_succeed(db_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(8) as pool:
        errors = pool.map(_open_store_in_a_process, [str(db_path)] * 8)
    assert errors == [""] * 8
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_a_database_path_that_is_a_folder_stops_chat_with_one_line(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    env = {"OPENAI_BASE_URL": fake_model.base_url, "CHATBOT_MODEL": "gpt-4", "CHATBOT_DB": str(folder)}
    code, _out, err = await run_chatbot(["chat"], b"hello\n", tmp_path, env)
    assert code != 0
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert "database" in err and str(folder) in err


async def test_a_database_with_a_newer_schema_stops_run_with_one_line(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "chatbot.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    env = {
        "OPENAI_BASE_URL": fake_model.base_url,
        "CHATBOT_MODEL": "gpt-4",
        "CHATBOT_DB": str(path),
        "TELEGRAM_BOT_TOKEN": "1:x",
        "TELEGRAM_BASE_URL": "http://127.0.0.1:9",
    }
    code, _out, err = await run_chatbot(["run", "--platform", "telegram"], b"", tmp_path, env)
    assert code != 0
    problems = [line for line in err.splitlines() if not line.startswith("INFO: ")]  # start-up notes
    assert len(problems) == 1 and "Traceback" not in err, err
    assert "newer than this bot knows" in err


async def test_a_write_cancelled_while_waiting_for_the_database_lock_leaves_the_store_writable(
    db_path: Path,
) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock: our BEGIN waits for it
    waiting = asyncio.create_task(store.reset("s"))
    await asyncio.sleep(0.3)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    other.execute("ROLLBACK")  # the cancelled BEGIN now goes through on the database thread
    other.close()

    turn = TurnRecord("s", "after", "yes", 0.0, 1.0, 3, 1, "ok", "m")
    await store.save_reply("s", "yes", 1, complete=True, turn=turn)
    await store.close()
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT content FROM messages").fetchall() == [("yes",)]


async def test_six_chat_commands_started_together_on_a_fresh_database_all_answer(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "fresh" / "chatbot.db"
    env = {"OPENAI_BASE_URL": fake_model.base_url, "CHATBOT_MODEL": "gpt-4", "CHATBOT_DB": str(path)}
    results = await asyncio.gather(
        *(run_chatbot(["chat", "--session", f"s{n}"], b"hello\n", tmp_path, env) for n in range(6))
    )
    assert [(code, "Traceback" in err) for code, _out, err in results] == [(0, False)] * 6
    assert all("You said: hello" in out for _code, out, _err in results)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# What the review and knowledge features created themselves, on their own connections, before the store's
# migrations 5 and 6 did (features/review/flags.py and features/knowledge/store.py at schema version 4).
VERSION_4_FEATURE_TABLES = """
CREATE TABLE IF NOT EXISTS review_flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, user_id TEXT NOT NULL DEFAULT '',
    bot TEXT NOT NULL DEFAULT '', platform TEXT NOT NULL DEFAULT '', turn_started_at REAL NOT NULL,
    phrase TEXT NOT NULL, user_text TEXT NOT NULL, created_at REAL NOT NULL,
    resolved INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS review_flags_open ON review_flags (resolved, id);
CREATE INDEX IF NOT EXISTS review_flags_by_turn ON review_flags (session_id, turn_started_at);
CREATE TRIGGER IF NOT EXISTS review_flags_follow_turns AFTER DELETE ON turns
BEGIN
    DELETE FROM review_flags WHERE session_id = OLD.session_id AND turn_started_at = OLD.started_at;
END;
CREATE TABLE IF NOT EXISTS knowledge_documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT, bot TEXT NOT NULL, path TEXT NOT NULL, source TEXT NOT NULL,
    content_hash TEXT NOT NULL, recipe TEXT NOT NULL, chunks INTEGER NOT NULL, tokens INTEGER NOT NULL,
    ingested_at REAL NOT NULL, UNIQUE (bot, path)
);
CREATE TABLE IF NOT EXISTS knowledge_chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES knowledge_documents (id) ON DELETE CASCADE,
    bot TEXT NOT NULL, source TEXT NOT NULL, section TEXT NOT NULL, text TEXT NOT NULL,
    tokens INTEGER NOT NULL, embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS knowledge_chunks_by_bot ON knowledge_chunks (bot, id);
CREATE INDEX IF NOT EXISTS knowledge_chunks_by_document ON knowledge_chunks (document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_fts USING fts5 (
    source, section, text, content = 'knowledge_chunks', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS knowledge_chunks_indexed AFTER INSERT ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (rowid, source, section, text) VALUES (new.id, new.source, new.section, new.text);
END;
CREATE TRIGGER IF NOT EXISTS knowledge_chunks_unindexed AFTER DELETE ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, source, section, text)
    VALUES ('delete', old.id, old.source, old.section, old.text);
END;
CREATE TABLE IF NOT EXISTS knowledge_versions (bot TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""


def version_4_database(path: Path) -> None:
    """A database as the bot left it at schema version 4, with review flags and a knowledge base."""
    with sqlite3.connect(path) as db:
        for script in MIGRATIONS[:4]:
            for statement in schema_statements(script):
                db.execute(statement)
        db.execute("PRAGMA user_version = 4")
        db.executescript(VERSION_4_FEATURE_TABLES)
        db.execute(
            "INSERT INTO turns (session_id, user_id, started_at, latency_ms, prompt_tokens, completion_tokens, "
            "status, model, bot, platform) VALUES ('s', 'telegram:1', 100.0, 5, 3, 2, 'ok', 'm', 'orbit', 'telegram')"
        )
        db.execute(
            "INSERT INTO review_flags (session_id, user_id, bot, platform, turn_started_at, phrase, user_text, "
            "created_at) VALUES ('s', 'telegram:1', 'orbit', 'telegram', 100.0, 'that is wrong', "
            "'that is wrong', 101.0)"
        )
        db.execute(
            "INSERT INTO knowledge_documents (bot, path, source, content_hash, recipe, chunks, tokens, "
            "ingested_at) VALUES ('orbit', 'docs/plans.md', 'plans.md', 'h', 'r', 1, 6, 50.0)"
        )
        db.execute(
            "INSERT INTO knowledge_chunks (document_id, bot, source, section, text, tokens, embedding) "
            "VALUES (1, 'orbit', 'plans.md', 'Pro', 'Orbit Pro includes unlimited boards.', 6, ?)",
            (np.array([0.6, 0.8], dtype="<f4").tobytes(),),
        )
        db.execute("INSERT INTO knowledge_versions (bot, version) VALUES ('orbit', 1)")


async def test_a_version_4_database_keeps_its_review_flags_and_knowledge_when_upgraded(db_path: Path) -> None:
    version_4_database(db_path)
    store = SQLiteStore(db_path)
    await store.open()
    try:
        flags = await store.review.flags()
        assert [(f.session_id, f.phrase, f.user_id) for f in flags] == [("s", "that is wrong", "telegram:1")]
        assert [d.path for d in await store.knowledge.documents("orbit")] == ["docs/plans.md"]
        hits = await store.knowledge.keyword_search("orbit", "unlimited boards", 5)
        assert [chunk_id for chunk_id, _ in hits] == [1]
        assert (await store.knowledge.vectors("orbit")).matrix.tolist() == [
            [pytest.approx(0.6), pytest.approx(0.8)]
        ]
        await store.forget_user("telegram:1")
        assert await store.review.flags(include_resolved=True) == []
    finally:
        await store.close()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
