"""The conversation store's interface and the records it keeps.

A store keeps, per session, every message (role, content, token count, timestamps, whether it completed)
and the running summary. Only complete messages are fed back to the model. A user's question is stored
incomplete ("awaiting its answer") and becomes complete with the complete reply that answers it; a question
whose turn failed, and a reply that was interrupted or failed, stay incomplete: kept for the record (review,
/forget, retention), never fed back to the model.

Every table the bot and its features use sits behind one of the interfaces here, with plain record types:
:class:`ConversationStore` (messages, sessions, turns, user-data deletion), :class:`ReplyJournal` (replies
in flight), :class:`TurnLedger` (token sums and turn statistics), :class:`ReviewStore` (review flags) and
:class:`KnowledgeStore` (a bot's documents, passages and vectors). A backend provides all of them as one
:class:`Storage` object (the store, with ``.ledger``, ``.review`` and ``.knowledge``), and may offer
:class:`FeedbackStore` (votes on replies) as ``.feedback`` (:func:`feedback_of`). SQLite is the default
(:mod:`core.sqlite_store`); ``tests/store_contract`` is the suite a second backend must pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from core.errors import ConfigError
from core.knowledge import DocumentInfo, NewDocument, StoredChunk, VectorIndex

Role = Literal["user", "assistant"]


class Row(Protocol):
    """A result row of either backend (``sqlite3.Row``, ``asyncpg.Record``), read by column position."""

    def __getitem__(self, index: int, /) -> Any: ...


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
class ChatChoice:
    """What one conversation chose with ``/mode`` and ``/model`` (``None``: the bot's own)."""

    mode: str | None = None
    model: str | None = None


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
    status: str  # a TurnStatus value (core/turn.py says when each is produced)
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
        tools: str = "",
    ) -> int:
        """Store the assistant's reply and the turn's record together; return the reply's id. A complete
        reply also marks its question (``question_id``) complete, in the same transaction. ``tools`` is the
        turn's tool calls and results (:func:`core.tools.dump_steps`), kept with the reply as one row, so
        trimming keeps or drops them together."""
        ...

    async def tool_exchanges(self, session_id: str, *, after_id: int, before_id: int) -> dict[int, str]:
        """The ``tools`` of complete replies with ``after_id < id < before_id`` that have any, by id."""
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

    # Per-chat choice (bots file, issue 16): kept across /reset and restarts; one row per session.
    async def chat_choice(self, session_id: str) -> ChatChoice:
        """The session's ``/mode`` and ``/model`` choice (``ChatChoice()`` when it made none)."""
        ...

    async def set_chat_choice(self, session_id: str, choice: ChatChoice) -> None:
        """Replace the session's choice."""
        ...

    async def forget_user(self, user_id: str) -> int:
        """Delete everything stored about a user: their messages and turns, whole sessions in which they
        were the only one talking (replies to them included), their review flags and their replies in
        flight. Return how many messages went."""
        ...

    async def delete_older_than(self, timestamp: float) -> int:
        """Delete messages, turns, review flags and replies in flight older than ``timestamp`` (retention);
        return how many messages went."""
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


REPLY_IN_FLIGHT_COLUMNS = (
    "id, session_id, platform, bot, user_id, address, message, shown, turn_recorded, started_at"
)
"""The ``replies_in_flight`` columns :func:`reply_in_flight_of` reads, in its order."""


