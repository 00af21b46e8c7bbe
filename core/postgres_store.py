"""The store for several workers: a PostgreSQL database on an asyncpg pool (:mod:`core.postgres_connection`).

:class:`PostgresStore` mirrors :class:`core.sqlite_store.SQLiteStore`: it is the conversation store (this
module) and the reply journal (:mod:`core.postgres_journal`) itself, and holds the other interfaces of
:class:`core.store.Storage` as attributes sharing its pool: ``ledger`` (:mod:`core.postgres_ledger`),
``review`` (:mod:`core.postgres_review`) and ``knowledge`` (:mod:`core.postgres_knowledge`). Every table is
created by :data:`core.postgres_migrations.PG_MIGRATIONS`.

Each write is one statement where it can be (a message insert touches its session in the same statement;
a reply, its question's completion and its turn are one statement too), so a turn costs few round trips.

Each active session's newest messages are kept in memory (:mod:`core.recent_window`) as in SQLite, but
several workers write the same database, so the copy is checked against the session's ``version`` (see
:mod:`core.postgres_migrations`) before it answers: one small read instead of the window's rows. The
worker's own writes return the version they replaced and the new one; the copy follows a write only when
the replaced version is the one it holds (nobody else wrote in between), and is dropped otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import starmap

from core.postgres_connection import SharedPool, migrate
from core.postgres_feedback import PostgresFeedback
from core.postgres_journal import PostgresJournal
from core.postgres_knowledge import PostgresKnowledge
from core.postgres_ledger import PostgresLedger
from core.postgres_review import PostgresReview
from core.recent_window import RecentWindows
from core.store import ChatChoice, EventTurn, Role, SessionState, Storage, StoredMessage, TurnRecord

NO_UPPER = 2**62  # an id above every message's
FILL_SLACK = 16  # rows read beyond a request when filling the window: the turn's own incomplete question

# The session's new version and the one it replaced, set by the statement that changes its messages.
_TOUCH_SESSION = """
    INSERT INTO sessions (id, created_at, updated_at, version) VALUES ($1, $7, $7, nextval('message_versions'))
    ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, prev_version = sessions.version,
        version = excluded.version
    RETURNING prev_version, version
"""
_INSERT_MESSAGE = """
    INSERT INTO messages (session_id, role, content, tokens, complete, user_id, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
"""
_INSERT_TURN_COLUMNS = (
    "session_id, user_id, started_at, latency_ms, prompt_tokens, completion_tokens, status, model, "
    "bot, platform"
)
ADD_MESSAGE = f"""
    WITH message AS ({_INSERT_MESSAGE}), touched AS ({_TOUCH_SESSION})
    SELECT message.id, touched.prev_version, touched.version FROM message, touched
"""
_INSERT_REPLY = """
    INSERT INTO messages (session_id, role, content, tokens, complete, user_id, created_at, tools)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $19) RETURNING id
