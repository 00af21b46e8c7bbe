"""A virtual clock: ``sleep`` returns as soon as every other task is idle, with time jumped forward.

Lets tests of pacing run a 60-second stream in milliseconds and assert exact intervals.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


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
