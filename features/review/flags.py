"""Review triggers: conversations a human should look at, flagged as they happen.

A user who writes "that is wrong" or "you made that up" has just told us the bot failed; the article asks
to flag such conversations for immediate review. :class:`ReviewTrigger` is a turn observer that flags a
turn when the user's text contains a configured phrase (matched without regard to case, punctuation or
apostrophes), and when a guard blocked the turn (status ``blocked``: an attack worth seeing, or a guard
being too strict). Failed model calls are not flagged: they are infrastructure, counted by ``chatbot
stats`` and the metrics. Flags live in the ``review_flags`` table beside the conversations, and
``chatbot review`` lists them with the messages around them.

A flag holds the user's words, so it lives as long as its turn: a trigger deletes it with the turn's row
in ``turns``, which is what forgetting a user and the retention period delete.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from core.incoming import IncomingMessage
from core.secrets import redact_secrets
from core.sqlite_store import connect
from core.store import TurnRecord
from core.turn import TurnStatus

log = logging.getLogger(__name__)

DEFAULT_REVIEW_PHRASES: tuple[str, ...] = (
    "that is wrong",
    "that's wrong",
    "you made that up",
    "that's not true",
    "not helpful",
    "wrong answer",
    "you are lying",
    "this is incorrect",
)
DISABLED = {"none", "off", "-"}
FLAGGED_STATUSES = frozenset({TurnStatus.BLOCKED})
STATUS_PREFIX = "status:"

SCHEMA = """
CREATE TABLE IF NOT EXISTS review_flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    bot TEXT NOT NULL DEFAULT '',
    platform TEXT NOT NULL DEFAULT '',
    turn_started_at REAL NOT NULL,
    phrase TEXT NOT NULL,
    user_text TEXT NOT NULL,
    created_at REAL NOT NULL,
    resolved INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS review_flags_open ON review_flags (resolved, id);
CREATE INDEX IF NOT EXISTS review_flags_by_turn ON review_flags (session_id, turn_started_at);
CREATE TRIGGER IF NOT EXISTS review_flags_follow_turns AFTER DELETE ON turns
BEGIN
    DELETE FROM review_flags WHERE session_id = OLD.session_id AND turn_started_at = OLD.started_at;
END;
"""

_NOT_WORD = re.compile(r"[^\w]+")


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped (``that's`` -> ``thats``), other punctuation as spaces, single
    spaces, padded with a space on each side so that phrases match whole words only."""
    text = text.lower().replace("’", "").replace("'", "").replace("`", "")
    return f" {_NOT_WORD.sub(' ', text).strip()} "


def parse_phrases(setting: str) -> tuple[str, ...]:
    """The trigger phrases of a ``CHATBOT_REVIEW_PHRASES`` value: comma-separated; empty means the
    defaults; ``none`` (or ``off``) means no phrase triggers."""
    if not setting.strip():
        return DEFAULT_REVIEW_PHRASES
    if setting.strip().lower() in DISABLED:
        return ()
    return tuple(p.strip() for p in setting.split(",") if normalise(p).strip())


def find_phrase(text: str, phrases: tuple[str, ...]) -> str | None:
    """The first of ``phrases`` that ``text`` contains, compared as :func:`normalise` does, or None."""
    haystack = normalise(text)
    for phrase in phrases:
        if normalise(phrase) in haystack:
            return phrase
    return None


@dataclass(frozen=True, slots=True)
class ReviewFlag:
    id: int
    session_id: str
    user_id: str
    bot: str
    platform: str
    turn_started_at: float
    phrase: str  # the matched phrase, or "status:blocked"
    user_text: str
    created_at: float
    resolved: bool


@dataclass(frozen=True, slots=True)
class ContextMessage:
    """A message shown around a flag; ``flagged`` marks the user's message that raised it."""

    id: int
    role: str
    content: str
    created_at: float
    complete: bool
    flagged: bool = False


_FLAG_COLUMNS = (
    "id, session_id, user_id, bot, platform, turn_started_at, phrase, user_text, created_at, resolved"
)


def _flag(row: aiosqlite.Row) -> ReviewFlag:
    values = tuple(row)
    return ReviewFlag(
        id=int(values[0]),
        session_id=str(values[1]),
        user_id=str(values[2]),
        bot=str(values[3]),
        platform=str(values[4]),
        turn_started_at=float(values[5]),
        phrase=str(values[6]),
        user_text=str(values[7]),
        created_at=float(values[8]),
        resolved=bool(values[9]),
    )


