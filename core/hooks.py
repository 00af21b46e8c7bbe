"""Extension points of a turn, so features (guardrails, usage limits, review, retrieval) plug into the engine
without the engine knowing them.

    InputGuard      before the model: may stop the turn with a :class:`Refusal` ("I can't", "slow down")
    ContextSource   adds text to the system message (retrieved passages), within a token allowance
    OutputGuard     as the reply accumulates and once complete: may withdraw it with a :class:`Refusal`
    TurnObserver    after every turn, with its record (review triggers, accounting, metrics)
    attachments     reads a message's files (photos, voice notes, documents) into the turn: one reader,
                    see :mod:`core.attachments`; without one, files get "I can only read text"

Chat commands (``/forget``) are not hooks: features add them to the engine's registry,
:class:`core.commands.Commands`.

A withdrawn reply reaches the stream as a :class:`Retraction` chunk: the streaming engine replaces what it
showed with the retraction's text, so the final messages never contain the blocked text. A
:class:`Progress` chunk (a tool is running) is shown after the reply so far until the next chunk replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from core.attachments import AttachmentReader
from core.incoming import IncomingMessage
from core.store import TurnRecord
from core.turn import Refusal as Refusal  # what guards return; re-exported for them


class Retraction(str):
    """A reply chunk that withdraws everything shown so far in this reply and shows itself instead."""

    __slots__ = ()


class Progress(str):
    """A passing line shown after the reply so far ("🔧 looking up …") until the next chunk arrives; never
    part of the final text. An empty one just clears the line."""

    __slots__ = ()


class InputGuard(Protocol):
    async def check_input(self, message: IncomingMessage, text: str) -> Refusal | None: ...


class OutputGuard(Protocol):
    def check_partial(self, message: IncomingMessage, text: str) -> Refusal | None:
        """Cheap check of the reply so far, called as it grows (look at its tail)."""
        ...

    async def check_reply(self, message: IncomingMessage, text: str) -> Refusal | None:
        """Check of the complete reply; may be slow (a model call)."""
        ...


class ContextSource(Protocol):
    async def context_for(self, message: IncomingMessage, text: str, max_tokens: int) -> str:
        """Text for the system message (at most ``max_tokens``), or "" for none."""
        ...


class ToolResultGuard(Protocol):
    async def check_tool_result(self, message: IncomingMessage, tool: str, text: str) -> str | None:
        """Why a tool's output must not reach the model (a prompt injection inside it), or ``None``."""
        ...


class TurnObserver(Protocol):
    async def on_turn(self, message: IncomingMessage, turn: TurnRecord) -> None: ...


@dataclass
class TurnHooks:
    """Everything plugged into one engine."""

    input_guards: list[InputGuard] = field(default_factory=list)
    output_guards: list[OutputGuard] = field(default_factory=list)
    context_sources: list[ContextSource] = field(default_factory=list)
    observers: list[TurnObserver] = field(default_factory=list)
    tool_result_guards: list[ToolResultGuard] = field(default_factory=list)
    context_share: float = 0.3  # of the prompt budget, at most, for context sources together
    attachments: AttachmentReader | None = None
