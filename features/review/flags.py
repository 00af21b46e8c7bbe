"""Review triggers: conversations a human should look at, flagged as they happen.

A user who writes "that is wrong" or "you made that up" has just told us the bot failed; the article asks
to flag such conversations for immediate review. :class:`ReviewTrigger` is a turn observer that flags a
turn when the user's text contains a configured phrase (matched without regard to case, punctuation or
apostrophes), and when a guard blocked the turn (status ``blocked``: an attack worth seeing, or a guard
being too strict). Failed model calls are not flagged: they are infrastructure, counted by ``chatbot
stats`` and the metrics. Flags are kept by the store's :class:`core.store.ReviewStore`
(``engine.store.review``), and ``chatbot review`` lists them with the messages around them.

A flag holds the user's words, so it lives as long as its turn: the store deletes it with the turn, and
with the user's data (``/forget``) or when it is older than the retention period.
"""

from __future__ import annotations

import logging
import re

from core.incoming import IncomingMessage
from core.store import ContextMessage, ReviewFlag, ReviewStore, TurnRecord
from core.turn import TurnStatus

__all__ = [
    "DEFAULT_REVIEW_PHRASES",
    "STATUS_PREFIX",
    "ContextMessage",
    "ReviewFlag",
    "ReviewTrigger",
    "find_phrase",
    "normalise",
    "parse_phrases",
]

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


class ReviewTrigger:
    """Turn observer: flags turns whose user text contains a trigger phrase, and blocked turns."""

    def __init__(
        self,
        repository: ReviewStore,
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
