"""The fake model server with a stopwatch: when each streamed reply's first and last token left the server.

:class:`TimedFakeOpenAI` is :class:`tests.fakes.openai_server.FakeOpenAI` (same knobs, same script) whose
streaming answers also record, per request, ``time.monotonic()`` just before the first and the last
content chunk is written to the socket. The benchmarks run the bot and the platform fakes in the same
process, so these times compare directly with the arrival times the platform fakes record.
It listens through the server's ``on_chunk`` hook, so everything else is the original server's behaviour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.openai_server import FakeOpenAI


@dataclass
class StreamTiming:
    """One streamed reply as the model server sent it. ``key`` is the prompt's last user message."""

    key: str
    requested: float
    first_token: float = 0.0
    last_token: float = 0.0
    chunks: int = 0
    done: bool = False

    @property
    def duration(self) -> float:
        return self.last_token - self.first_token


@dataclass
class TimedFakeOpenAI(FakeOpenAI):
    """A :class:`FakeOpenAI` that timestamps the first and last token of every streamed reply."""

    timings: dict[str, StreamTiming] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.on_chunk = self._stamp

    def timing(self, key: str) -> StreamTiming | None:
        """The timing of the (latest) streamed reply to a prompt whose last user message is ``key``."""
        return self.timings.get(key)

    def _stamp(self, body: dict[str, Any], index: int, last: bool) -> None:
        now = time.monotonic()
        users = [m for m in body["messages"] if m.get("role") == "user"]
        key = str(users[-1]["content"]) if users else ""
        if index == 0:
            self.timings[key] = StreamTiming(key=key, requested=now, first_token=now)
        timing = self.timings[key]
        timing.last_token = now
        timing.chunks += 1
        timing.done = last