def reply_in_flight_of(row: Row) -> ReplyInFlight:
    """A :class:`ReplyInFlight` from a row of :data:`REPLY_IN_FLIGHT_COLUMNS` (addresses and messages are
    stored as JSON text by both backends)."""
    return ReplyInFlight(
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


@dataclass(frozen=True, slots=True)
class EventTurn:
    """What the store holds for one platform delivery: its stored question, and the complete reply that
    answered it (``None`` while unanswered, or when the turn ended without a complete reply)."""

    question_id: int
    reply: str | None


@runtime_checkable
class EventQuestions(Protocol):
    """Questions keyed by the platform's delivery id (:attr:`core.incoming.IncomingMessage.event_id`), so a
    message handled twice (a work queue's job retried after its worker died) is stored once, and a retry
    finds the reply a dead worker already stored. A store without it stores every handling anew."""

    async def add_question_once(
        self, session_id: str, event_id: str, content: str, tokens: int, *, user_id: str = ""
    ) -> int:
        """Store the incomplete question of ``event_id`` and return its id; when the event already has a
        stored question, store nothing and return that question's id. One transaction."""
        ...

    async def event_turn(self, event_id: str) -> EventTurn | None:
        """The event's question and, once a complete reply answered it, that reply; ``None`` when the event
        has no stored question (never handled, or its session was reset since)."""
        ...


@dataclass(frozen=True, slots=True)
class TurnStats:
    """What the turn log keeps of a turn for statistics (no text)."""

    started_at: float
    user_id: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    status: str
    model: str
    bot: str
    platform: str


TURN_STATS_COLUMNS = (
    "started_at, user_id, latency_ms, prompt_tokens, completion_tokens, status, model, bot, platform"
)
"""The ``turns`` columns :func:`turn_stats_of` reads, in its order."""


def turn_stats_of(row: Row) -> TurnStats:
    """A :class:`TurnStats` from a row of :data:`TURN_STATS_COLUMNS` (either backend's row type)."""
    return TurnStats(
        started_at=float(row[0]),
        user_id=str(row[1]),
        latency_ms=float(row[2]),
        prompt_tokens=int(row[3]),
        completion_tokens=int(row[4]),
        status=str(row[5]),
        model=str(row[6]),
        bot=str(row[7]),
        platform=str(row[8]),
    )


class TurnLedger(Protocol):
    """Reads of the turn log: daily token budgets and ``chatbot stats``."""

    async def user_tokens_since(self, user_id: str, since: float, *, bot: str | None = None) -> int:
        """Prompt + completion tokens of the user's turns started at or after ``since`` (with ``bot`` only,
        when given: several bots share one store and each keeps its own limits)."""
        ...

    async def bot_tokens_since(self, bot: str, since: float) -> int: ...

    async def count_user_turns(self, user_id: str) -> int: ...

    async def turns_between(self, since: float, until: float, *, bot: str | None = None) -> list[TurnStats]:
        """Turns with ``since <= started_at < until`` (of ``bot`` only, if given), oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class ReviewFlag:
    """A turn flagged for a human to read. It holds the user's words, so it lives as long as its turn."""

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


FLAG_COLUMNS = (
    "id, session_id, user_id, bot, platform, turn_started_at, phrase, user_text, created_at, resolved"
)
"""The ``review_flags`` columns :func:`flag_from_row` reads, in its order."""


def flag_from_row(row: Row) -> ReviewFlag:
    """A :class:`ReviewFlag` from a row of :data:`FLAG_COLUMNS` (either backend's row type)."""
    return ReviewFlag(
        id=int(row[0]),
        session_id=str(row[1]),
        user_id=str(row[2]),
        bot=str(row[3]),
        platform=str(row[4]),
        turn_started_at=float(row[5]),
        phrase=str(row[6]),
        user_text=str(row[7]),
        created_at=float(row[8]),
        resolved=bool(row[9]),
    )


def context_around(anchor: int, rows: Iterable[Row]) -> list[ContextMessage]:
    """``(id, role, content, created_at, complete)`` rows, oldest first, as the context of the flagged user
    message ``anchor``: the message after it stays only if it is the reply (every backend answers alike)."""
    messages = [
        ContextMessage(
            id=int(row[0]),
            role=str(row[1]),
            content=str(row[2]),
            created_at=float(row[3]),
            complete=bool(row[4]),
            flagged=int(row[0]) == anchor,
        )
        for row in rows
    ]
    if len(messages) >= 2 and messages[-1].role != "assistant":
        messages.pop()  # the next message is the user's again: there was no reply
    return messages


class ReviewStore(Protocol):
    """Review flags (``chatbot review``). Forgetting a user and retention delete them with their turns."""

    async def add(self, turn: TurnRecord, phrase: str, *, now: float | None = None) -> int:
        """Flag ``turn`` (its user text stored with secrets redacted); return the flag's id."""
        ...

    async def flags(
        self, *, bot: str | None = None, include_resolved: bool = False, limit: int = 50
    ) -> list[ReviewFlag]:
        """Flags, newest first: open ones only unless ``include_resolved``."""
        ...

    async def get(self, flag_id: int) -> ReviewFlag | None: ...

    async def resolve(self, flag_id: int) -> bool:
        """Mark a flag resolved; False if there is no such flag."""
        ...

    async def count_open(self, *, bot: str | None = None) -> int: ...

    async def count_user_flags(self, user_id: str) -> int: ...

    async def context(self, flag: ReviewFlag, *, before: int = 6) -> list[ContextMessage]:
        """The flagged user message with up to ``before`` messages before it and the reply after it,
        incomplete ones included; empty if the conversation has since been deleted."""
        ...


class KnowledgeStore(Protocol):
    """A bot's knowledge base: documents, passages with vectors, keyword search, a version per bot.
    Knowledge belongs to a bot, not to a user: forgetting a user leaves it alone."""

    async def bots(self) -> list[str]:
        """The bots that have documents."""
        ...

    async def documents(self, bot: str) -> list[DocumentInfo]:
        """The bot's ingested files, by source name."""
        ...

    async def chunk_count(self, bot: str) -> int: ...

    async def write_documents(self, bot: str, documents: Iterable[NewDocument]) -> None:
        """Add or replace documents (their old passages go) in one transaction."""
        ...

    async def remove_documents(self, bot: str, paths: Iterable[str]) -> int:
        """Forget documents and their passages; return how many went."""
        ...

    async def export_documents(self, bot: str) -> list[NewDocument]:
        """The bot's documents with their passages and vectors, as :meth:`write_documents` takes them
        (to copy a knowledge base to another store)."""
        ...

    async def version(self, bot: str) -> int:
        """A number that changes whenever the bot's documents change."""
        ...

    async def vectors(self, bot: str) -> VectorIndex:
        """The bot's vector index, up to date with its version."""
        ...

    async def keyword_search(self, bot: str, text: str, limit: int) -> list[tuple[int, float]]:
        """Passages matching the text's significant words, best first, as ``(chunk id, score > 0)``."""
        ...

    async def chunks(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]: ...


# -- feedback votes (👍 / 👎 on replies) ---------------------------------------------------------------

UP, DOWN = 1, -1
DOWNVOTE_PHRASE = "feedback:thumbs-down"
"""The review flag's phrase for a 👎 vote (``chatbot review`` names it; the export picks these flags)."""


@dataclass(frozen=True, slots=True)
class VotedTurn:
    """A recorded turn a vote is about: who asked, where, and its question and reply as stored."""

    id: int
    session_id: str
    user_id: str
    bot: str
    platform: str
    started_at: float
    status: str
    question: str  # "" when the question is no longer stored
    reply: str


END_SLACK = 2.0  # seconds after a turn's recorded end that its reply may have been stored
VOTED_TURN_COLUMNS = "id, session_id, user_id, bot, platform, started_at, status, latency_ms"
"""The ``turns`` columns :func:`turn_span` and :func:`voted_turn_of` read, in their order."""


def turn_span(turn: Row) -> tuple[str, str, float, float]:
    """``(session_id, user_id, started_at, ended)`` of a row of :data:`VOTED_TURN_COLUMNS`.

    The turn's question is the asker's first message stored between ``started_at`` and ``ended`` (the
    engine holds the session's lock for the whole turn), and its reply the first bot message after that,
    stored by ``ended``. A question deleted since (/reset) is not mistaken for a later one: those come after
    the end."""
    started_at = float(turn[5])
    return str(turn[1]), str(turn[2]), started_at, started_at + float(turn[7]) / 1000.0 + END_SLACK


def voted_turn_of(turn: Row, question: Row | None, reply: Row | None) -> VotedTurn:
    """A :class:`VotedTurn` from its ``turns`` row (:data:`VOTED_TURN_COLUMNS`), its question's
    ``(id, content)`` row and its reply's ``(content,)`` row, each ``None`` when not found."""
    return VotedTurn(
        id=int(turn[0]),
        session_id=str(turn[1]),
        user_id=str(turn[2]),
        bot=str(turn[3]),
        platform=str(turn[4]),
        started_at=float(turn[5]),
        status=str(turn[6]),
        question="" if question is None else str(question[1]),
        reply="" if reply is None else str(reply[0]),
    )


@dataclass(frozen=True, slots=True)
class VoteCount:
    """Votes on the turns of one bot on one platform."""

    bot: str
    platform: str
    up: int
    down: int


@runtime_checkable
class FeedbackStore(Protocol):
    """Votes on turns (the ``turn_votes`` table): one per voter per turn, a changed vote replaces the
    earlier one. Votes go with their turn (forgetting a user, retention)."""

    async def turn_id(self, session_id: str, started_at: float) -> int | None:
        """The id of the recorded turn of ``session_id`` that started at ``started_at`` (what a vote names)."""
        ...

    async def voted_turn(self, turn_id: int) -> VotedTurn | None:
        """The turn, with its question and reply; ``None`` when it is no longer stored."""
        ...

    async def vote(self, turn_id: int, voter: str, vote: int, *, now: float | None = None) -> bool:
        """Store ``voter``'s vote (:data:`UP` or :data:`DOWN`) on the turn, replacing theirs; True when
        that changed something, False for the same vote again or a turn no longer stored."""
        ...

    async def vote_of(self, turn_id: int, voter: str) -> int | None: ...

    async def vote_counts(self, since: float, until: float, *, bot: str | None = None) -> list[VoteCount]:
        """Votes on turns with ``since <= started_at < until``, per bot and platform."""
        ...


def feedback_of(store: ConversationStore) -> FeedbackStore | None:
    """The store's votes (``store.feedback``), or ``None`` for a backend without them (no buttons then)."""
    feedback = getattr(store, "feedback", None)
    return feedback if isinstance(feedback, FeedbackStore) else None


@runtime_checkable
class Storage(ConversationStore, ReplyJournal, Protocol):
    """Everything a backend stores, on one object: conversations and the reply journal on the store itself,
    the other interfaces as attributes. Features reach their tables through it (``engine.store.review``)."""

    @property
    def ledger(self) -> TurnLedger: ...

    @property
    def review(self) -> ReviewStore: ...

    @property
    def knowledge(self) -> KnowledgeStore: ...

    @property
    def feedback(self) -> FeedbackStore: ...


def storage_of(store: ConversationStore) -> Storage:
    """``store`` as the full :class:`Storage` a feature needs; a clear error for a backend that lacks it."""
    if not isinstance(store, Storage):
        raise ConfigError(
            f"the store {type(store).__name__} does not provide every storage interface "
            "(ledger, review, knowledge; see core/store.py)"
        )
    return store
