""":class:`core.store.FeedbackStore` in SQLite: the ``turn_votes`` table, on the store's connection.

A vote names a row of ``turns`` by its id; a trigger deletes a turn's votes with the turn (forgetting a
user, retention), so a vote never outlives what it is about.
"""

from __future__ import annotations

import time

from core.sqlite_connection import SharedConnection
from core.store import DOWN, UP, VOTED_TURN_COLUMNS, VoteCount, VotedTurn, turn_span, voted_turn_of


class SQLiteFeedback:
    """Votes on turns (``SQLiteStore.feedback``)."""

    def __init__(self, shared: SharedConnection) -> None:
        self._shared = shared

    async def turn_id(self, session_id: str, started_at: float) -> int | None:
        found = await self._shared.fetchrow(
            "SELECT id FROM turns WHERE session_id = ? AND started_at = ? ORDER BY id DESC LIMIT 1",
            (session_id, started_at),
        )
        return None if found is None else int(found[0])

    async def voted_turn(self, turn_id: int) -> VotedTurn | None:
        turn = await self._shared.fetchrow(f"SELECT {VOTED_TURN_COLUMNS} FROM turns WHERE id = ?", (turn_id,))
        if turn is None:
            return None
        session_id, user_id, started_at, ended = turn_span(turn)
        question = await self._shared.fetchrow(
            "SELECT id, content FROM messages WHERE session_id = ? AND role = 'user' AND user_id = ? "
            "AND created_at >= ? AND created_at <= ? ORDER BY id LIMIT 1",
            (session_id, user_id, started_at, ended),
        )
        reply = None
        if question is not None:
            reply = await self._shared.fetchrow(
                "SELECT content FROM messages WHERE session_id = ? AND role = 'assistant' AND id > ? "
                "AND created_at <= ? ORDER BY id LIMIT 1",
                (session_id, int(question[0]), ended),
            )
        return voted_turn_of(turn, question, reply)

    async def vote(self, turn_id: int, voter: str, vote: int, *, now: float | None = None) -> bool:
        if vote not in (UP, DOWN):
            raise ValueError(f"a vote is {UP} or {DOWN}, not {vote!r}")
        async with self._shared.write_lock:  # one statement: the turn's existence and the vote together
            cursor = await self._shared.db.execute(
                "INSERT INTO turn_votes (turn_id, voter, vote, voted_at) "
                "SELECT id, ?, ?, ? FROM turns WHERE id = ? "
                "ON CONFLICT (turn_id, voter) DO UPDATE SET vote = excluded.vote, voted_at = excluded.voted_at "
                "WHERE turn_votes.vote != excluded.vote",
                (voter, vote, time.time() if now is None else now, turn_id),
            )
        return cursor.rowcount > 0

    async def vote_of(self, turn_id: int, voter: str) -> int | None:
        found = await self._shared.fetchrow(
            "SELECT vote FROM turn_votes WHERE turn_id = ? AND voter = ?", (turn_id, voter)
        )
        return None if found is None else int(found[0])

    async def vote_counts(self, since: float, until: float, *, bot: str | None = None) -> list[VoteCount]:
        query = (
            "SELECT t.bot, t.platform, SUM(v.vote > 0), SUM(v.vote < 0) FROM turn_votes v "
            "JOIN turns t ON t.id = v.turn_id WHERE t.started_at >= ? AND t.started_at < ?"
        )
        params: list[object] = [since, until]
        if bot:
            query += " AND t.bot = ?"
            params.append(bot)
        rows = await self._shared.db.execute_fetchall(
            query + " GROUP BY t.bot, t.platform ORDER BY t.bot, t.platform", params
        )
        return [VoteCount(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]
