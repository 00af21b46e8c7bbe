""":class:`core.store.FeedbackStore` in PostgreSQL: the ``turn_votes`` table, on the store's pool.

The same rules as :mod:`core.sqlite_feedback`: a vote names a row of ``turns`` by its id and is deleted with
it (a foreign key with ``ON DELETE CASCADE`` here), and one statement checks the turn and stores the vote.
"""

from __future__ import annotations

import time

from core.postgres_connection import SharedPool, row_count
from core.store import DOWN, UP, VOTED_TURN_COLUMNS, VoteCount, VotedTurn, turn_span, voted_turn_of


class PostgresFeedback:
    """Votes on turns (``PostgresStore.feedback``)."""

    def __init__(self, shared: SharedPool) -> None:
        self._shared = shared

    async def turn_id(self, session_id: str, started_at: float) -> int | None:
        found = await self._shared.fetchval(
            "SELECT id FROM turns WHERE session_id = $1 AND started_at = $2 ORDER BY id DESC LIMIT 1",
            session_id,
            started_at,
        )
        return None if found is None else int(found)

    async def voted_turn(self, turn_id: int) -> VotedTurn | None:
        turn = await self._shared.fetchrow(f"SELECT {VOTED_TURN_COLUMNS} FROM turns WHERE id = $1", turn_id)
        if turn is None:
            return None
        session_id, user_id, started_at, ended = turn_span(turn)
        question = await self._shared.fetchrow(
            "SELECT id, content FROM messages WHERE session_id = $1 AND role = 'user' AND user_id = $2 "
            "AND created_at >= $3 AND created_at <= $4 ORDER BY id LIMIT 1",
            session_id,
            user_id,
            started_at,
            ended,
        )
        reply = None
        if question is not None:
            reply = await self._shared.fetchrow(
                "SELECT content FROM messages WHERE session_id = $1 AND role = 'assistant' AND id > $2 "
                "AND created_at <= $3 ORDER BY id LIMIT 1",
                session_id,
                int(question[0]),
                ended,
            )
        return voted_turn_of(turn, question, reply)

    async def vote(self, turn_id: int, voter: str, vote: int, *, now: float | None = None) -> bool:
        if vote not in (UP, DOWN):
            raise ValueError(f"a vote is {UP} or {DOWN}, not {vote!r}")
        status = await self._shared.execute(
            "INSERT INTO turn_votes (turn_id, voter, vote, voted_at) "
            "SELECT id, $1, $2, $3 FROM turns WHERE id = $4 "
            "ON CONFLICT (turn_id, voter) DO UPDATE SET vote = excluded.vote, voted_at = excluded.voted_at "
            "WHERE turn_votes.vote <> excluded.vote",
            voter,
            vote,
            time.time() if now is None else now,
            turn_id,
        )
        return row_count(status) > 0

    async def vote_of(self, turn_id: int, voter: str) -> int | None:
        found = await self._shared.fetchval(
            "SELECT vote FROM turn_votes WHERE turn_id = $1 AND voter = $2", turn_id, voter
        )
        return None if found is None else int(found)

    async def vote_counts(self, since: float, until: float, *, bot: str | None = None) -> list[VoteCount]:
        query = (
            "SELECT t.bot, t.platform, count(*) FILTER (WHERE v.vote > 0), count(*) FILTER (WHERE v.vote < 0) "
            "FROM turn_votes v JOIN turns t ON t.id = v.turn_id WHERE t.started_at >= $1 AND t.started_at < $2"
        )
        args: list[object] = [since, until]
        if bot:
            query += " AND t.bot = $3"
            args.append(bot)
        rows = await self._shared.fetch(
            query + " GROUP BY t.bot, t.platform ORDER BY t.bot, t.platform", *args
        )
        return [VoteCount(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]
