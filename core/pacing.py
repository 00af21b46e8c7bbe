"""Shared pacing of platform calls across concurrent replies.

A platform's limit is often wider than one message (Slack's chat.update per workspace, Discord's edits per
channel). A :class:`RateGate` is a sliding-window limit that every reply to the same place shares: never
more than ``rate`` calls in any ``per`` seconds. Live-preview edits take a slot only when one is free and
leave a reserve for final edits; final edits and new messages wait for theirs, first come first served
(a reply that started waiting first is never overtaken by a later one). A :class:`BurstGate` is the other
shape a platform's pace takes: a few calls at once, then a steady one per interval (Telegram's chats).
:class:`KeyedGates` keeps one gate per key and forgets idle ones, so the number of chats seen does not grow
memory without bound. Every gate states its limits as :class:`GateShape` values, so that the same limits
can be kept by a gate that several worker processes share (``core/shared_state.py``).
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

from core.clock import Clock

MAX_GATES = 10_000  # per-key gates a process keeps (one per chat or channel it has spoken in lately)


MIN_WAIT = 1e-3  # the shortest wait a gate that turned a call down reports


class Gate(Protocol):
    """What the streaming engine asks of a shared limit. Both calls may do I/O: a gate that several worker
    processes share keeps its state in a shared store (``core/shared_state.py``)."""

    async def try_take(self) -> float:
        """Take a slot for an optional call (a preview) if one is free (0.0), else the seconds until one
        may be (nothing is taken)."""
        ...

    async def acquire(self) -> None:
        """Wait for a slot for a call that must happen (a final edit, a new message), in arrival order."""
        ...


@dataclass(frozen=True, slots=True)
class GateShape:
    """A gate's limit as plain numbers, so that a gate shared by several processes keeps the same pace.

    ``window``: at most ``calls`` in any ``seconds``; ``burst``: ``calls`` at once, then one per
    ``seconds``. Either way previews leave ``reserve`` calls for final ones; ``seconds`` includes the margin.
    """

    kind: Literal["window", "burst"]
    calls: int
    seconds: float
    reserve: int


class PacedGate(Gate, Protocol):
    """An in-process gate whose limits can be read as :class:`GateShape` values."""

    @property
    def shapes(self) -> tuple[GateShape, ...]: ...


class _TakesOptional:
    """``try_take`` from the synchronous ``try_acquire`` and ``delay`` of an in-process gate."""

    def try_acquire(self) -> bool:
        raise NotImplementedError

    def delay(self) -> float:
        raise NotImplementedError

    async def try_take(self) -> float:
        return 0.0 if self.try_acquire() else max(MIN_WAIT, self.delay())


class RateGate(_TakesOptional):
    """At most ``rate`` operations in any window of ``per`` seconds."""

    def __init__(
        self, rate: int, per: float, clock: Clock, *, reserve: float = 0.2, margin: float = 0.05
    ) -> None:
        if rate < 1 or per <= 0:
            raise ValueError("rate must be at least 1 and per positive")
        self.rate = rate
        self.per = per + margin  # the platform counts a call when it arrives, a little after we send it
        self._clock = clock
        self._reserve = min(rate - 1, math.ceil(rate * reserve)) if rate > 1 else 0
        self._stamps: deque[float] = deque()
        self._queue = asyncio.Lock()  # waiters for a must-happen slot, served in arrival order (FIFO)

    @property
    def shapes(self) -> tuple[GateShape, ...]:
        return (GateShape("window", self.rate, self.per, self._reserve),)

    def _used(self) -> int:
        cutoff = self._clock.now() - self.per
        while self._stamps and self._stamps[0] <= cutoff:
            self._stamps.popleft()
        return len(self._stamps)

    def try_acquire(self) -> bool:
        """Take a slot for an optional call (a preview edit), keeping the reserve for final ones."""
        if self._used() < self.rate - self._reserve:
            self._stamps.append(self._clock.now())
            return True
        return False

    def delay(self) -> float:
        """Seconds until :meth:`try_acquire` can succeed."""
        used = self._used()
        allowed = self.rate - self._reserve
        if used < allowed:
            return 0.0
        return max(0.0, self._stamps[used - allowed] + self.per - self._clock.now())

    async def acquire(self) -> None:
        """Wait for a slot for a call that must happen (a final edit, a new message), in arrival order."""
        async with self._queue:  # asyncio.Lock hands over to its waiters in FIFO order, with no barging
            while self._used() >= self.rate:
                await self._clock.sleep(max(1e-3, self._stamps[0] + self.per - self._clock.now()))
            self._stamps.append(self._clock.now())

    @property
    def idle(self) -> bool:
        """Nobody waits and no call is inside the window: forgetting the gate loses nothing."""
        return not self._queue.locked() and self._used() == 0


class AllGates(_TakesOptional):
    """Several limits at once (a chat's own pace and its group's): a call passes when every gate lets it."""

    def __init__(self, *gates: RateGate | BurstGate) -> None:
        self.gates = gates

    @property
    def shapes(self) -> tuple[GateShape, ...]:
        return tuple(shape for gate in self.gates for shape in gate.shapes)

    def try_acquire(self) -> bool:
        if any(gate.delay() > 0 for gate in self.gates):
            return False
        return all(gate.try_acquire() for gate in self.gates)

    def delay(self) -> float:
        return max(gate.delay() for gate in self.gates)

    async def acquire(self) -> None:
        """Each gate in turn; each serves its waiters in arrival order, so the whole is FIFO too."""
        for gate in self.gates:
            await gate.acquire()


class BurstGate(_TakesOptional):
    """Up to ``burst`` calls at once, then one per ``interval`` seconds: a token bucket, kept as the time
    the bucket will be full again (the "theoretical arrival time" of GCRA), so it costs no list of stamps.

    Live previews take a call only while ``reserve`` more would still be left, so a final edit that comes
    right after a preview goes at once instead of waiting out the interval.
    """

    def __init__(
        self, burst: int, interval: float, clock: Clock, *, reserve: int = 1, margin: float = 0.05
    ) -> None:
        if burst < 1 or interval <= 0:
            raise ValueError("burst must be at least 1 and interval positive")
        self.burst = burst
        self.interval = interval + margin  # the platform counts a call when it arrives, a little later
        self._clock = clock
        self._reserve = max(0, min(burst - 1, reserve))
        self._full_at = -math.inf  # before this time the bucket is missing (full_at - now) / interval calls
        self._queue = asyncio.Lock()

    @property
    def shapes(self) -> tuple[GateShape, ...]:
        return (GateShape("burst", self.burst, self.interval, self._reserve),)

    def _wait(self, spare: int) -> float:
        """Seconds until a call can be made that leaves ``spare`` more calls in the bucket."""
        return self._full_at - (self.burst - 1 - spare) * self.interval - self._clock.now()

    def _take(self) -> None:
        self._full_at = max(self._full_at, self._clock.now()) + self.interval

    def try_acquire(self) -> bool:
        if self._wait(self._reserve) <= 0:
            self._take()
            return True
        return False

    def delay(self) -> float:
        return max(0.0, self._wait(self._reserve))

    async def acquire(self) -> None:
        async with self._queue:  # FIFO, as for RateGate
            while (wait := self._wait(0)) > 0:
                await self._clock.sleep(max(1e-3, wait))
            self._take()

    @property
    def idle(self) -> bool:
        return not self._queue.locked() and self._full_at <= self._clock.now()


class _Forgettable(Protocol):
    @property
    def idle(self) -> bool: ...


G = TypeVar("G", bound=_Forgettable)


class KeyedGates(Generic[G]):
    """One gate per key (a chat, a workspace, a channel), made by ``make`` on first use, at most
    ``max_size`` kept.

    Beyond ``max_size`` keys, idle gates (nobody waiting, no call inside their window) are forgotten first,
    least recently used first; only if every gate is busy does the least recently used one go.
    """

    def __init__(self, make: Callable[[], G], *, max_size: int = MAX_GATES) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._make = make
        self.max_size = max_size
        self._gates: OrderedDict[str, G] = OrderedDict()

    def get(self, key: str) -> G:
        gate = self._gates.get(key)
        if gate is None:
            if len(self._gates) >= self.max_size:
                self._shrink()
            gate = self._gates[key] = self._make()
        else:
            self._gates.move_to_end(key)
        return gate

    def _shrink(self) -> None:
        """Make room for one more: forget idle gates (oldest first) down to three quarters of the bound,
        else the least recently used one."""
        target = max(1, self.max_size * 3 // 4)
        for key in [k for k, gate in self._gates.items() if gate.idle]:
            if len(self._gates) <= target:
                break
            del self._gates[key]
        while len(self._gates) >= self.max_size:
            self._gates.popitem(last=False)

    def __len__(self) -> int:
        return len(self._gates)


class RateGates(KeyedGates[RateGate]):
    """One :class:`RateGate` of ``rate`` calls per ``per`` seconds per key."""

    def __init__(
        self, rate: int, per: float, clock: Clock, *, reserve: float = 0.2, max_size: int = MAX_GATES
    ) -> None:
        super().__init__(lambda: RateGate(rate, per, clock, reserve=reserve), max_size=max_size)
