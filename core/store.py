"""The conversation store's interface and the records it keeps.

A store keeps, per session, every message (role, content, token count, timestamps, whether it completed)
and the running summary. Only complete messages are fed back to the model. A user's question is stored
incomplete ("awaiting its answer") and becomes complete with the complete reply that answers it; a question
whose turn failed, and a reply that was interrupted or failed, stay incomplete: kept for the record (review,
/forget, retention), never fed back to the model. SQLite is the default backend (:mod:`core.sqlite_store`);
another backend implements :class:`ConversationStore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

Role = Literal["user", "assistant"]


class StoredMessage(NamedTuple):
    """One stored message. A named tuple: rows become messages at C speed on the hot path."""

    id: int
    role: Role
    content: str
    tokens: int
    created_at: float
    complete: bool = True


@dataclass(frozen=True, slots=True)
class SessionState:
    """What a session keeps beside its messages."""

    summary: str = ""
    summary_upto: int = 0  # id of the newest message the summary covers
    summary_tokens: int = 0
    trim_notified: bool = False


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One turn, as the article asks to log it."""

    session_id: str
    user_text: str
    reply_text: str
    started_at: float
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    status: str  # "ok", "length", "filtered", "empty", "error", "interrupted", "command", "blocked", ...
    model: str
    user_id: str = ""
    bot: str = ""
    platform: str = ""


class ConversationStore(Protocol):
    """Persistence of conversations. Every write is one transaction."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add_message(
        self,
        session_id: str,
        role: Role,
        content: str,
        tokens: int,
        *,
        user_id: str = "",
        complete: bool = True,
    ) -> int:
        """Store one message and return its id."""
        ...

    async def save_reply(
        self,
        session_id: str,
        content: str,
        tokens: int,
        *,
        complete: bool,
        turn: TurnRecord,
        question_id: int | None = None,
    ) -> int:
        """Store the assistant's reply and the turn's record together; return the reply's id. A complete
        reply also marks its question (``question_id``) complete, in the same transaction."""
        ...

    async def record_turn(self, turn: TurnRecord) -> None: ...

    async def recent_messages(
        self, session_id: str, *, after_id: int = 0, before_id: int | None = None, limit: int = 64
    ) -> list[StoredMessage]:
        """Up to ``limit`` complete messages with ``after_id < id < before_id``, newest first."""
        ...

    async def messages_between(
        self, session_id: str, *, after_id: int = 0, before_id: int | None = None, limit: int = 64
    ) -> list[StoredMessage]:
        """Up to ``limit`` complete messages with ``after_id < id < before_id``, oldest first."""
        ...

    async def session(self, session_id: str) -> SessionState: ...

    async def set_summary(self, session_id: str, summary: str, upto_id: int, tokens: int) -> None: ...

    async def mark_trim_notified(self, session_id: str) -> None: ...

    async def reset(self, session_id: str) -> int:
        """Forget a session entirely; return how many messages were deleted."""
        ...

    async def count_messages(self, session_id: str) -> int: ...

    async def forget_user(self, user_id: str) -> int:
        """Delete everything stored about a user: their messages and turns, and whole sessions in which
        they were the only one talking (replies to them included). Return how many messages went."""
        ...

    async def delete_older_than(self, timestamp: float) -> int:
        """Delete messages and turns older than ``timestamp`` (retention); return how many messages went."""
        ...


@dataclass(frozen=True, slots=True)
class ReplyInFlight:
    """A reply being written on a platform, kept until its final text landed: after a crash, the next start
    finds the message still showing half a reply (and its writing marker) and finishes it."""

    id: int
    session_id: str
    platform: str
    bot: str
    user_id: str
    address: Any  # JSON-able: where the reply goes (chat, channel, thread ids)
    message: Any  # JSON-able: the platform message being written, once sent (None before)
    shown: str  # the last text that message showed, without the writing marker
    turn_recorded: bool  # the engine already recorded the turn (the reply was cancelled, not killed)
    started_at: float


@runtime_checkable
class ReplyJournal(Protocol):
    """Where replies in flight are kept (the SQLite store is one); a store without it simply has no
    crash recovery."""

    async def begin_reply(
        self, session_id: str, platform: str, bot: str, user_id: str, address: Any
    ) -> int: ...

    async def reply_shown(self, reply_id: int, message: Any, shown: str) -> None: ...

    async def mark_turn_recorded(self, reply_id: int) -> None: ...

    async def end_reply(self, reply_id: int) -> None: ...

    async def unfinished_replies(self, platform: str, bot: str) -> list[ReplyInFlight]: ...