"""
SAVE_REPLY = f"""
    WITH answered AS (
        UPDATE messages SET complete = TRUE WHERE $8::bigint IS NOT NULL AND id = $8 AND session_id = $1
        RETURNING id
    ),
    message AS ({_INSERT_REPLY}),
    touched AS ({_TOUCH_SESSION}),
    turn AS (
        INSERT INTO turns ({_INSERT_TURN_COLUMNS})
        VALUES ($9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
    )
    SELECT message.id, touched.prev_version, touched.version, (SELECT count(*) FROM answered)
    FROM message, touched
"""
# The session's version and its newest messages (complete or not), in one statement: one snapshot.
WINDOW_ROWS = """
    SELECT v.version, m.id, m.role, m.content, m.tokens, m.created_at, m.complete
    FROM (SELECT COALESCE((SELECT version FROM sessions WHERE id = $1), 0) AS version) AS v
    LEFT JOIN LATERAL (
        SELECT id, role, content, tokens, created_at, complete FROM messages
        WHERE session_id = $1 AND id > $2 AND id < $3 ORDER BY id DESC LIMIT $4
    ) AS m ON TRUE
    ORDER BY m.id DESC
"""
# Deleting messages of several sessions bumps each one's version, so other workers drop their copies.
_BUMP_SESSIONS = (
    "UPDATE sessions SET prev_version = version, version = nextval('message_versions') "
    "WHERE id IN (SELECT DISTINCT session_id FROM gone)"
)
_DROP_EMPTY_SESSIONS = (
    "DELETE FROM sessions AS s WHERE NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.session_id = s.id)"
)


class PostgresStore(PostgresJournal):
    """:class:`core.store.Storage` on a PostgreSQL database, shared by any number of workers.

    ``cache_windows=False`` reads every window from the database (the reference the cached reads are tested
    and benchmarked against).
    """

    def __init__(self, url: str, *, cache_windows: bool = True) -> None:
        self._shared = SharedPool(url)
        self._windows = RecentWindows() if cache_windows else None
        self._versions: dict[str, int] = {}  # session -> the version its cached window was read at
        self._ledger = PostgresLedger(self._shared)
        self._review = PostgresReview(self._shared)
        self._knowledge = PostgresKnowledge(self._shared)
        self._feedback = PostgresFeedback(self._shared)

    @property
    def where(self) -> str:
        """The database, for messages: ``postgresql://user@host:port/db`` (never the password)."""
        return self._shared.where

    @property
    def ledger(self) -> PostgresLedger:
        return self._ledger

    @property
    def review(self) -> PostgresReview:
        return self._review

    @property
    def knowledge(self) -> PostgresKnowledge:
        return self._knowledge

    @property
    def feedback(self) -> PostgresFeedback:
        return self._feedback

    async def open(self) -> None:
        """Connect and bring the schema up to date; on failure nothing is left open."""
        await self._shared.open()
        try:
            await migrate(self._shared)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._knowledge.clear_caches()
        self._forget_windows()
        await self._shared.close()

    # Writes --------------------------------------------------------------------------------------------

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
        row = await self._shared.write_row(
            ADD_MESSAGE, session_id, role, content, tokens, complete, user_id, now
        )
        assert row is not None
        message_id, replaced, version = int(row[0]), int(row[1]), int(row[2])
        message = StoredMessage(message_id, role, content, tokens, now, complete)
        self._follow(session_id, replaced, version, lambda windows: windows.added(session_id, message))
        return message_id

    # Questions per delivery (core.store.EventQuestions, the work queue) ---------------------------------

    async def add_question_once(
        self, session_id: str, event_id: str, content: str, tokens: int, *, user_id: str = ""
    ) -> int:
        now = time.time()
        async with self._shared.transaction() as db:
            # two workers handling one delivery at once (a job retried while a stalled worker wakes up) take
            # turns here, so the second finds the first's question
            await db.execute("SELECT pg_advisory_xact_lock(hashtext($1))", event_id)
            known = await db.fetchval(
                "SELECT m.id FROM message_events e JOIN messages m ON m.id = e.question_id WHERE e.event_id = $1",
                event_id,
            )
            if known is not None:
                return int(known)
            row = await db.fetchrow(ADD_MESSAGE, session_id, "user", content, tokens, False, user_id, now)
            assert row is not None
            await db.execute(  # an upsert: a link to a question deleted since (a reset) is stale
                "INSERT INTO message_events (event_id, session_id, question_id, created_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO UPDATE SET session_id = excluded.session_id, "
                "question_id = excluded.question_id, created_at = excluded.created_at",
                event_id,
                session_id,
                int(row[0]),
                now,
            )
        question_id, replaced, version = int(row[0]), int(row[1]), int(row[2])
        message = StoredMessage(question_id, "user", content, tokens, now, False)
        self._follow(session_id, replaced, version, lambda windows: windows.added(session_id, message))
        return question_id

    async def event_turn(self, event_id: str) -> EventTurn | None:
        found = await self._shared.fetchrow(
            "SELECT m.id, m.session_id, m.complete FROM message_events e JOIN messages m "
            "ON m.id = e.question_id WHERE e.event_id = $1",
            event_id,
        )
        if found is None:
            return None
        question_id, session_id, complete = int(found[0]), str(found[1]), bool(found[2])
        if not complete:
            return EventTurn(question_id, None)
        reply = await self._shared.fetchval(  # one turn at a time per session: the next reply is its
            "SELECT content FROM messages WHERE session_id = $1 AND id > $2 AND role = 'assistant' "
            "ORDER BY id LIMIT 1",
            session_id,
            question_id,
        )
        return EventTurn(question_id, None if reply is None else str(reply))

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
        answered = question_id if complete else None  # a complete reply brings its question into the context
        row = await self._shared.write_row(
            SAVE_REPLY,
            session_id,
            "assistant",
            content,
            tokens,
            complete,
            "",
            now,
            answered,
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
            tools,
        )
        assert row is not None
        message_id, replaced, version, completed = int(row[0]), int(row[1]), int(row[2]), int(row[3])
        reply = StoredMessage(message_id, "assistant", content, tokens, now, complete)

        def apply(windows: RecentWindows) -> None:
            windows.added(session_id, reply)
            if answered is not None and completed:
                windows.completed(session_id, answered)

        self._follow(session_id, replaced, version, apply)
        return message_id

    async def chat_choice(self, session_id: str) -> ChatChoice:
        row = await self._shared.fetchrow(
            "SELECT mode, model FROM chat_choices WHERE session_id = $1", session_id
        )
        return ChatChoice() if row is None else ChatChoice(mode=row[0], model=row[1])

    async def set_chat_choice(self, session_id: str, choice: ChatChoice) -> None:
        await self._shared.execute(
            "INSERT INTO chat_choices (session_id, mode, model, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (session_id) DO UPDATE SET mode = excluded.mode, model = excluded.model, "
            "updated_at = excluded.updated_at",
            session_id,
            choice.mode,
            choice.model,
            time.time(),
        )

    async def tool_exchanges(self, session_id: str, *, after_id: int, before_id: int) -> dict[int, str]:
        rows = await self._shared.fetch(
            "SELECT id, tools FROM messages WHERE session_id = $1 AND id > $2 AND id < $3 AND complete "
            "AND tools <> ''",
            session_id,
            after_id,
            before_id,
        )
        return {int(row[0]): str(row[1]) for row in rows}

    async def record_turn(self, turn: TurnRecord) -> None:
        await self._shared.execute(
            f"INSERT INTO turns ({_INSERT_TURN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        )

    async def set_summary(self, session_id: str, summary: str, upto_id: int, tokens: int) -> None:
        now = time.time()
        await self._shared.execute(
            "INSERT INTO sessions (id, created_at, updated_at, summary, summary_upto, summary_tokens) "
            "VALUES ($1, $2, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, "
            "summary = excluded.summary, summary_upto = excluded.summary_upto, "
            "summary_tokens = excluded.summary_tokens",
            session_id,
            now,
            summary,
            upto_id,
            tokens,
        )

    async def mark_trim_notified(self, session_id: str) -> None:
        now = time.time()
        await self._shared.execute(
            "INSERT INTO sessions (id, created_at, updated_at, trim_notified) VALUES ($1, $2, $2, TRUE) "
            "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, trim_notified = TRUE",
            session_id,
            now,
        )

    async def reset(self, session_id: str) -> int:
        try:
            deleted = await self._shared.write_value(
                "WITH gone AS (DELETE FROM messages WHERE session_id = $1 RETURNING id), "
                "session AS (DELETE FROM sessions WHERE id = $1) SELECT count(*) FROM gone",
                session_id,
            )
        finally:
            self._forget(session_id)
        return int(deleted)

    async def forget_user(self, user_id: str) -> int:
        if not user_id:  # an empty id would match every assistant reply
            return 0
        own_sessions = (
            "SELECT session_id FROM messages WHERE role = 'user' GROUP BY session_id "
            "HAVING bool_and(user_id = $1)"
        )
        try:
            async with self._shared.transaction() as db:
                # their own conversations' /mode and /model choice (bots file, issue 16)
                await db.execute(f"DELETE FROM chat_choices WHERE session_id IN ({own_sessions})", user_id)
                deleted = await db.fetchval(
                    f"WITH gone AS (DELETE FROM messages WHERE session_id IN ({own_sessions}) OR user_id = $1 "
                    f"RETURNING session_id), bumped AS ({_BUMP_SESSIONS}) SELECT count(*) FROM gone",
                    user_id,
                )
                await db.execute(_DROP_EMPTY_SESSIONS)
                await db.execute("DELETE FROM turns WHERE user_id = $1", user_id)  # their flags follow
                await db.execute("DELETE FROM review_flags WHERE user_id = $1", user_id)
                await db.execute("DELETE FROM replies_in_flight WHERE user_id = $1", user_id)
        finally:
            self._forget_windows()  # whole sessions, and the user's messages in shared ones
        return int(deleted)

    async def delete_older_than(self, timestamp: float) -> int:
        try:
            async with self._shared.transaction() as db:
                deleted = await db.fetchval(
                    "WITH gone AS (DELETE FROM messages WHERE created_at < $1 RETURNING session_id), "
                    f"bumped AS ({_BUMP_SESSIONS}) SELECT count(*) FROM gone",
                    timestamp,
                )
                await db.execute("DELETE FROM turns WHERE started_at < $1", timestamp)  # their flags follow
                await db.execute("DELETE FROM review_flags WHERE created_at < $1", timestamp)
                await db.execute("DELETE FROM replies_in_flight WHERE started_at < $1", timestamp)
                await db.execute("DELETE FROM message_events WHERE created_at < $1", timestamp)
                await db.execute(f"{_DROP_EMPTY_SESSIONS} AND s.updated_at < $1", timestamp)
        finally:
            self._forget_windows()
        return int(deleted)

    # Reads ---------------------------------------------------------------------------------------------

    async def recent_messages(
        self, session_id: str, *, after_id: int = 0, before_id: int | None = None, limit: int = 64
    ) -> list[StoredMessage]:
        upper = before_id if before_id is not None else NO_UPPER
        if self._windows is not None:
            found = await self._cached_read(self._windows, session_id, after_id, upper, limit)
            if found is not None:
                return found
        rows = await self._shared.fetch(
            "SELECT id, role, content, tokens, created_at FROM messages "
            "WHERE session_id = $1 AND id > $2 AND id < $3 AND complete ORDER BY id DESC LIMIT $4",
            session_id,
            after_id,
            upper,
            limit,
        )
        return list(starmap(StoredMessage, rows))

    async def messages_between(
        self, session_id: str, *, after_id: int = 0, before_id: int | None = None, limit: int = 64
    ) -> list[StoredMessage]:
        upper = before_id if before_id is not None else NO_UPPER
        rows = await self._shared.fetch(
            "SELECT id, role, content, tokens, created_at FROM messages "
            "WHERE session_id = $1 AND id > $2 AND id < $3 AND complete ORDER BY id LIMIT $4",
            session_id,
            after_id,
            upper,
            limit,
        )
        return list(starmap(StoredMessage, rows))

    async def session(self, session_id: str) -> SessionState:
        row = await self._shared.fetchrow(
            "SELECT summary, summary_upto, summary_tokens, trim_notified FROM sessions WHERE id = $1",
            session_id,
        )
        if row is None:
            return SessionState()
        return SessionState(
            summary=row[0], summary_upto=int(row[1]), summary_tokens=int(row[2]), trim_notified=bool(row[3])
        )

    async def count_messages(self, session_id: str) -> int:
        return int(
            await self._shared.fetchval("SELECT COUNT(*) FROM messages WHERE session_id = $1", session_id)
        )

    # The cached windows --------------------------------------------------------------------------------

    async def _cached_read(
        self, windows: RecentWindows, session_id: str, after_id: int, upper: int, limit: int
    ) -> list[StoredMessage] | None:
        """The window from memory if the session's version is still the one it was read at; else (or when
        the copy lacks the range) filled from the database. ``None``: read the database directly."""
        known = self._versions.get(session_id)
        if windows.lower(session_id) is not None:
            current = None
            if known is not None:
                current = await self._shared.fetchval(
                    "SELECT COALESCE((SELECT version FROM sessions WHERE id = $1), 0)", session_id
                )
            if current is not None and int(current) == known:
                found = windows.read(session_id, after_id, upper, limit)
                if found is not None:
                    return found
            else:
                self._forget(session_id)  # another worker changed the session's messages
        return await self._fill(windows, session_id, after_id, upper, limit)

    async def _fill(
        self, windows: RecentWindows, session_id: str, after_id: int, upper: int, limit: int
    ) -> list[StoredMessage] | None:
        """Read what the session's window lacks for a request into it, then answer from it; ``None`` when
        the window cannot take the rows (they lie below what it holds, or the session changed meanwhile)."""
        lower = windows.lower(session_id)
        if lower is not None and upper <= lower:
            return None
        fill_upper = NO_UPPER if lower is None else lower + 1
        want = limit + FILL_SLACK
        rows = await self._shared.fetch(WINDOW_ROWS, session_id, after_id, fill_upper, want)
        version = int(rows[0][0])
        if windows.lower(session_id) != lower or (
            lower is not None and self._versions.get(session_id) != version
        ):
            self._forget(session_id)  # the copy changed meanwhile, or the rows are of another version
            return None
        found = [
            StoredMessage(int(r[1]), r[2], r[3], int(r[4]), float(r[5]), bool(r[6]))
            for r in rows
            if r[1] is not None
        ]
        windows.merge(session_id, after_id, fill_upper, want, found)
        if windows.lower(session_id) is None:
            return None
        self._versions[session_id] = version
        self._prune_versions(windows)
        return windows.read(session_id, after_id, upper, limit)

    def _follow(
        self, session_id: str, replaced: int, version: int, apply: Callable[[RecentWindows], None]
    ) -> None:
        """After this worker's write: the copy follows it if it was current right before (the write
        replaced the version the copy holds), else it goes."""
        windows = self._windows
        if windows is None or windows.lower(session_id) is None:
            self._versions.pop(session_id, None)
            return
        if self._versions.get(session_id) != replaced:
            self._forget(session_id)
            return
        apply(windows)
        if windows.lower(session_id) is None:
            self._versions.pop(session_id, None)
        else:
            self._versions[session_id] = version

    def _forget(self, session_id: str) -> None:
        if self._windows is not None:
            self._windows.drop(session_id)
        self._versions.pop(session_id, None)

    def _forget_windows(self) -> None:
        if self._windows is not None:
            self._windows.clear()
        self._versions.clear()

    def _prune_versions(self, windows: RecentWindows) -> None:
        """Forget the versions of sessions the windows evicted (they are bounded; this dict follows)."""
        if len(self._versions) > 2 * len(windows) + 64:
            self._versions = {s: v for s, v in self._versions.items() if windows.lower(s) is not None}


def as_storage(store: PostgresStore) -> Storage:
    """The store as :class:`core.store.Storage` (mypy checks here that it provides every interface)."""
    return store
