"""What every adapter shares: the runner shape ``chatbot run`` starts, and a dispatcher for replies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from core.clock import Clock, SystemClock
from core.conversation import ConversationEngine
from core.errors import PlatformError
from core.incoming import IncomingMessage
from core.streaming import ReplyTarget, StreamedReply, stream_reply

log = logging.getLogger(__name__)


class PlatformRunner(Protocol):
    """One connected platform. ``start`` returns once it listens; ``stop`` disconnects and drains."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class SessionQueues:
    """One FIFO queue per session, taken in the order replies were submitted, forgotten when unused."""

    def __init__(self) -> None:
        self._queues: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        lock, users = self._queues.get(key, (asyncio.Lock(), 0))
        self._queues[key] = (lock, users + 1)
        try:
            async with lock:  # asyncio.Lock serves its waiters in FIFO order
                yield
        finally:
            lock, users = self._queues[key]
            if users <= 1:
                del self._queues[key]
            else:
                self._queues[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._queues)


class ReplyDispatcher:
    """Runs each reply as its own task, so one slow reply or flood wait never stalls another chat.

    Replies to the same session come out in arrival order, always: each takes its place in the session's
    FIFO queue when it is submitted and keeps it through generation *and* delivery (the final edit), so
    reply N+1 shows nothing before reply N is finished on the platform.
    """

    def __init__(self, engine: ConversationEngine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self._tasks: set[asyncio.Task[StreamedReply | None]] = set()
        self.sessions = SessionQueues()

    def submit(self, message: IncomingMessage, target: ReplyTarget) -> asyncio.Task[StreamedReply | None]:
        """Answer ``message`` on ``target`` in the background, after the session's earlier replies."""
        queued = self.sessions.turn(message.session_id)
        return self._track(
            asyncio.create_task(self._in_turn(queued, message, target), name=f"reply:{message.session_id}")
        )

    async def _in_turn(
        self, queued: AbstractAsyncContextManager[None], message: IncomingMessage, target: ReplyTarget
    ) -> StreamedReply | None:
        async with queued:
            return await self.deliver(message, target)

    def notify(self, target: ReplyTarget, text: str) -> asyncio.Task[StreamedReply | None]:
        """Send a fixed text (a refusal, "text only for now") in the background; drained like replies."""
        return self._track(asyncio.create_task(self.say(target, text), name="notice"))

    def _track(self, task: asyncio.Task[StreamedReply | None]) -> asyncio.Task[StreamedReply | None]:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def deliver(self, message: IncomingMessage, target: ReplyTarget) -> StreamedReply | None:
        """Stream the engine's reply to ``message`` onto ``target``; log, never raise, platform failures."""
        try:
            return await stream_reply(self.engine.reply(message), target, self.clock)
        except PlatformError as exc:
            log.error("%s: could not deliver the reply: %s", message.session_id, exc)
        except Exception:
            log.exception("%s: reply failed", message.session_id)
        return None

    async def say(self, target: ReplyTarget, text: str) -> StreamedReply | None:
        """Send a fixed text (a refusal, a notice) through the same length- and rate-safe path."""

        async def once() -> AsyncIterator[str]:
            yield text

        try:
            return await stream_reply(once(), target, self.clock)
        except PlatformError as exc:
            log.error("could not send a notice: %s", exc)
            return None

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, grace: float = 30.0) -> None:
        """Wait for replies in flight (on shutdown), cancelling what is left after ``grace`` seconds."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
