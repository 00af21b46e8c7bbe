"""Clocks for tests: :class:`VirtualClock` (time jumps forward when every task is idle) and
:class:`HeldClock` (real time, long waits held until the test lets them go).

The virtual clock lets tests of pacing run a 60-second stream in milliseconds and assert exact intervals.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time


class VirtualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._seq), future))
        self._ensure_running()
        await future

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._advance())

    async def _advance(self) -> None:
        idle_rounds = 0
        while True:
            for _ in range(30):
                await asyncio.sleep(0)
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                idle_rounds += 1
                if idle_rounds > 50:
                    return
                continue
            idle_rounds = 0
            deadline, _, future = heapq.heappop(self._sleepers)
            self.t = max(self.t, deadline)
            future.set_result(None)


class HeldClock:
    """Real time, except that a wait of ``hold_from`` seconds or more also lasts until :meth:`release`.

    Makes "X happens while that wait is on" certain instead of a race against the wait's length: the test
    holds a long wait (a flood wait, say), checks what must happen meanwhile, then releases it. A released
    wait still lasts at least its real length, so nothing happens earlier than it would have.
    """

    def __init__(self, hold_from: float) -> None:
        self.hold_from = hold_from
        self.held: list[float] = []  # the waits that were held, in seconds
        self._released = asyncio.Event()

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        if seconds < self.hold_from:
            await asyncio.sleep(max(0.0, seconds))
            return
        self.held.append(seconds)
        until = time.monotonic() + seconds
        await self._released.wait()
        await asyncio.sleep(max(0.0, until - time.monotonic()))

    def release(self) -> None:
        """Let every held wait, and every later one, end when its time is up."""
        self._released.set()
