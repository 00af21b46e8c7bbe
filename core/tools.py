"""Tools the model may call: what the engine needs of them, and how one turn's calls and results travel.

The core knows no MCP. A :class:`ToolBox` (``features/tools`` builds one over MCP servers) lists the tools
available right now as :class:`ToolSpec` (with whether each only reads), and runs one call within a time
limit. The model asks for calls OpenAI-style (``tool_calls``, several in one step); one turn's calls and
their results are a list of :class:`ToolStep`, sent back to the model as an assistant ``tool_calls``
message followed by one ``tool`` message per call, and stored with the turn's reply as one unit (see
:func:`dump_steps`): a call never travels without its result, nor a result without its call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool as the model sees it; ``read_only`` tools run without asking the user first."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    read_only: bool = False
    title: str = ""

    def as_openai(self) -> dict[str, Any]:
        """The ``tools`` entry of a chat completion request."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    @property
    def label(self) -> str:
        """How the user reads the tool's name: its title, else its name with spaces."""
        return self.title or self.name.replace("_", " ")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model asked for; ``arguments`` is the JSON text as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What a tool returned, as text for the model; ``error`` when the tool reported a failure."""

    text: str
    error: bool = False


class ToolFailed(Exception):
    """A call that could not run (server down, timeout, unknown tool); the message is a plain sentence."""


class ToolBox(Protocol):
    """The tools one bot may use. ``specs`` reflects what is reachable now (a server that is down has no
    tools); ``call`` raises :class:`ToolFailed` with a plain sentence when the call cannot run within ``seconds``."""

    def specs(self) -> Sequence[ToolSpec]: ...

    async def call(self, name: str, arguments: dict[str, Any], *, seconds: float) -> ToolOutcome: ...


@dataclass(frozen=True, slots=True)
class ToolLimits:
    """Bounds on one turn's tool use. ``max_steps``: model calls that may ask for tools; ``tool_seconds``:
    one call; ``total_seconds``: all of the turn's tool work; ``max_tokens``: prompt plus completion tokens
    of the turn's model calls together; ``result_tokens``: one result, beyond which it is cut with a
    marker; ``confirm_seconds``: how long a request for confirmation waits for the user's yes."""

    max_steps: int = 5
    tool_seconds: float = 30.0
    total_seconds: float = 120.0
    max_tokens: int = 60_000
    result_tokens: int = 2_000
    confirm_seconds: float = 120.0


@dataclass
class ToolStep:
    """One step of a turn: the text the model wrote before its calls, the calls, and one result each."""

    text: str
    calls: list[ToolCall]
    results: dict[str, str] = field(default_factory=dict)  # call id -> what the model is told

    def messages(self) -> list[dict[str, Any]]:
        """The assistant ``tool_calls`` message and one ``tool`` message per call."""
        assistant: dict[str, Any] = {
            "role": "assistant",
            "content": self.text or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.calls
            ],
        }
        return [assistant] + [
            {"role": "tool", "tool_call_id": c.id, "content": self.results.get(c.id, NO_RESULT)}
            for c in self.calls
        ]


NO_RESULT = "(no result)"


def step_messages(steps: Sequence[ToolStep]) -> list[dict[str, Any]]:
    """Every step's messages, in order."""
    return [message for step in steps for message in step.messages()]


def dump_steps(steps: Sequence[ToolStep], final_from: int) -> str:
    """A turn's tool steps as stored beside its reply. ``final_from`` is where, in the stored reply, the
    text written after the last step begins (what came before it is the steps' own text)."""
    return json.dumps(
        {
            "final_from": final_from,
            "steps": [
                {
                    "text": s.text,
                    "calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in s.calls],
                    "results": s.results,
                }
                for s in steps
            ],
        },
        ensure_ascii=False,
    )


def load_steps(stored: str) -> tuple[list[ToolStep], int]:
    """The steps and ``final_from`` of :func:`dump_steps`; nothing for text that is not such a record."""
    try:
        data = json.loads(stored)
        steps = [
            ToolStep(
                str(s.get("text", "")),
                [ToolCall(str(c["id"]), str(c["name"]), str(c["arguments"])) for c in s["calls"]],
                {str(k): str(v) for k, v in dict(s.get("results", {})).items()},
            )
            for s in data["steps"]
        ]
        return steps, int(data.get("final_from", 0))
    except (ValueError, KeyError, TypeError, AttributeError):
        return [], 0


def replay(content: str, stored: str) -> list[dict[str, Any]]:
    """A stored reply with its tool steps as the messages the model originally saw and wrote: each step's
    ``tool_calls`` and results, then the final text (a reply with no readable steps is just itself)."""
    steps, final_from = load_steps(stored)
    if not steps:
        return [{"role": "assistant", "content": content}]
    final = content[final_from:].strip() or "(done)"
    return [*step_messages(steps), {"role": "assistant", "content": final}]
