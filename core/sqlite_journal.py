""":class:`core.store.ReplyJournal` in SQLite: the ``replies_in_flight`` table, on the store's connection.

A row per reply being written on a platform, one single-statement write each, so a start after a crash
can finish the half-written message (see :mod:`core.store` ``ReplyInFlight``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from core.sqlite_connection import SharedConnection
from core.store import ReplyInFlight


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
            "SELECT id, session_id, platform, bot, user_id, address, message, shown, turn_recorded, started_at "
            "FROM replies_in_flight WHERE platform = ? AND bot = ? ORDER BY id",
            (platform, bot),
        )
        return [
            ReplyInFlight(
                id=row[0],
                session_id=row[1],
                platform=row[2],
                bot=row[3],
                user_id=row[4],
                address=json.loads(row[5]),
                message=json.loads(row[6]) if row[6] is not None else None,
                shown=row[7],
                turn_recorded=bool(row[8]),
                started_at=row[9],
            )
            for row in rows
        ]
