"""A first-in first-out limit on concurrent model calls.

A llama.cpp server with N slots serves N requests at once; more make each slower (or, on llama-cpp-python,
interrupt the stream in flight). Calls beyond the limit wait in arrival order, so no session is starved.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class CallLimit:
    """At most ``limit`` holders at once (``0``: unlimited); waiters are served strictly in arrival order."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if self.limit == 0 or (self.active < self.limit and not self._waiters):
            self.active += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # we were handed the slot just as we were cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the next waiter
                return
        self.active -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()
