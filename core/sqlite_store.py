"""The default store: one SQLite file through aiosqlite, on one connection (:mod:`core.sqlite_connection`).

:class:`SQLiteStore` is the conversation store (this module) and the reply journal
(:mod:`core.sqlite_journal`) itself, and holds the other interfaces of :class:`core.store.Storage` as
attributes sharing its connection and write lock: ``ledger``
(:mod:`core.sqlite_ledger`), ``review`` (:mod:`core.sqlite_review`) and ``knowledge``
(:mod:`core.sqlite_knowledge`). Every table, features' included, is created by :data:`MIGRATIONS`.

Each active session's newest messages are also kept in memory (:mod:`core.recent_window`), so a turn reads
its window without re-reading thousands of rows; every write here that changes messages keeps that copy
right, and a write by another connection (another process) is noticed with ``PRAGMA data_version``.

WAL mode (readers never wait for the writer), a schema versioned with ``PRAGMA user_version`` and applied
by ordered migrations, and one transaction per write: a single statement where one suffices (each is its own
transaction in autocommit mode), ``BEGIN IMMEDIATE ... COMMIT`` where a write spans statements. Every call
is a round trip to aiosqlite's database thread, so the hot path keeps them few.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from itertools import starmap
from pathlib import Path

import aiosqlite

from core.errors import ConfigError
from core.recent_window import RecentWindows
from core.sqlite_connection import (
    SharedConnection,
    connect,
    schema_statements,
    write_transaction,
)
from core.sqlite_feedback import SQLiteFeedback
from core.sqlite_journal import SQLiteJournal
from core.sqlite_knowledge import SQLiteKnowledge
from core.sqlite_ledger import SQLiteLedger
from core.sqlite_review import SQLiteReview
from core.store import ChatChoice, EventTurn, Role, SessionState, Storage, StoredMessage, TurnRecord

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SQLiteStore",
    "as_storage",
    "connect",
    "schema_statements",
    "write_transaction",
]

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: sessions, messages and turns
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        summary TEXT NOT NULL DEFAULT '',
        summary_upto INTEGER NOT NULL DEFAULT 0,
        summary_tokens INTEGER NOT NULL DEFAULT 0,
        trim_notified INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        complete INTEGER NOT NULL DEFAULT 1,
        user_id TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE INDEX messages_by_session ON messages (session_id, id);
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL,
        latency_ms REAL NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        status TEXT NOT NULL,
        model TEXT NOT NULL
    );
    CREATE INDEX turns_by_time ON turns (started_at);
    """,
    # 2: a message insert touches its session in the same statement, so storing a message is one
    # atomic statement (one round trip to the database thread) instead of a four-step transaction
    """
    CREATE TRIGGER messages_touch_session AFTER INSERT ON messages
    BEGIN
        INSERT INTO sessions (id, created_at, updated_at) VALUES (NEW.session_id, NEW.created_at, NEW.created_at)
        ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at;
    END
    """,
    # 3: which bot and platform a turn belongs to (stats per bot and platform), and per-user lookups
    """
    ALTER TABLE turns ADD COLUMN bot TEXT NOT NULL DEFAULT '';
    ALTER TABLE turns ADD COLUMN platform TEXT NOT NULL DEFAULT '';
    CREATE INDEX turns_by_user ON turns (user_id, started_at);
    CREATE INDEX messages_by_user ON messages (user_id)
    """,
    # 4: replies being written on a platform, so a start after a crash can finish the half-written message
    """
    CREATE TABLE replies_in_flight (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL,
        platform TEXT NOT NULL,
        bot TEXT NOT NULL,
        user_id TEXT NOT NULL DEFAULT '',
        address TEXT NOT NULL,
        message TEXT,
        shown TEXT NOT NULL DEFAULT '',
        turn_recorded INTEGER NOT NULL DEFAULT 0,
        started_at REAL NOT NULL
    );
    CREATE INDEX replies_in_flight_by_platform ON replies_in_flight (platform, bot)
    """,
    # 5: review flags (features/review), created by the review feature itself before this version, hence
    # IF NOT EXISTS: a version-4 database that already has the table keeps it and its rows
    """
    CREATE TABLE IF NOT EXISTS review_flags (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL DEFAULT '',
        bot TEXT NOT NULL DEFAULT '',
        platform TEXT NOT NULL DEFAULT '',
        turn_started_at REAL NOT NULL,
        phrase TEXT NOT NULL,
        user_text TEXT NOT NULL,
        created_at REAL NOT NULL,
        resolved INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS review_flags_open ON review_flags (resolved, id);
    CREATE INDEX IF NOT EXISTS review_flags_by_turn ON review_flags (session_id, turn_started_at);
    CREATE INDEX IF NOT EXISTS review_flags_by_user ON review_flags (user_id);
    CREATE INDEX IF NOT EXISTS replies_in_flight_by_user ON replies_in_flight (user_id);
    CREATE TRIGGER IF NOT EXISTS review_flags_follow_turns AFTER DELETE ON turns
    BEGIN
        DELETE FROM review_flags WHERE session_id = OLD.session_id AND turn_started_at = OLD.started_at;
    END
    """,
    # 6: the knowledge base (features/knowledge), also created by the feature before this version
    """
    CREATE TABLE IF NOT EXISTS knowledge_documents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        bot TEXT NOT NULL,
        path TEXT NOT NULL,
        source TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        recipe TEXT NOT NULL,
        chunks INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        ingested_at REAL NOT NULL,
        UNIQUE (bot, path)
    );
    CREATE TABLE IF NOT EXISTS knowledge_chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        document_id INTEGER NOT NULL REFERENCES knowledge_documents (id) ON DELETE CASCADE,
        bot TEXT NOT NULL,
        source TEXT NOT NULL,
        section TEXT NOT NULL,
        text TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        embedding BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS knowledge_chunks_by_bot ON knowledge_chunks (bot, id);
    CREATE INDEX IF NOT EXISTS knowledge_chunks_by_document ON knowledge_chunks (document_id);
    CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_fts USING fts5 (
        source, section, text,
        content = 'knowledge_chunks', content_rowid = 'id',
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER IF NOT EXISTS knowledge_chunks_indexed AFTER INSERT ON knowledge_chunks BEGIN
        INSERT INTO knowledge_fts (rowid, source, section, text)
        VALUES (new.id, new.source, new.section, new.text);
    END;
    CREATE TRIGGER IF NOT EXISTS knowledge_chunks_unindexed AFTER DELETE ON knowledge_chunks BEGIN
        INSERT INTO knowledge_fts (knowledge_fts, rowid, source, section, text)
        VALUES ('delete', old.id, old.source, old.section, old.text);
    END;
    CREATE TABLE IF NOT EXISTS knowledge_versions (
        bot TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    );
    """,
    # 7: feedback votes (👍 / 👎 under replies, adapters/feedback.py): one per voter per turn, deleted
    # with their turn; turns are found by session and start (the reference the buttons carry)
    """
    CREATE TABLE turn_votes (
        turn_id INTEGER NOT NULL,
        voter TEXT NOT NULL,
        vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        voted_at REAL NOT NULL,
        PRIMARY KEY (turn_id, voter)
    );
    CREATE INDEX turns_by_session ON turns (session_id, started_at);
    CREATE TRIGGER turn_votes_follow_turns AFTER DELETE ON turns
    BEGIN
        DELETE FROM turn_votes WHERE turn_id = OLD.id;
    END
    """,
    # 8: tool calls and their results (issue 18), kept with the reply they led to (core/tools.py)
    """
    ALTER TABLE messages ADD COLUMN tools TEXT NOT NULL DEFAULT ''
    """,
    # 9: bots file (issue 16): each conversation's /mode and /model choice
    """
    CREATE TABLE IF NOT EXISTS chat_choices (
        session_id TEXT PRIMARY KEY,
        mode TEXT,
        model TEXT,
        updated_at REAL NOT NULL
    );
    """,
    # 10 (work queue, issue 14): questions keyed by the platform's delivery id, so a job retried after its
    # worker died stores the user's message once (core.store.EventQuestions)
    """
    CREATE TABLE message_events (
        event_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX message_events_by_time ON message_events (created_at)
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
NO_UPPER = 2**62  # an id above every message's
FILL_SLACK = 16  # rows read beyond a request when filling the window: the turn's own incomplete question


class SQLiteStore(SQLiteJournal):
    """:class:`core.store.ConversationStore` on a SQLite file.

    ``cache_windows=False`` reads every window from the file (the reference the cached reads are tested
    and benchmarked against).
    """

    def __init__(self, path: str | Path, *, cache_windows: bool = True) -> None:
        self.path = Path(path)
        self._windows = RecentWindows() if cache_windows else None
        self._data_version: int | None = None  # PRAGMA data_version when the windows were last validated
        self._message_writes = 0  # this store's message writes, started or finished
        self._writing_messages = 0  # this store's message writes in progress
        self._shared = SharedConnection()
        self._write_lock = self._shared.write_lock
        self._ledger = SQLiteLedger(self._shared)
        self._review = SQLiteReview(self._shared)
        self._knowledge = SQLiteKnowledge(self._shared)
        self._feedback = SQLiteFeedback(self._shared)

    @property
    def db(self) -> aiosqlite.Connection:
        """The connection: for this module and its table groups (and tests that inspect the file)."""
        return self._shared.db

    @property
    def ledger(self) -> SQLiteLedger:
        return self._ledger

    @property
    def review(self) -> SQLiteReview:
        return self._review

    @property
    def knowledge(self) -> SQLiteKnowledge:
        return self._knowledge

    @property
    def feedback(self) -> SQLiteFeedback:
        return self._feedback

    async def open(self) -> None:
        """Connect and bring the schema up to date; on failure nothing is left open."""
        try:
            self._shared.connection = await connect(self.path)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the database {self.path} ({exc}); check CHATBOT_DB") from exc
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def _migrate(self) -> None:
        """Apply the missing migrations in one ``BEGIN IMMEDIATE`` transaction.

        The version is read inside the write lock, so of several processes starting on one fresh file
        the first migrates and the others wait, then find the schema current. ``executescript`` is not
        used: it commits whatever transaction is open before it runs.
        """
        async with write_transaction(self.db, self._write_lock) as db:
            async with db.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this bot knows "
                    f"({SCHEMA_VERSION}); upgrade the bot"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in schema_statements(MIGRATIONS[number]):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {number + 1}")
                log.info("database %s migrated to schema version %d", self.path, number + 1)

    def _transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        return write_transaction(self.db, self._write_lock)

    async def close(self) -> None:
        self._knowledge.clear_caches()
        if self._windows is not None:
            self._windows.clear()
        self._data_version = None
        if self._shared.connection is not None:
            await self._shared.connection.close()
            self._shared.connection = None

    async def _insert_message(
        self, session_id: str, role: Role, content: str, tokens: int, user_id: str, complete: bool, now: float
    ) -> int:
        cursor = await self.db.execute(
            "INSERT INTO messages (session_id, role, content, tokens, complete, user_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, role, content, tokens, int(complete), user_id, now),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def _insert_turn(self, turn: TurnRecord) -> None:
        await self.db.execute(
            "INSERT INTO turns (session_id, user_id, started_at, latency_ms, prompt_tokens, "
            "completion_tokens, status, model, bot, platform) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                turn.session_id,
                turn.user_id,
                turn.started_at,
                turn.latency_ms,
                turn.prompt_tokens,
                turn.completion_tokens,
                turn.status,
                turn.model,
                turn.bot,
                turn.platform,
            ),
        )

    @contextmanager
    def _changing_messages(self, session_id: str | None) -> Iterator[RecentWindows | None]:
        """Around a write to messages: windows being filled meanwhile are not kept (they may have read
        half of it), and a write that failed drops the session's window (everyone's for ``None``)."""
        self._writing_messages += 1
        self._message_writes += 1
        done = False
        try:
            yield self._windows
            done = True
        finally:
            self._writing_messages -= 1
            self._message_writes += 1
            if not done and self._windows is not None:
                if session_id is None:
                    self._windows.clear()
                else:
                    self._windows.drop(session_id)

    async def add_message(
        self,
        session_id: str,
        role: Role,
        content: str,
        tokens: int,
        *,
        user_id: str = "",
        complete: bool = True,
    ) -> int:
        now = time.time()
        with self._changing_messages(session_id) as windows:
            async with self._write_lock:  # one statement: its own transaction (the trigger runs inside it)
                message_id = await self._insert_message(
                    session_id, role, content, tokens, user_id, complete, now
                )
            if windows is not None:
                windows.added(session_id, StoredMessage(message_id, role, content, tokens, now, complete))
        return message_id

    async def save_reply(
        self,
        session_id: str,
        content: str,
        tokens: int,
        *,
        complete: bool,
        turn: TurnRecord,
        question_id: int | None = None,
        tools: str = "",
    ) -> int:
        now = time.time()
        with self._changing_messages(session_id) as windows:
            async with self._transaction():
                message_id = await self._insert_message(
                    session_id, "assistant", content, tokens, "", complete, now
                )
                if tools:
                    await self.db.execute("UPDATE messages SET tools = ? WHERE id = ?", (tools, message_id))
                if complete and question_id is not None:  # answered: the question joins the model's context
                    await self.db.execute(
                        "UPDATE messages SET complete = 1 WHERE id = ? AND session_id = ?",
                        (question_id, session_id),
                    )
                await self._insert_turn(turn)
            if windows is not None:
                reply = StoredMessage(message_id, "assistant", content, tokens, now, complete)
                windows.added(session_id, reply)
                if complete and question_id is not None:
                    windows.completed(session_id, question_id)
        return message_id

    async def record_turn(self, turn: TurnRecord) -> None:
        async with self._transaction():
            await self._insert_turn(turn)

    async def recent_messages(
        self, session_id: str, *, after_id: int = 0, before_id: int | None = None, limit: int = 64
    ) -> list[StoredMessage]:
        upper = before_id if before_id is not None else NO_UPPER
        windows = await self._current_windows()
        if windows is not None:
            found = windows.read(session_id, after_id, upper, limit)
            if found is None:
                found = await self._fill_window(windows, session_id, after_id, upper, limit)
            if found is not None:
                return found
        rows = await self.db.execute_fetchall(
            "SELECT id, role, content, tokens, created_at FROM messages "
            "WHERE session_id = ? AND id > ? AND id < ? AND complete = 1 ORDER BY id DESC LIMIT ?",
            (session_id, after_id, upper, limit),
        )
        return list(starmap(StoredMessage, rows))

    async def _current_windows(self) -> RecentWindows | None:
        """The cached windows, emptied first if another connection committed since they were last
        validated (``PRAGMA data_version`` changes with every other connection's commit, never with
        this one's)."""
        windows = self._windows
        if windows is None:
            return None
        rows = list(await self.db.execute_fetchall("PRAGMA data_version"))
        version = int(rows[0][0])
        if version != self._data_version:
            windows.clear()
            self._data_version = version
        return windows

    async def _fill_window(
        self, windows: RecentWindows, session_id: str, after_id: int, upper: int, limit: int
    ) -> list[StoredMessage] | None:
        """Read what the session's window lacks for a request into it, then answer from it; ``None`` when
        the window cannot take the rows (they lie below what it holds, or a write ran meanwhile)."""
        lower = windows.lower(session_id)
        if lower is not None and upper <= lower:
            return None
        fill_upper = NO_UPPER if lower is None else lower + 1
        if self._writing_messages:
            return None
        writes = self._message_writes
        want = limit + FILL_SLACK
        rows = await self.db.execute_fetchall(
            "SELECT id, role, content, tokens, created_at, complete FROM messages "
            "WHERE session_id = ? AND id > ? AND id < ? ORDER BY id DESC LIMIT ?",
            (session_id, after_id, fill_upper, want),
        )
        if writes != self._message_writes:
            return None
        found = [
            StoredMessage(i, role, text, tokens, at, bool(done)) for i, role, text, tokens, at, done in rows
        ]
        windows.merge(session_id, after_id, fill_upper, want, found)
        return windows.read(session_id, after_id, upper, limit)

    async def tool_exchanges(self, session_id: str, *, after_id: int, before_id: int) -> dict[int, str]:
        rows = await self.db.execute_fetchall(
            "SELECT id, tools FROM messages WHERE session_id = ? AND id > ? AND id < ? AND complete = 1 "
            "AND tools != ''",
            (session_id, after_id, before_id),
        )
        return {int(row[0]): str(row[1]) for row in rows}

    async def messages_between(
        self, session_id: str, *, after_id: int = 0, before_id: int | None = None, limit: int = 64
    ) -> list[StoredMessage]:
        upper = before_id if before_id is not None else 2**62
        rows = await self.db.execute_fetchall(
            "SELECT id, role, content, tokens, created_at FROM messages "
            "WHERE session_id = ? AND id > ? AND id < ? AND complete = 1 ORDER BY id LIMIT ?",
            (session_id, after_id, upper, limit),
        )
        return list(starmap(StoredMessage, rows))

    async def session(self, session_id: str) -> SessionState:
        rows = list(
            await self.db.execute_fetchall(
                "SELECT summary, summary_upto, summary_tokens, trim_notified FROM sessions WHERE id = ?",
                (session_id,),
            )
        )
        if not rows:
            return SessionState()
        row = rows[0]
        return SessionState(
            summary=row[0], summary_upto=row[1], summary_tokens=row[2], trim_notified=bool(row[3])
        )

    async def set_summary(self, session_id: str, summary: str, upto_id: int, tokens: int) -> None:
        now = time.time()
        async with self._write_lock:
            await self.db.execute(
                "INSERT INTO sessions (id, created_at, updated_at, summary, summary_upto, summary_tokens) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at, "
                "summary = excluded.summary, summary_upto = excluded.summary_upto, "
                "summary_tokens = excluded.summary_tokens",
                (session_id, now, now, summary, upto_id, tokens),
            )

    async def mark_trim_notified(self, session_id: str) -> None:
        now = time.time()
        async with self._write_lock:
            await self.db.execute(
                "INSERT INTO sessions (id, created_at, updated_at, trim_notified) VALUES (?, ?, ?, 1) "
                "ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at, trim_notified = 1",
                (session_id, now, now),
            )

    async def reset(self, session_id: str) -> int:
        with self._changing_messages(session_id) as windows:
            async with self._transaction():
                cursor = await self.db.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
                deleted = cursor.rowcount
                await self.db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            if windows is not None:
                windows.drop(session_id)
        return deleted

    async def count_messages(self, session_id: str) -> int:
        async with self.db.execute(
            "SELECT COUNT(*) FROM messages WHERE session_id = ?", (session_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def chat_choice(self, session_id: str) -> ChatChoice:
        async with self.db.execute(
            "SELECT mode, model FROM chat_choices WHERE session_id = ?", (session_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return ChatChoice() if row is None else ChatChoice(mode=row[0], model=row[1])

    async def set_chat_choice(self, session_id: str, choice: ChatChoice) -> None:
        async with self._transaction():
            await self.db.execute(
                "INSERT INTO chat_choices (session_id, mode, model, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET mode = excluded.mode, model = excluded.model, "
                "updated_at = excluded.updated_at",
                (session_id, choice.mode, choice.model, time.time()),
            )

    async def forget_user(self, user_id: str) -> int:
        if not user_id:  # an empty id would match every assistant reply
            return 0
        with self._changing_messages(None) as windows:
            deleted = await self._forget_user(user_id)
            if windows is not None:
                windows.clear()  # whole sessions, and the user's messages in shared ones
        return deleted

    async def _forget_user(self, user_id: str) -> int:
        async with self._transaction() as db:
            own_sessions = (
                "SELECT session_id FROM messages WHERE role = 'user' GROUP BY session_id "
                "HAVING SUM(user_id != ?) = 0 AND SUM(user_id = ?) > 0"
            )
            await db.execute(  # their own conversations' /mode and /model choice (bots file, issue 16)
                f"DELETE FROM chat_choices WHERE session_id IN ({own_sessions})", (user_id, user_id)
            )
            cursor = await db.execute(
                f"DELETE FROM messages WHERE session_id IN ({own_sessions}) OR user_id = ?",
                (user_id, user_id, user_id),
            )
            deleted = cursor.rowcount
            await db.execute(
                "DELETE FROM sessions WHERE id NOT IN (SELECT DISTINCT session_id FROM messages)"
            )
            await db.execute("DELETE FROM turns WHERE user_id = ?", (user_id,))  # their flags follow
            await db.execute("DELETE FROM review_flags WHERE user_id = ?", (user_id,))
            await db.execute("DELETE FROM replies_in_flight WHERE user_id = ?", (user_id,))
        return deleted

    async def delete_older_than(self, timestamp: float) -> int:
        with self._changing_messages(None) as windows:
            deleted = await self._delete_older_than(timestamp)
            if windows is not None:
                windows.clear()
        return deleted

    async def _delete_older_than(self, timestamp: float) -> int:
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM messages WHERE created_at < ?", (timestamp,))
            deleted = cursor.rowcount
            await db.execute("DELETE FROM turns WHERE started_at < ?", (timestamp,))  # their flags follow
            await db.execute("DELETE FROM review_flags WHERE created_at < ?", (timestamp,))
            await db.execute("DELETE FROM replies_in_flight WHERE started_at < ?", (timestamp,))
            await db.execute("DELETE FROM message_events WHERE created_at < ?", (timestamp,))
            await db.execute(
                "DELETE FROM sessions WHERE updated_at < ? AND id NOT IN (SELECT DISTINCT session_id FROM messages)",
                (timestamp,),
            )
        return deleted

    # -- questions keyed by delivery (core.store.EventQuestions; the work queue's retries) -----------

    async def add_question_once(
        self, session_id: str, event_id: str, content: str, tokens: int, *, user_id: str = ""
    ) -> int:
        now = time.time()
        with self._changing_messages(session_id) as windows:
            async with self._transaction() as db:
                known = await self._event_question(event_id)
                if known is not None:
                    return known[0]
                question_id = await self._insert_message(
                    session_id, "user", content, tokens, user_id, False, now
                )
                await db.execute(  # REPLACE: a link to a question deleted since (a reset) is stale
                    "INSERT OR REPLACE INTO message_events (event_id, session_id, question_id, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (event_id, session_id, question_id, now),
                )
            if windows is not None:
                windows.added(session_id, StoredMessage(question_id, "user", content, tokens, now, False))
        return question_id

    async def event_turn(self, event_id: str) -> EventTurn | None:
        known = await self._event_question(event_id)
        if known is None:
            return None
        question_id, session_id, complete = known
        if not complete:
            return EventTurn(question_id, None)
        rows = await self.db.execute_fetchall(  # one turn at a time per session: the next reply is its
            "SELECT content FROM messages WHERE session_id = ? AND id > ? AND role = 'assistant' "
            "ORDER BY id LIMIT 1",
            (session_id, question_id),
        )
        found = list(rows)
        return EventTurn(question_id, str(found[0][0]) if found else None)

    async def _event_question(self, event_id: str) -> tuple[int, str, bool] | None:
        rows = await self.db.execute_fetchall(
            "SELECT m.id, m.session_id, m.complete FROM message_events e JOIN messages m "
            "ON m.id = e.question_id WHERE e.event_id = ?",
            (event_id,),
        )
        found = list(rows)
        if not found:
            return None
        question_id, session_id, complete = found[0]
        return int(question_id), str(session_id), bool(complete)


def as_storage(store: SQLiteStore) -> Storage:
    """The store as :class:`core.store.Storage` (mypy checks here that it provides every interface)."""
    return store
