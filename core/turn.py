"""One turn of a conversation while the engine runs it, and the statuses a finished turn is recorded with.

A :class:`Turn` carries what the named steps of :class:`core.conversation.ConversationEngine` share: the
message, its cleaned text, the stored question, what the model produced and what the user was shown, the
usage the server reported, and the status. :class:`TurnStatus` is the one list of statuses: the engine,
the usage limits and the in-flight journal produce them; stats, review, evaluation and metrics read them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from core.attachments import ImagePart
from core.bot_profile import BotProfile
from core.incoming import IncomingMessage
from core.model_client import Usage
from core.tools import ToolCall, ToolStep


class TurnStatus(StrEnum):
    """How a turn ended. String-valued: the store, the turn log and metrics labels hold the plain text."""

    OK = "ok"
    """The model's reply reached the user complete."""
    EMPTY = "empty"
    """The model returned an empty (or blank) reply; the user was told so."""
    ERROR = "error"
    """The model call failed before any text: unavailable, refused by the server, or the prompt too long."""
    INTERRUPTED = "interrupted"
    """The reply broke off after some text, the turn was cancelled, or the process died during it (the
    in-flight journal records such a turn after a restart)."""
    BLOCKED = "blocked"
    """A guard refused the input or withdrew the reply; the user saw the refusal."""
    LIMITED = "limited"
    """A usage limit (rate, daily tokens, budget) stopped the turn before the model was called."""
    COMMAND = "command"
    """A chat command (``/reset``, ``/help`` ...) answered without the model."""
    LENGTH = "length"
    """The reply hit the length limit (``finish_reason: length``): shown with a notice, stored complete."""
    FILTERED = "filtered"
    """The model server's content filter stopped the reply (``finish_reason: content_filter``); the user
    was told so and the question is not fed back."""
    UNREADABLE = "unreadable"
    """The message's files could not be used (too big, corrupt, a failed download or transcription, a type
    the bot does not read, images for a text-only model) and nothing else was left to answer; the user was
    told why, without a model call."""


FAILED_STATUSES = frozenset({TurnStatus.ERROR, TurnStatus.INTERRUPTED})
"""Turns the model (or the process) failed: what stats count as errors."""
ANSWERED_STATUSES = frozenset(
    {TurnStatus.OK, TurnStatus.LENGTH, TurnStatus.EMPTY, TurnStatus.COMMAND, TurnStatus.UNREADABLE}
)
"""Turns answered as asked: neither failed nor stopped by a guard or a limit."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A hook's refusal to run a turn or to show its reply: what the user sees instead, and why (for the log).

    An input guard or a usage limit refuses before the model is called; an output guard withdraws a reply.
    """

    reply: str
    reason: str
    status: TurnStatus = TurnStatus.BLOCKED
    stored_text: str | None = None  # what to keep of a refused input instead of its text (e.g. redacted)


def stopped(status: str) -> bool:
    """Whether a guard or a limit stopped the turn (any status that is neither answered nor failed)."""
    return status not in ANSWERED_STATUSES and status not in FAILED_STATUSES


@dataclass
class Turn:
    """What one turn has so far, for storing, logging and billing it however it ends."""

    message: IncomingMessage
    text: str  # the cleaned text of the message
    bot: BotProfile  # the bot as this turn started (and as the chat chose it): a reload applies to the next
    started_at: float = field(default_factory=time.time)  # wall clock, for the record
    started: float = 0.0  # the engine's clock, for the latency
    question_id: int = 0  # the stored question, once stored
    parts: list[str] = field(default_factory=list)  # the model's text (withdrawn text included)
    status: TurnStatus = TurnStatus.OK
    refusal: Refusal | None = None  # an output guard's, once it withdrew the reply
    shown: str | None = None  # a refusal shown instead of the model's withdrawn text
    usage: Usage | None = None  # as the server reported it
    prompt_estimate: int = 0  # our estimate of the prompt, for a stream that ended without usage
    finish_reason: str | None = None  # how the stream said it ended ("stop", "length", "content_filter")
    images: tuple[ImagePart, ...] = ()  # sent with the question in this turn only (never stored)
    tool_steps: list[ToolStep] = field(default_factory=list)  # calls run in this turn, with their results
    final_from: int = 0  # where in ``produced`` the text after the last tool step begins
    asked: list[ToolCall] = field(default_factory=list)  # calls the last model call asked for
    step_usage: Usage | None = None  # what the last model call cost, as reported

    @property
    def produced(self) -> str:
        """Everything the model produced in this turn."""
        return "".join(self.parts)

    @property
    def reply(self) -> str:
        """What the user saw in the end: the refusal that replaced a withdrawn reply, else the model's text."""
        return self.shown if self.shown is not None else self.produced
