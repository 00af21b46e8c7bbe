""":class:`core.store.ReplyJournal` in SQLite: the ``replies_in_flight`` table, on the store's connection.

A row per reply being written on a platform, one single-statement write each, so a start after a crash
can finish the half-written message (see :mod:`core.store` ``ReplyInFlight``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from core.sqlite_connection import SharedConnection
from core.store import REPLY_IN_FLIGHT_COLUMNS, ReplyInFlight, reply_in_flight_of


class SQLiteJournal:
    """Replies in flight; :class:`core.sqlite_store.SQLiteStore` is one (the journal is on the store)."""

    _shared: SharedConnection

    async def begin_reply(self, session_id: str, platform: str, bot: str, user_id: str, address: Any) -> int:
        async with self._shared.write_lock:
            cursor = await self._shared.db.execute(
                "INSERT INTO replies_in_flight (session_id, platform, bot, user_id, address, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, platform, bot, user_id, json.dumps(address), time.time()),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def reply_shown(self, reply_id: int, message: Any, shown: str) -> None:
        async with self._shared.write_lock:
            await self._shared.db.execute(
                "UPDATE replies_in_flight SET message = ?, shown = ? WHERE id = ?",
                (json.dumps(message), shown, reply_id),
            )

    async def mark_turn_recorded(self, reply_id: int) -> None:
        async with self._shared.write_lock:
            await self._shared.db.execute(
                "UPDATE replies_in_flight SET turn_recorded = 1 WHERE id = ?", (reply_id,)
            )

    async def end_reply(self, reply_id: int) -> None:
        async with self._shared.write_lock:
            await self._shared.db.execute("DELETE FROM replies_in_flight WHERE id = ?", (reply_id,))

    async def unfinished_replies(self, platform: str, bot: str) -> list[ReplyInFlight]:
        rows = await self._shared.db.execute_fetchall(
            f"SELECT {REPLY_IN_FLIGHT_COLUMNS} FROM replies_in_flight WHERE platform = ? AND bot = ? ORDER BY id",
            (platform, bot),
        )
        return [reply_in_flight_of(row) for row in rows]
