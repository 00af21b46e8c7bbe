"""👍 / 👎 under every final reply: the platform-neutral half (which replies, the button payload, votes).

Each platform's ``feedback.py`` adds the buttons with one separate call once the reply's final text has
landed (from :attr:`adapters.base.ReplyDispatcher.after_reply`, so it works however the text was streamed)
and turns a click into :meth:`Feedback.vote`.

Which replies carry buttons: the model's answer of a completed turn (status ``ok``, or ``length``: cut at
the length limit but shown and stored complete). Not command answers, refusals by a guard or a limit,
error and "empty reply" notes, filtered or interrupted replies: there is no answer of the model to rate.
A reply split over several messages carries them on its last message.

The rule for votes: only the asker's vote counts (the user whose message the turn answered, in a group as
in a private chat); anyone else who clicks gets a short private notice and the buttons stay for the asker.
One vote per voter per turn (a second click changes nothing); after a vote the buttons go. A 👎 also puts
the turn in the review queue (``chatbot review``) with its question. A click on a turn no longer stored
(``/forget``, retention) gets a polite notice.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from core.clock import Clock
from core.conversation import ConversationEngine
from core.errors import PlatformError, RateLimited
from core.hooks import TurnObserver
from core.incoming import IncomingMessage
from core.store import (
    DOWN,
    DOWNVOTE_PHRASE,
    UP,
    FeedbackStore,
    ReviewStore,
    TurnRecord,
    VotedTurn,
    feedback_of,
)
from core.streaming import ReplyTarget, StreamedReply
from core.turn import TurnStatus

log = logging.getLogger(__name__)

RATED_STATUSES = frozenset({TurnStatus.OK, TurnStatus.LENGTH})
"""Turns whose reply carries the buttons: the model's answer, shown complete."""

UP_LABEL, DOWN_LABEL = "👍", "👎"
_PAYLOAD = re.compile(r"^fb:([0-9]{1,18}):(up|down)$")
# "fb:" + at most 18 digits + ":down" is 26 bytes: inside Telegram's 64-byte callback_data, Discord's
# 100-character custom_id and Slack's 2,000-character button value.


class VoteResult(StrEnum):
    """What became of a click."""

    COUNTED = "counted"
    REPEATED = "repeated"  # the voter's vote was already this one
    NOT_ASKER = "not_asker"
    GONE = "gone"  # the turn is no longer stored (or is not this bot's)
    FAILED = "failed"  # the store failed; nothing was recorded


ACKS: dict[VoteResult, str] = {
    VoteResult.COUNTED: "Thanks for your feedback!",
    VoteResult.REPEATED: "Your vote is already recorded. Thanks!",
    VoteResult.NOT_ASKER: "Only the person who asked can rate this reply.",
    VoteResult.GONE: "This conversation is no longer stored, so there is nothing left to rate.",
    VoteResult.FAILED: "Sorry, your vote could not be saved. Please try again in a moment.",
}
DOWN_ACK = "Thanks for telling us. Someone will look at this reply."
MAX_BUTTON_WAIT = 30.0  # a rate limit longer than this on adding the buttons: the reply goes without them


@dataclass(frozen=True, slots=True)
class VoteOutcome:
    """A click's result and the acknowledgement the voter sees (privately)."""

    result: VoteResult
    text: str

    @property
    def closes(self) -> bool:
        """Whether the buttons should go: after a vote, or when there is nothing left to vote on."""
        return self.result in (VoteResult.COUNTED, VoteResult.REPEATED, VoteResult.GONE)


def payload(turn_id: int, vote: int) -> str:
    """The button's data: which turn, which vote."""
    return f"fb:{turn_id}:{'up' if vote == UP else 'down'}"


def parse_payload(data: str | None) -> tuple[int, int] | None:
    """``(turn id, vote)`` from a button's data; ``None`` for anything else."""
    found = _PAYLOAD.match(data or "")
    if found is None:
        return None
    return int(found.group(1)), UP if found.group(2) == "up" else DOWN


async def paced(target: ReplyTarget, clock: Clock, call: Callable[[], Awaitable[object]]) -> None:
    """Make the call that adds the buttons in the reply's pace: through the target's shared gate (the
    chat's or workspace's budget, like a final edit), waiting out one rate-limit answer (``call`` raises
    :class:`core.errors.RateLimited`); a longer or second one propagates."""
    gate = target.gate
    for attempt in range(2):
        if gate is not None:
            await gate.acquire()
        try:
            await call()
            return
        except RateLimited as exc:
            if attempt or exc.retry_after > MAX_BUTTON_WAIT:
                raise
            await clock.sleep(exc.retry_after)


async def add_buttons(
    message: IncomingMessage, target: ReplyTarget, clock: Clock, call: Callable[[], Awaitable[object]]
) -> None:
    """Add the buttons under ``message``'s final reply with ``call``, :func:`paced`; a platform refusal is
    logged and the reply stays as it is, without them (its text is final already)."""
    try:
        await paced(target, clock, call)
    except PlatformError as exc:
        log.warning("%s: could not add the feedback buttons: %s", message.session_id, exc)


