"""A ReplyTarget that records every call against a virtual clock, like a platform would see them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from core.errors import RateLimited
from core.pacing import RateGate
from core.streaming import PlatformLimits
from tests.support.clock import VirtualClock


@dataclass
class Call:
    at: float
    kind: str  # "send", "edit", "typing"
    ref: int
    text: str
    final: bool


@dataclass
class RecordingTarget:
    limits: PlatformLimits
    clock: VirtualClock
    gate: RateGate | None = None
    calls: list[Call] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)
    rate_limits: deque[float] = field(default_factory=deque)  # retry_after answers for the next calls
    rate_limit_on: str = "edit"

    def _maybe_limit(self, kind: str) -> None:
        if self.rate_limits and kind == self.rate_limit_on:
            raise RateLimited(self.rate_limits.popleft())

    async def send(self, text: str, *, final: bool) -> object:
        self._maybe_limit("send")
        assert self.limits.measure(text) <= self.limits.max_chars, "message over the platform limit"
        ref = len(self.texts) + 1
        self.texts[ref] = text
        self.calls.append(Call(self.clock.now(), "send", ref, text, final))
        return ref

    async def edit(self, ref: object, text: str, *, final: bool) -> None:
        assert isinstance(ref, int)
        self._maybe_limit("edit")
        assert self.limits.measure(text) <= self.limits.max_chars, "message over the platform limit"
        assert text != self.texts[ref], "edit that changes nothing"
        self.texts[ref] = text
        self.calls.append(Call(self.clock.now(), "edit", ref, text, final))

    async def typing(self) -> None:
        self.calls.append(Call(self.clock.now(), "typing", 0, "", False))

    def visible(self) -> list[str]:
        return [self.texts[ref] for ref in sorted(self.texts)]

    def changes(self) -> list[Call]:
        return [c for c in self.calls if c.kind != "typing"]
