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
  message ends with the retraction's text, earlier messages of the reply are blanked;
- a :class:`core.hooks.Progress` chunk (a tool running) shows on previews after the text so far until the
  next chunk; it is never in the final text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from core.clock import Clock
from core.errors import RateLimited
from core.hooks import Progress, Retraction
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
    # a preview left unchanged this long is shown again (a Telegram draft vanishes ~30 s after its last
    # update); ``None``: a preview stays as it is until the text changes
    refresh_after: float | None = None


class ReplyTarget(Protocol):
    """Where one reply goes. ``send`` returns an opaque reference that ``edit`` takes back.

    ``final`` tells the adapter this is the message's last text, the moment to apply rich formatting.
    Rate limits must be raised as :class:`core.errors.RateLimited`. ``edit`` may return a new reference
    that replaces ``ref`` from then on: a native preview (a Telegram draft, a Slack stream) finished into
    a real message, or a preview the platform refused and the adapter re-sent the ordinary way.
    """

    @property
    def limits(self) -> PlatformLimits: ...

    @property
    def gate(self) -> Gate | None: ...

    async def send(self, text: str, *, final: bool) -> object: ...

    async def edit(self, ref: object, text: str, *, final: bool) -> object | None: ...

    async def typing(self) -> None: ...


ShownCallback = Callable[[object, str], Awaitable[None]]


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
    def __init__(self, target: ReplyTarget, clock: Clock, on_shown: ShownCallback | None = None) -> None:
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
        self.source_error: Exception | None = None
        self.on_shown = on_shown
        self.progress = ""  # a passing line shown after the text (a tool running), gone at the next chunk

    @property
    def measure(self) -> Measure:
        return self.limits.measure

    def current(self) -> str:
        """The current message's text so far. A :class:`Retraction` among the new parts is applied here, in
        the showing task, never while a platform call is in flight: it drops the current message's text
        and withdraws every message already finished (a rollover that landed just before it included)."""
        if self.parts:
            for part in self.parts:
                if isinstance(part, Progress):
                    self.progress = str(part)
                    continue
                self.progress = ""
                if isinstance(part, Retraction):
                    self.carry = ""
                    self.withdrawn = len(self.result.messages)
                self.carry += part
            self.parts.clear()
        return self.carry

    async def run(self, chunks: AsyncIterable[str]) -> StreamedReply:
        """Read ``chunks`` and show them, as one task group: a platform failure (or a cancellation) stops
        the chunk source too, so the model stream is closed and the turn is stored as interrupted."""
        try:
            async with asyncio.TaskGroup() as tasks:
                if self.limits.typing_interval:
                    self.typing_task = tasks.create_task(self._typing())
                tasks.create_task(self._read(chunks))
                try:
                    await self._show_while_streaming()
                finally:
                    self._stop_typing()
        except BaseExceptionGroup as group:  # one failure at a time: raise it as itself, not as a group
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        await self._finish()
        if self.source_error is not None:  # shown what we had; now report the failure of the source
            raise self.source_error
        return self.result

    async def _show_while_streaming(self) -> None:
        while True:
            if not await self._changed_or_stale():
                await self._refresh()
                continue
            self.changed.clear()
            wait = self._wait_needed()
            if wait > 0 and not self.done:
                await self._sleep_unless_finished(wait)
            if self.done:
                return
            await self._preview()

    async def _changed_or_stale(self) -> bool:
        """Wait for new text; ``False`` when, instead, the preview shown went ``refresh_after`` unchanged."""
        refresh = self.limits.refresh_after
        if refresh is None or self.ref is None:
            await self.changed.wait()
            return True
        sleeper = asyncio.ensure_future(self.clock.sleep(refresh))
        changed = asyncio.ensure_future(self.changed.wait())
        try:
            await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, changed):
                task.cancel()
        return self.changed.is_set()

    async def _refresh(self) -> None:
        """Show the same preview again, so a platform that lets previews expire keeps showing it."""
        if self.ref is None or not self.shown or self.done:
            return
        try:
            self._replace_ref(await self.target.edit(self.ref, self.shown, final=False))
        except RateLimited as exc:
            self._retry_in(exc.retry_after)
            return
        self.last_change = self.clock.now()

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
        """Collect chunks into ``parts``. A failure of the source is kept for after the final edit; a
        cancellation (the platform failed) closes the source, which ends the model stream."""
        try:
            async for chunk in chunks:
                if chunk or isinstance(chunk, Retraction | Progress):
                    self.parts.append(chunk)
                    if not self.first_text.is_set() and not isinstance(chunk, Retraction) and chunk.strip():
                        self.first_text.set()
                        self._stop_typing()
                    self.changed.set()
        except Exception as exc:
            self.source_error = exc
        finally:
            self.done = True
            self.finished.set()
            self.changed.set()
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

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
        size = self.measure(text)
        if size > self.limits.max_chars:
            head, tail = split_text(text, self._room(), self.measure)
            await self._put(head, final=True)
            await self._report_shown(head)  # the reply goes on: until the next message, this is where it is
            self._next_message(tail)
            self.changed.set()  # show the continuation on the next turn of the loop, paced
            return
        passing = f"{text.rstrip()}\n\n{self.progress}".lstrip() if self.progress else text
        if self.progress and self.measure(passing) > self._room():
            passing = text  # no room for the line: the text matters more
        if not passing.strip() or size > self._room():
            # text that fits one message but not with the marker: wait for more text (a rollover then) or
            # for the final edit, rather than cut a reply that fits
            return
        preview = passing + self.limits.writing_marker
        if preview == self.shown:
            return
        gate = self.target.gate
        wait = await gate.try_take() if gate is not None else 0.0
        if wait > 0:
            self.preview_not_before = self.clock.now() + wait
            self.changed.set()
            return
        try:
            if self.ref is None:
                self.ref = await self.target.send(preview, final=False)
                self._shown_first()
            else:
                self._replace_ref(await self.target.edit(self.ref, preview, final=False))
        except RateLimited as exc:
            self._retry_in(exc.retry_after)
            return
        self.shown = preview
        self.last_change = self.clock.now()
        await self._report_shown(text)

    def _replace_ref(self, replacement: object | None) -> None:
        """The target finished a native preview into a real message (or re-sent it): edit that from now."""
        if replacement is not None:
            self.ref = replacement

    async def _report_shown(self, text: str) -> None:
        if self.on_shown is not None and self.ref is not None:
            await self.on_shown(self.ref, text)

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
        text = self.current()  # applies a retraction still waiting in ``parts``
        await self._withdraw_earlier()
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
        gate = self.target.gate
        for attempt in range(attempts):
            # with a shared gate, the gate is the platform's budget: a final edit goes as soon as it has
            # room, not an edit interval after the last preview (the interval paces previews)
            wait = (
                self.not_before - self.clock.now() if gate is not None else self._wait_needed(preview=False)
            )
            if wait > 0:
                await self.clock.sleep(wait)
            if gate is not None:
                await gate.acquire()
            try:
                if self.ref is None:
                    self.ref = await self.target.send(text, final=final)
                    self._shown_first()
                else:
                    self._replace_ref(await self.target.edit(self.ref, text, final=final))
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


async def stream_reply(
    chunks: AsyncIterable[str],
    target: ReplyTarget,
    clock: Clock,
    *,
    on_shown: ShownCallback | None = None,
    into: object | None = None,
) -> StreamedReply:
    """Show the text from ``chunks`` on ``target`` as it arrives; return what the user ended up with.

    ``on_shown(ref, text)`` is awaited after each unfinished text lands on the platform (a preview, or a
    message finished by a rollover while the reply goes on): where the reply is and what it shows, so a
    reply cut by a crash can be finished on the next start.

    ``into`` is a message already on the platform (a reference ``send`` returned, perhaps in another
    process) that this reply takes over: its first text edits that message instead of sending a new one.
    """
    streamer = _Streamer(target, clock, on_shown)
    streamer.ref = into
    return await streamer.run(chunks)
