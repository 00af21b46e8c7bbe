"""Turns a stream of reply text into throttled, length-safe messages on a platform.

Adapters supply a :class:`ReplyTarget` (send, edit, typing and the platform's declared limits); this module
does everything else, once for every platform:

- typing indicator until the first text arrives, renewed every ``typing_interval``;
- the first message is sent as soon as there is text to show;
- at most one edit per ``min_edit_interval`` per message, skipping edits that would not change the text;
- a "still writing" marker on previews that is gone from the final text;
- rollover into a continuation message at a clean boundary before the length limit;
- a rate-limit answer on a preview postpones it (later text merges into the next edit); on a final edit
  or a new message it is waited out and retried, so no text is ever lost;
- a final edit with the complete text of every message, always;
- a :class:`core.hooks.Retraction` chunk (a guard stopped the reply) replaces what was shown: the current
  message ends with the retraction's text, earlier messages of the reply are blanked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Protocol

from core.clock import Clock
from core.errors import RateLimited
from core.hooks import Retraction
from core.pacing import Gate
from core.splitting import Measure, split_text

log = logging.getLogger(__name__)

WRITING_MARKER = " ▌"
EMPTY_REPLY = "(no reply)"
WITHDRAWN = "(withdrawn)"


@dataclass(frozen=True, slots=True)
class PlatformLimits:
    """What a platform allows: message length (in ``measure`` units) and how often a message may change."""

    max_chars: int
    min_edit_interval: float
    typing_interval: float | None = None
    measure: Measure = len
    writing_marker: str = WRITING_MARKER
    final_attempts: int = 8


class ReplyTarget(Protocol):
    """Where one reply goes. ``send`` returns an opaque reference that ``edit`` takes back.

    ``final`` tells the adapter this is the message's last text, the moment to apply rich formatting.
    Rate limits must be raised as :class:`core.errors.RateLimited`.
    """

    @property
    def limits(self) -> PlatformLimits: ...

    @property
    def gate(self) -> Gate | None: ...

    async def send(self, text: str, *, final: bool) -> object: ...

    async def edit(self, ref: object, text: str, *, final: bool) -> None: ...

    async def typing(self) -> None: ...


@dataclass
class StreamedReply:
    """What the user ended up seeing: the final text of each message, in order."""

    messages: list[str] = field(default_factory=list)
    refs: list[object] = field(default_factory=list)
    first_shown_at: float | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.messages)


class _Streamer:
    def __init__(self, target: ReplyTarget, clock: Clock) -> None:
        self.target = target
        self.limits = target.limits
        self.clock = clock
        self.result = StreamedReply()
        self.parts: list[str] = []
        self.carry = ""  # text of the current message before ``parts`` (a rollover's tail)
        self.ref: object | None = None
        self.shown = ""
        self.last_change = -1e18
        self.not_before = -1e18  # the platform said wait (a rate-limit answer): binds every call
        self.preview_not_before = -1e18  # the shared gate has no slot for a preview: binds previews only
        self.changed = asyncio.Event()
        self.done = False
        self.finished = asyncio.Event()
        self.first_text = asyncio.Event()
        self.typing_task: asyncio.Task[None] | None = None
        self.withdrawn = 0  # earlier messages of this reply that a Retraction withdrew

    @property
    def measure(self) -> Measure:
        return self.limits.measure

    def current(self) -> str:
        if self.parts:
            self.carry += "".join(self.parts)
            self.parts.clear()
        return self.carry

    async def run(self, chunks: AsyncIterable[str]) -> StreamedReply:
        self.typing_task = asyncio.create_task(self._typing()) if self.limits.typing_interval else None
        reader = asyncio.create_task(self._read(chunks))
        try:
            while True:
                await self.changed.wait()
                self.changed.clear()
                wait = self._wait_needed()
                if wait > 0 and not self.done:
                    await self._sleep_unless_finished(wait)
                if self.done:
                    break
                await self._preview()
            await reader  # re-raises a failure of the chunk source, after we show what we had
        except asyncio.CancelledError:
            reader.cancel()
            raise
        except Exception:
            await self._finish()
            raise
        finally:
            self._stop_typing()
        await self._finish()
        return self.result

    async def _sleep_unless_finished(self, seconds: float) -> None:
        """Wait before the next preview, but go straight to the final edit when the reply ends."""
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        finisher = asyncio.ensure_future(self.finished.wait())
        try:
            await asyncio.wait({sleeper, finisher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, finisher):
                task.cancel()

    def _wait_needed(self, *, preview: bool = True) -> float:
        limit = max(self.last_change + self.limits.min_edit_interval, self.not_before)
        if preview:
            limit = max(limit, self.preview_not_before)
        return limit - self.clock.now()

    async def _read(self, chunks: AsyncIterable[str]) -> None:
        try:
            async for chunk in chunks:
                if isinstance(chunk, Retraction):
                    self.parts.clear()
                    self.carry = ""
                    self.withdrawn = len(self.result.messages)
                if chunk:
                    self.parts.append(chunk)
                    if not self.first_text.is_set() and chunk.strip():
                        self.first_text.set()
                        self._stop_typing()
                    self.changed.set()
        finally:
            self.done = True
            self.finished.set()
            self.changed.set()

    async def _typing(self) -> None:
        interval = self.limits.typing_interval or 5.0
        while not self.first_text.is_set():
            try:
                await self.target.typing()
            except Exception as exc:  # a typing indicator is never worth failing a reply for
                log.debug("typing indicator failed: %s", exc)
            await self.clock.sleep(interval)

    def _stop_typing(self) -> None:
        if self.typing_task is not None and not self.typing_task.done():
            self.typing_task.cancel()

    def _room(self) -> int:
        return self.limits.max_chars - self.measure(self.limits.writing_marker)

    async def _preview(self) -> None:
        text = self.current()
        if self.measure(text) > self._room():
            head, tail = split_text(text, self._room(), self.measure)
            await self._put(head, final=True)
            self._next_message(tail)
            self.changed.set()  # show the continuation on the next turn of the loop, paced
            return
        if not text.strip():
            return
        preview = text + self.limits.writing_marker
        if preview == self.shown:
            return
        gate = self.target.gate
        if gate is not None and not gate.try_acquire():
            self.preview_not_before = self.clock.now() + gate.delay()
            self.changed.set()
            return
        try:
            if self.ref is None:
                self.ref = await self.target.send(preview, final=False)
                self._shown_first()
            else:
                await self.target.edit(self.ref, preview, final=False)
        except RateLimited as exc:
            self._retry_in(exc.retry_after)
            return
        self.shown = preview
        self.last_change = self.clock.now()

    def _retry_in(self, seconds: float) -> None:
        self.not_before = self.clock.now() + seconds
        self.changed.set()

    def _shown_first(self) -> None:
        if self.result.first_shown_at is None:
            self.result.first_shown_at = self.clock.now()
        self.first_text.set()

    def _next_message(self, tail: str) -> None:
        self.carry = tail
        self.ref = None
        self.shown = ""

    async def _finish(self) -> None:
        await self._withdraw_earlier()
        text = self.current()
        if not text.strip() and not self.result.messages:
            text = EMPTY_REPLY
        while True:
            head, tail = split_text(text, self.limits.max_chars, self.measure)
            if head.strip() or self.ref is not None:
                await self._put(head or EMPTY_REPLY, final=True)
            if not tail:
                return
            self._next_message(tail)
            self.last_change = -1e18  # the interval is per message: a continuation is sent at once
            text = tail

    async def _withdraw_earlier(self) -> None:
        """Blank the messages a retraction withdrew (rolled over before the reply was stopped)."""
        current_ref, current_shown = self.ref, self.shown
        for index in range(self.withdrawn):
            self.ref, self.shown = self.result.refs[index], self.result.messages[index]
            if self.shown != WITHDRAWN:
                await self._put(WITHDRAWN, final=True)
                self.result.messages.pop()
                self.result.refs.pop()
                self.result.messages[index] = WITHDRAWN
        self.ref, self.shown = current_ref, current_shown
        self.withdrawn = 0

    async def _put(self, text: str, *, final: bool) -> None:
        """Make ``text`` the final content of the current message, waiting out rate limits."""
        if self.ref is not None and text == self.shown:
            self._record(text)
            return
        attempts = self.limits.final_attempts
        for attempt in range(attempts):
            wait = self._wait_needed(preview=False)
            if wait > 0:
                await self.clock.sleep(wait)
            gate = self.target.gate
            if gate is not None:
                await gate.acquire()
            try:
                if self.ref is None:
                    self.ref = await self.target.send(text, final=final)
                    self._shown_first()
                else:
                    await self.target.edit(self.ref, text, final=final)
            except RateLimited as exc:
                if attempt + 1 == attempts:
                    raise
                log.info("rate limited on a final message; waiting %.1fs", exc.retry_after)
                self.not_before = self.clock.now() + exc.retry_after
                continue
            self.shown = text
            self.last_change = self.clock.now()
            self._record(text)
            return

    def _record(self, text: str) -> None:
        self.result.messages.append(text)
        self.result.refs.append(self.ref)


async def stream_reply(chunks: AsyncIterable[str], target: ReplyTarget, clock: Clock) -> StreamedReply:
    """Show the text from ``chunks`` on ``target`` as it arrives; return what the user ended up with."""
    return await _Streamer(target, clock).run(chunks)
