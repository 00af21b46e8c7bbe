""":class:`core.store.TurnLedger` in SQLite: reads of the ``turns`` table, on the store's connection."""

from __future__ import annotations

from core.sqlite_connection import SharedConnection
from core.store import TURN_STATS_COLUMNS, TurnStats, turn_stats_of


class SQLiteLedger:
    """Token sums and turn statistics (``SQLiteStore.ledger``)."""

    def __init__(self, shared: SharedConnection) -> None:
        self._shared = shared

    async def _count(self, query: str, params: tuple[object, ...]) -> int:
        row = await self._shared.fetchrow(query, params)
        return int(row[0]) if row else 0

    async def user_tokens_since(self, user_id: str, since: float, *, bot: str | None = None) -> int:
        query = (
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM turns "
            "WHERE user_id = ? AND started_at >= ?"
        )
        if bot is None:
            return await self._count(query, (user_id, since))
        return await self._count(query + " AND bot = ?", (user_id, since, bot))

    async def bot_tokens_since(self, bot: str, since: float) -> int:
        return await self._count(
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM turns "
            "WHERE bot = ? AND started_at >= ?",
            (bot, since),
        )

    async def count_user_turns(self, user_id: str) -> int:
        return await self._count("SELECT COUNT(*) FROM turns WHERE user_id = ?", (user_id,))

    async def turns_between(self, since: float, until: float, *, bot: str | None = None) -> list[TurnStats]:
        query = f"SELECT {TURN_STATS_COLUMNS} FROM turns WHERE started_at >= ? AND started_at < ?"
        params: tuple[object, ...] = (since, until)
        if bot is not None:
            query += " AND bot = ?"
            params = (since, until, bot)
        rows = await self._shared.db.execute_fetchall(query + " ORDER BY started_at, id", params)
        return [turn_stats_of(r) for r in rows]
