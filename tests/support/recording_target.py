"""A ReplyTarget that records every call against a clock, like a platform would see them.

Each call takes ``latency`` seconds on the target's clock (virtual or real), so text can arrive while a call
is in flight, as it does against a real platform. ``failures`` makes the n-th call of a kind fail.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from core.clock import Clock
from core.errors import RateLimited
from core.pacing import Gate
from core.streaming import PlatformLimits


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
    clock: Clock
    gate: Gate | None = None
    calls: list[Call] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)
    rate_limits: deque[float] = field(default_factory=deque)  # retry_after answers for the next calls
    rate_limit_on: str = "edit"
    latency: float = 0.0  # seconds every send and edit takes
    failures: dict[tuple[str, int], Exception] = field(default_factory=dict)  # (kind, n-th call) -> error
    counts: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    log: list[Call] | None = None  # a log shared by several targets (replies in one chat)
    address: dict[str, object] = field(default_factory=dict)

    def _maybe_fail(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        failure = self.failures.pop((kind, self.counts[kind]), None)
        if failure is not None:
            raise failure
        if self.rate_limits and kind == self.rate_limit_on:
            raise RateLimited(self.rate_limits.popleft())

    async def _take_time(self) -> None:
        if self.latency:
            self.in_flight += 1
            try:
                await self.clock.sleep(self.latency)
            finally:
                self.in_flight -= 1

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        if self.log is not None:
            self.log.append(call)

    async def send(self, text: str, *, final: bool) -> object:
        await self._take_time()
        self._maybe_fail("send")
        assert self.limits.measure(text) <= self.limits.max_chars, "message over the platform limit"
        ref = len(self.texts) + 1
        self.texts[ref] = text
        self._record(Call(self.clock.now(), "send", ref, text, final))
        return ref

    async def edit(self, ref: object, text: str, *, final: bool) -> None:
        assert isinstance(ref, int)
        await self._take_time()
        self._maybe_fail("edit")
        assert self.limits.measure(text) <= self.limits.max_chars, "message over the platform limit"
        assert text != self.texts[ref], "edit that changes nothing"
        self.texts[ref] = text
        self._record(Call(self.clock.now(), "edit", ref, text, final))

    async def typing(self) -> None:
        self._record(Call(self.clock.now(), "typing", 0, "", False))

    def ref_address(self, ref: object) -> object:
        return ref

    def visible(self) -> list[str]:
        return [self.texts[ref] for ref in sorted(self.texts)]

    def changes(self) -> list[Call]:
        return [c for c in self.calls if c.kind != "typing"]
