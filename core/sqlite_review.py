""":class:`core.store.ReviewStore` in SQLite: the ``review_flags`` table, on the store's connection.

A trigger deletes a turn's flags with its row in ``turns`` (what forgetting a user and retention delete);
flags are also deleted by their own ``user_id`` and ``created_at`` (see ``SQLiteStore.forget_user`` and
``delete_older_than``).
"""

from __future__ import annotations

import time

from core.secrets import redact_secrets
from core.sqlite_connection import SharedConnection
from core.store import FLAG_COLUMNS, ContextMessage, ReviewFlag, TurnRecord, context_around, flag_from_row


class SQLiteReview:
    """Review flags (``SQLiteStore.review``)."""

    def __init__(self, shared: SharedConnection) -> None:
        self._shared = shared

    async def add(self, turn: TurnRecord, phrase: str, *, now: float | None = None) -> int:
        async with self._shared.write_lock:
            cursor = await self._shared.db.execute(
                "INSERT INTO review_flags (session_id, user_id, bot, platform, turn_started_at, phrase, "
                "user_text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    turn.session_id,
                    turn.user_id,
                    turn.bot,
                    turn.platform,
                    turn.started_at,
                    phrase,
                    redact_secrets(turn.user_text),
                    time.time() if now is None else now,
                ),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def flags(
        self, *, bot: str | None = None, include_resolved: bool = False, limit: int = 50
    ) -> list[ReviewFlag]:
        where, params = ["1 = 1"], list[object]()
        if not include_resolved:
            where.append("resolved = 0")
        if bot:
            where.append("bot = ?")
            params.append(bot)
        rows = await self._shared.db.execute_fetchall(
            f"SELECT {FLAG_COLUMNS} FROM review_flags WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [flag_from_row(row) for row in rows]

    async def get(self, flag_id: int) -> ReviewFlag | None:
        row = await self._shared.fetchrow(f"SELECT {FLAG_COLUMNS} FROM review_flags WHERE id = ?", (flag_id,))
        return flag_from_row(row) if row else None

    async def resolve(self, flag_id: int) -> bool:
        async with self._shared.write_lock:
            cursor = await self._shared.db.execute(
                "UPDATE review_flags SET resolved = 1 WHERE id = ?", (flag_id,)
            )
        return cursor.rowcount > 0

    async def count_open(self, *, bot: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM review_flags WHERE resolved = 0" + (" AND bot = ?" if bot else "")
        row = await self._shared.fetchrow(query, (bot,) if bot else ())
        return int(row[0]) if row else 0

    async def count_user_flags(self, user_id: str) -> int:
        row = await self._shared.fetchrow("SELECT COUNT(*) FROM review_flags WHERE user_id = ?", (user_id,))
        return int(row[0]) if row else 0

    async def context(self, flag: ReviewFlag, *, before: int = 6) -> list[ContextMessage]:
        db = self._shared.db
        rows = list(
            await db.execute_fetchall(
                "SELECT id FROM messages WHERE session_id = ? AND role = 'user' AND created_at >= ? "
                "ORDER BY (content = ?) DESC, id LIMIT 1",
                (flag.session_id, flag.turn_started_at - 1.0, flag.user_text),
            )
        )
        if not rows:
            return []
        anchor = int(rows[0][0])
        columns = "id, role, content, created_at, complete"
        earlier = await db.execute_fetchall(
            f"SELECT {columns} FROM messages WHERE session_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (flag.session_id, anchor, max(0, before)),
        )
        later = await db.execute_fetchall(
            f"SELECT {columns} FROM messages WHERE session_id = ? AND id >= ? ORDER BY id LIMIT 2",
            (flag.session_id, anchor),
        )
        return context_around(anchor, [*reversed(list(earlier)), *later])
