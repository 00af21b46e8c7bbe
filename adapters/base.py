"""What every adapter shares: the runner shape ``chatbot run`` starts, and a dispatcher for replies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar

from adapters.in_flight import InFlightReply, Restore, finish_interrupted_replies
from core.clock import Clock, SystemClock
from core.conversation import ConversationEngine
from core.errors import PlatformError
from core.incoming import IncomingMessage
from core.streaming import ReplyTarget, StreamedReply, stream_reply

log = logging.getLogger(__name__)
T = TypeVar("T")
AfterReply = Callable[[IncomingMessage, ReplyTarget, StreamedReply | None], Awaitable[None]]
"""Called once a reply was delivered (``None``: it failed), still in the session's turn: feedback buttons."""


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

    Replies to the same session come out in arrival order, always: each joins the session's FIFO queue in
    the order it was submitted (tasks first run in creation order) and holds its place through generation
    *and* delivery (the final edit), so reply N+1 shows nothing before reply N is finished on the platform.
    """

    def __init__(self, engine: ConversationEngine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sessions = SessionQueues()
        # a work queue's takeover regenerates a reply rather than show its last text: the journal then only
        # needs each platform message a reply writes in, one write per message instead of one per preview
        self.journal_refs_only = False
        self.after_reply: list[AfterReply] = []

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
            result = await self.deliver(message, target)
            await self._after_reply(message, target, result)
            return result

    async def _after_reply(
        self, message: IncomingMessage, target: ReplyTarget, result: StreamedReply | None
    ) -> None:
        for hook in self.after_reply:
            try:
                await hook(message, target, result)
            except Exception:
                log.exception("%s: a step after the reply failed", message.session_id)

    def notify(self, target: ReplyTarget, text: str) -> asyncio.Task[StreamedReply | None]:
        """Send a fixed text (a refusal, "text only for now") in the background; drained like replies."""
        return self._track(asyncio.create_task(self.say(target, text), name="notice"))

    def background(self, work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run platform side work (a greeting, a thread title, a button click) in the background; drained like
        replies."""
        return self._track(asyncio.create_task(work, name=name))

    def _track(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def deliver(
        self,
        message: IncomingMessage,
        target: ReplyTarget,
        *,
        into: object | None = None,
        answer: str | None = None,
    ) -> StreamedReply | None:
        """Stream the engine's reply to ``message`` onto ``target``; log, never raise, platform failures.

        The reply is kept in the store while in flight (see :mod:`adapters.in_flight`): a platform failure
        marks the message interrupted at once if it can, and a crash leaves the row for the next start.
        A work queue's takeover (:mod:`adapters.work_queue`) passes ``into``, the message a dead worker
        was writing (this reply finishes it), and ``answer``, the reply that worker already stored (shown
        as it is: no new turn).
        """
        in_flight = await InFlightReply.begin(self.engine, message, target, refs_only=self.journal_refs_only)
        on_shown = in_flight.shown_now if in_flight is not None else None
        if in_flight is not None and into is not None:
            await in_flight.shown_now(into, "")  # the row points at the taken-over message from the start
        chunks = self.engine.reply(message) if answer is None else _once(answer)
        try:
            result = await stream_reply(chunks, target, self.clock, on_shown=on_shown, into=into)
        except asyncio.CancelledError:
            if in_flight is not None:
                await in_flight.keep_for_next_start()
            raise
        except PlatformError as exc:
            log.error("%s: could not deliver the reply: %s", message.session_id, exc)
            if in_flight is not None:
                await in_flight.finish_now()
            return None
        except Exception:
            log.exception("%s: reply failed", message.session_id)  # its text was still shown to the end
            if in_flight is not None:
                await in_flight.end()
            return None
        if in_flight is not None:
            await in_flight.end()
        return result

    def finish_interrupted(self, platform: str, restore: Restore | None) -> asyncio.Task[Any]:
        """Finish, in the background, the replies a crash left half-written on ``platform``."""

        async def run() -> int:
            try:
                return await finish_interrupted_replies(self.engine, platform, restore)
            except Exception:
                log.exception("%s: could not finish the replies a restart interrupted", platform)
                return 0

        return self._track(asyncio.create_task(run(), name=f"recover:{platform}"))

    async def say(self, target: ReplyTarget, text: str) -> StreamedReply | None:
        """Send a fixed text (a refusal, a notice) through the same length- and rate-safe path."""
        try:
            return await stream_reply(_once(text), target, self.clock)
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


async def _once(text: str) -> AsyncIterator[str]:
    yield text
