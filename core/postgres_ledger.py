""":class:`core.store.TurnLedger` in PostgreSQL: reads of the ``turns`` table, on the store's pool."""

from __future__ import annotations

from core.postgres_connection import SharedPool
from core.store import TURN_STATS_COLUMNS, TurnStats, turn_stats_of


class PostgresLedger:
    """Token sums and turn statistics (``PostgresStore.ledger``)."""

    def __init__(self, shared: SharedPool) -> None:
        self._shared = shared

    async def user_tokens_since(self, user_id: str, since: float, *, bot: str | None = None) -> int:
        query = (
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM turns "
            "WHERE user_id = $1 AND started_at >= $2"
        )
        if bot is None:
            return int(await self._shared.fetchval(query, user_id, since))
        return int(await self._shared.fetchval(query + " AND bot = $3", user_id, since, bot))

    async def bot_tokens_since(self, bot: str, since: float) -> int:
        return int(
            await self._shared.fetchval(
                "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM turns "
                "WHERE bot = $1 AND started_at >= $2",
                bot,
                since,
            )
        )

    async def count_user_turns(self, user_id: str) -> int:
        return int(await self._shared.fetchval("SELECT COUNT(*) FROM turns WHERE user_id = $1", user_id))

    async def turns_between(self, since: float, until: float, *, bot: str | None = None) -> list[TurnStats]:
        query = f"SELECT {TURN_STATS_COLUMNS} FROM turns WHERE started_at >= $1 AND started_at < $2"
        params: tuple[object, ...] = (since, until)
        if bot is not None:
            query += " AND bot = $3"
            params = (since, until, bot)
        rows = await self._shared.fetch(query + " ORDER BY started_at, id", *params)
        return [turn_stats_of(r) for r in rows]
