""":class:`core.store.ReplyJournal` in PostgreSQL: the ``replies_in_flight`` table, on the store's pool.

A row per reply being written on a platform, one single-statement write each, so a start after a crash
can finish the half-written message (see :mod:`core.store` ``ReplyInFlight``). Addresses and platform
messages are JSON text, as in SQLite.
"""

from __future__ import annotations

import json
import time
from typing import Any

from core.postgres_connection import SharedPool
from core.store import REPLY_IN_FLIGHT_COLUMNS, ReplyInFlight, reply_in_flight_of


class PostgresJournal:
    """Replies in flight; :class:`core.postgres_store.PostgresStore` is one (the journal is on the store)."""

    _shared: SharedPool

    async def begin_reply(self, session_id: str, platform: str, bot: str, user_id: str, address: Any) -> int:
        row = await self._shared.write_row(
            "INSERT INTO replies_in_flight (session_id, platform, bot, user_id, address, started_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            session_id,
            platform,
            bot,
            user_id,
            json.dumps(address),
            time.time(),
        )
        assert row is not None
        return int(row[0])

    async def reply_shown(self, reply_id: int, message: Any, shown: str) -> None:
        await self._shared.execute(
            "UPDATE replies_in_flight SET message = $1, shown = $2 WHERE id = $3",
            json.dumps(message),
            shown,
            reply_id,
        )

    async def mark_turn_recorded(self, reply_id: int) -> None:
        await self._shared.execute(
            "UPDATE replies_in_flight SET turn_recorded = TRUE WHERE id = $1", reply_id
        )

    async def end_reply(self, reply_id: int) -> None:
        await self._shared.execute("DELETE FROM replies_in_flight WHERE id = $1", reply_id)

    async def unfinished_replies(self, platform: str, bot: str) -> list[ReplyInFlight]:
        rows = await self._shared.fetch(
            f"SELECT {REPLY_IN_FLIGHT_COLUMNS} FROM replies_in_flight WHERE platform = $1 AND bot = $2 ORDER BY id",
            platform,
            bot,
        )
        return [reply_in_flight_of(row) for row in rows]
