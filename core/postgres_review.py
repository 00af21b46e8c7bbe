""":class:`core.store.ReviewStore` in PostgreSQL: the ``review_flags`` table, on the store's pool.

A trigger deletes a turn's flags with its row in ``turns`` (what forgetting a user and retention delete),
as in SQLite; rows become records, and the context around a flag is cut, by the functions in
:mod:`core.store` both backends use.
"""

from __future__ import annotations

import time

from core.postgres_connection import SharedPool, row_count
from core.secrets import redact_secrets
from core.store import FLAG_COLUMNS, ContextMessage, ReviewFlag, TurnRecord, context_around, flag_from_row


class PostgresReview:
    """Review flags (``PostgresStore.review``)."""

    def __init__(self, shared: SharedPool) -> None:
        self._shared = shared

    async def add(self, turn: TurnRecord, phrase: str, *, now: float | None = None) -> int:
        row = await self._shared.write_row(
            "INSERT INTO review_flags (session_id, user_id, bot, platform, turn_started_at, phrase, "
            "user_text, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            turn.session_id,
            turn.user_id,
            turn.bot,
            turn.platform,
            turn.started_at,
            phrase,
            redact_secrets(turn.user_text),
            time.time() if now is None else now,
        )
        assert row is not None
        return int(row[0])

    async def flags(
        self, *, bot: str | None = None, include_resolved: bool = False, limit: int = 50
    ) -> list[ReviewFlag]:
        where, params = ["TRUE"], list[object]()
        if not include_resolved:
            where.append("NOT resolved")
        if bot:
            params.append(bot)
            where.append(f"bot = ${len(params)}")
        params.append(limit)
        rows = await self._shared.fetch(
            f"SELECT {FLAG_COLUMNS} FROM review_flags WHERE {' AND '.join(where)} "
            f"ORDER BY id DESC LIMIT ${len(params)}",
            *params,
        )
        return [flag_from_row(row) for row in rows]

    async def get(self, flag_id: int) -> ReviewFlag | None:
        row = await self._shared.fetchrow(f"SELECT {FLAG_COLUMNS} FROM review_flags WHERE id = $1", flag_id)
        return flag_from_row(row) if row is not None else None

    async def resolve(self, flag_id: int) -> bool:
        status = await self._shared.execute("UPDATE review_flags SET resolved = TRUE WHERE id = $1", flag_id)
        return row_count(status) > 0

    async def count_open(self, *, bot: str | None = None) -> int:
        if bot:
            return int(
                await self._shared.fetchval(
                    "SELECT COUNT(*) FROM review_flags WHERE NOT resolved AND bot = $1", bot
                )
            )
        return int(await self._shared.fetchval("SELECT COUNT(*) FROM review_flags WHERE NOT resolved"))

    async def count_user_flags(self, user_id: str) -> int:
        return int(
            await self._shared.fetchval("SELECT COUNT(*) FROM review_flags WHERE user_id = $1", user_id)
        )

    async def context(self, flag: ReviewFlag, *, before: int = 6) -> list[ContextMessage]:
        anchor = await self._shared.fetchval(
            "SELECT id FROM messages WHERE session_id = $1 AND role = 'user' AND created_at >= $2 "
            "ORDER BY (content = $3) DESC, id LIMIT 1",
            flag.session_id,
            flag.turn_started_at - 1.0,
            flag.user_text,
        )
        if anchor is None:
            return []
        columns = "id, role, content, created_at, complete"
        earlier = await self._shared.fetch(
            f"SELECT {columns} FROM messages WHERE session_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            flag.session_id,
            anchor,
            max(0, before),
        )
        later = await self._shared.fetch(
            f"SELECT {columns} FROM messages WHERE session_id = $1 AND id >= $2 ORDER BY id LIMIT 2",
            flag.session_id,
            anchor,
        )
        return context_around(int(anchor), [*reversed(earlier), *later])