class ReviewRepository:
    """The ``review_flags`` table, on its own connection to the bot's database (WAL lets it share)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: str | Path) -> ReviewRepository:
        db = await connect(Path(path))
        try:
            await db.executescript(SCHEMA)
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        await self.db.close()

    async def add(self, turn: TurnRecord, phrase: str, *, now: float | None = None) -> int:
        cursor = await self.db.execute(
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
        """Flags, newest first: open ones only unless ``include_resolved``."""
        where, params = ["1 = 1"], list[object]()
        if not include_resolved:
            where.append("resolved = 0")
        if bot:
            where.append("bot = ?")
            params.append(bot)
        rows = await self.db.execute_fetchall(
            f"SELECT {_FLAG_COLUMNS} FROM review_flags WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [_flag(row) for row in rows]

    async def get(self, flag_id: int) -> ReviewFlag | None:
        rows = list(
            await self.db.execute_fetchall(
                f"SELECT {_FLAG_COLUMNS} FROM review_flags WHERE id = ?", (flag_id,)
            )
        )
        return _flag(rows[0]) if rows else None

    async def resolve(self, flag_id: int) -> bool:
        """Mark a flag resolved; False if there is no such flag."""
        cursor = await self.db.execute("UPDATE review_flags SET resolved = 1 WHERE id = ?", (flag_id,))
        return cursor.rowcount > 0

    async def count_open(self, *, bot: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM review_flags WHERE resolved = 0" + (" AND bot = ?" if bot else "")
        rows = list(await self.db.execute_fetchall(query, (bot,) if bot else ()))
        return int(rows[0][0]) if rows else 0

    async def context(self, flag: ReviewFlag, *, before: int = 6) -> list[ContextMessage]:
        """The flagged user message with up to ``before`` messages before it and the reply after it.

        Incomplete messages (blocked input, withdrawn or interrupted replies) are included: they are what
        a reviewer needs to see. Empty if the conversation has since been deleted (``/forget``, retention).
        """
        rows = list(
            await self.db.execute_fetchall(
                "SELECT id FROM messages WHERE session_id = ? AND role = 'user' AND created_at >= ? "
                "ORDER BY (content = ?) DESC, id LIMIT 1",
                (flag.session_id, flag.turn_started_at - 1.0, flag.user_text),
            )
        )
        if not rows:
            return []
        anchor = int(rows[0][0])
        columns = "id, role, content, created_at, complete"
        earlier = await self.db.execute_fetchall(
            f"SELECT {columns} FROM messages WHERE session_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (flag.session_id, anchor, max(0, before)),
        )
        later = await self.db.execute_fetchall(
            f"SELECT {columns} FROM messages WHERE session_id = ? AND id >= ? ORDER BY id LIMIT 2",
            (flag.session_id, anchor),
        )
        found = [*reversed(list(earlier)), *later]
        messages = [
            ContextMessage(
                id=int(row[0]),
                role=str(row[1]),
                content=str(row[2]),
                created_at=float(row[3]),
                complete=bool(row[4]),
                flagged=int(row[0]) == anchor,
            )
            for row in found
        ]
        if len(messages) >= 2 and messages[-1].role != "assistant":
            messages.pop()  # the next message is the user's again: there was no reply
        return messages


class ReviewTrigger:
    """Turn observer: flags turns whose user text contains a trigger phrase, and blocked turns."""

    def __init__(
        self,
        repository: ReviewRepository,
        phrases: tuple[str, ...] = DEFAULT_REVIEW_PHRASES,
        *,
        statuses: frozenset[str] = FLAGGED_STATUSES,
    ) -> None:
        self.repository = repository
        self.phrases = phrases
        self.statuses = statuses

    def reason(self, turn: TurnRecord) -> str | None:
        """Why ``turn`` should be reviewed, or None."""
        if turn.status == TurnStatus.COMMAND:
            return None
        phrase = find_phrase(turn.user_text, self.phrases) if self.phrases else None
        if phrase is not None:
            return phrase
        if turn.status in self.statuses:
            return STATUS_PREFIX + turn.status
        return None

    async def on_turn(self, message: IncomingMessage, turn: TurnRecord) -> None:
        reason = self.reason(turn)
        if reason is None:
            return
        flag_id = await self.repository.add(turn, reason)
        log.info("%s: flagged for review (#%d, %s)", turn.session_id, flag_id, reason)