class TurnWatch:
    """A turn observer keeping the record of each message's turn until the reply is delivered.

    Keyed by the message object (identity): the dispatcher hands the same object to the engine and to
    :attr:`adapters.base.ReplyDispatcher.after_reply`. Bounded, so a reply cancelled before its hook ran
    leaves nothing behind for long.
    """

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._turns: OrderedDict[int, tuple[IncomingMessage, TurnRecord]] = OrderedDict()

    async def on_turn(self, message: IncomingMessage, turn: TurnRecord) -> None:
        self._turns[id(message)] = (message, turn)
        while len(self._turns) > self._limit:
            self._turns.popitem(last=False)

    def take(self, message: IncomingMessage) -> TurnRecord | None:
        found = self._turns.pop(id(message), None)
        return found[1] if found is not None and found[0] is message else None


def _watch_of(engine: ConversationEngine) -> TurnWatch:
    observers: list[TurnObserver] = engine.hooks.observers
    for observer in observers:
        if isinstance(observer, TurnWatch):
            return observer
    watch = TurnWatch()
    observers.append(watch)
    return watch


class Feedback:
    """Votes for one bot on one platform."""

    def __init__(self, engine: ConversationEngine, platform: str, store: FeedbackStore) -> None:
        self.engine = engine
        self.platform = platform
        self.store = store
        self.watch = _watch_of(engine)

    @classmethod
    def create(cls, engine: ConversationEngine, platform: str, *, enabled: bool = True) -> Feedback | None:
        """Feedback for ``platform``; ``None`` when turned off or the store keeps no votes."""
        if not enabled:
            return None
        store = feedback_of(engine.store)
        if store is None:
            log.warning("%s: the store keeps no votes; replies get no feedback buttons", platform)
            return None
        return cls(engine, platform, store)

    async def turn_for(self, message: IncomingMessage, result: StreamedReply | None) -> int | None:
        """The turn id the buttons under this reply carry, or ``None`` when it gets no buttons."""
        record = self.watch.take(message)
        if result is None or not result.refs or record is None or record.status not in RATED_STATUSES:
            return None
        try:
            return await self.store.turn_id(record.session_id, record.started_at)
        except Exception:
            log.exception("%s: could not find the turn to rate", message.session_id)
            return None

    async def click(self, data: str | None, user: object) -> VoteOutcome | None:
        """A click on a button with ``data`` by the platform's ``user`` id, counted as that user's vote
        (``<platform>:<id>``, as in :attr:`IncomingMessage.user_id`); ``None`` when it is not our button."""
        parsed = parse_payload(data)
        if parsed is None:
            return None
        turn_id, vote = parsed
        return await self.vote(turn_id, f"{self.platform}:{user}", vote)

    async def vote(self, turn_id: int, voter: str, vote: int) -> VoteOutcome:
        """Count ``voter``'s click on a turn's button, by the rule in this module's docstring."""
        try:
            return await self._vote(turn_id, voter, vote)
        except Exception:
            log.exception("%s: could not store a vote on turn %d", self.platform, turn_id)
            return VoteOutcome(VoteResult.FAILED, ACKS[VoteResult.FAILED])

    async def _vote(self, turn_id: int, voter: str, vote: int) -> VoteOutcome:
        turn = await self.store.voted_turn(turn_id)
        if turn is None or turn.bot != self.engine.bot.name or turn.platform != self.platform:
            return VoteOutcome(VoteResult.GONE, ACKS[VoteResult.GONE])
        if turn.user_id != voter:
            log.info("%s: %s voted on %s's reply; not counted", turn.session_id, voter, turn.user_id)
            return VoteOutcome(VoteResult.NOT_ASKER, ACKS[VoteResult.NOT_ASKER])
        if not await self.store.vote(turn_id, voter, vote):
            if await self.store.vote_of(turn_id, voter) == vote:
                return VoteOutcome(VoteResult.REPEATED, ACKS[VoteResult.REPEATED])
            return VoteOutcome(VoteResult.GONE, ACKS[VoteResult.GONE])  # deleted meanwhile
        log.info("%s: turn %d voted %s", turn.session_id, turn_id, UP_LABEL if vote == UP else DOWN_LABEL)
        if vote == DOWN:
            await self._flag(turn)
            return VoteOutcome(VoteResult.COUNTED, DOWN_ACK)
        return VoteOutcome(VoteResult.COUNTED, ACKS[VoteResult.COUNTED])

    async def _flag(self, turn: VotedTurn) -> None:
        """Put a 👎 turn (as :meth:`_vote` read it) in the review queue, with its question (the review shows
        the context)."""
        review: ReviewStore | None = getattr(self.engine.store, "review", None)
        if review is None:
            return
        record = TurnRecord(
            session_id=turn.session_id,
            user_text=turn.question,
            reply_text=turn.reply,
            started_at=turn.started_at,
            latency_ms=0.0,
            prompt_tokens=0,
            completion_tokens=0,
            status=turn.status,
            model="",
            user_id=turn.user_id,
            bot=turn.bot,
            platform=turn.platform,
        )
        await review.add(record, DOWNVOTE_PHRASE)
