"""Replies in flight, kept in the store so a crash never leaves a half-written message forever.

While a reply streams, the store holds where it goes (a JSON address of the chat/channel/thread), which
platform message it is being written in, and the last text that message showed. The row goes when the
final text landed. On the next start each runner finishes what is left for its platform: the message is
edited to its last text, without the writing marker, plus :data:`INTERRUPTED_NOTE`, and the turn is recorded
as "interrupted" (unless the engine already did, for a reply cancelled rather than killed).

An adapter takes part with a narrow surface: its targets say where they point (:class:`AddressedTarget`)
and its runner rebuilds a target from such an address (:data:`Restore`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from core.conversation import ConversationEngine
from core.errors import RateLimited
from core.incoming import IncomingMessage
from core.splitting import split_text
from core.store import ReplyInFlight, ReplyJournal, TurnRecord
from core.streaming import ReplyTarget
from core.turn import TurnStatus

log = logging.getLogger(__name__)

INTERRUPTED_NOTE = "⚠️ This reply was interrupted. Please ask again."
MAX_RECOVERY_WAIT = 30.0  # a rate limit longer than this on a recovery edit is not waited out
EVENT_KEY = "event"  # in a row's address: the delivery (IncomingMessage.event_id) the reply answers


@runtime_checkable
class AddressedTarget(Protocol):
    """A reply target that can say, as JSON-able values, where it points and which message a ref is."""

    @property
    def address(self) -> Any: ...

    def ref_address(self, ref: object) -> Any: ...

    def ref_from(self, address: Any) -> object: ...


Restore = Callable[[Any], ReplyTarget]  # a runner's way back from an address to a target


class InFlightReply:
    """One reply's row: begun before anything is sent, updated as previews land, ended at the final text."""

    def __init__(
        self, journal: ReplyJournal, reply_id: int, target: ReplyTarget, addressed: AddressedTarget
    ) -> None:
        self.journal = journal
        self.reply_id = reply_id
        self.target = target
        self.addressed = addressed
        self.shown = ""
        self.ref: object | None = None
        self.refs_only = False  # write only when the message changes, not each preview's text
        self._recorded: Any = None

    @classmethod
    async def begin(
        cls,
        engine: ConversationEngine,
        message: IncomingMessage,
        target: ReplyTarget,
        *,
        refs_only: bool = False,
    ) -> InFlightReply | None:
        """The row for this reply, or ``None`` when the store or the target cannot keep one."""
        store = engine.store
        if not isinstance(store, ReplyJournal) or not isinstance(target, AddressedTarget):
            return None
        address = target.address
        if message.event_id:  # a retried job finds the row its dead worker left (see rows_for_event)
            address = {**address, EVENT_KEY: message.event_id}
        try:
            reply_id = await store.begin_reply(
                message.session_id, message.platform, engine.bot.name, message.user_id, address
            )
        except Exception:
            log.exception("%s: could not record the reply in flight", message.session_id)
            return None
        reply = cls(store, reply_id, target, target)
        reply.refs_only = refs_only
        return reply

    async def shown_now(self, ref: object, text: str) -> None:
        """The streamer's ``on_shown``: ``ref`` now shows ``text``. A failed write never fails the reply."""
        self.ref, self.shown = ref, text
        address = self.addressed.ref_address(ref)
        if self.refs_only and address == self._recorded:
            return
        self._recorded = address
        try:
            await self.journal.reply_shown(self.reply_id, address, text)
        except Exception:
            log.warning("could not update the reply in flight %d", self.reply_id, exc_info=True)

    async def end(self) -> None:
        try:
            await self.journal.end_reply(self.reply_id)
        except Exception:
            log.warning("could not clear the reply in flight %d", self.reply_id, exc_info=True)

    async def keep_for_next_start(self) -> None:
        """Cancelled (shutting down): the engine recorded the turn; the next start finishes the message."""
        try:
            await asyncio.shield(self.journal.mark_turn_recorded(self.reply_id))
        except Exception:
            log.warning("could not mark the reply in flight %d", self.reply_id, exc_info=True)

    async def finish_now(self) -> None:
        """The platform failed mid-reply: try once to show the note; else leave it to the next start."""
        if self.ref is None:
            await self.end()  # nothing of this reply is on screen
            return
        try:
            await self.target.edit(self.ref, interrupted_text(self.shown, self.target), final=True)
        except Exception as exc:
            log.info("could not mark the interrupted reply now (%s); the next start will", exc)
            await self.keep_for_next_start()
            return
        await self.end()


def interrupted_text(shown: str, target: ReplyTarget) -> str:
    """The last text shown, cut to fit if need be, then the note that the reply was interrupted."""
    limits = target.limits
    suffix = "\n\n" + INTERRUPTED_NOTE
    shown = shown.rstrip()
    if not shown:
        return INTERRUPTED_NOTE
    room = limits.max_chars - limits.measure(suffix)
    if limits.measure(shown) > room:
        shown = split_text(shown, room, limits.measure)[0].rstrip()
    return shown + suffix


async def finish_interrupted_replies(
    engine: ConversationEngine, platform: str, restore: Restore | None
) -> int:
    """Finish every reply of ``platform`` left unfinished (by a crash); return how many there were.

    ``restore`` rebuilds a target from its address; ``None`` where there is nothing to edit (a terminal).
    """
    store = engine.store
    if not isinstance(store, ReplyJournal):
        return 0
    rows = await store.unfinished_replies(platform, engine.bot.name)
    for row in rows:
        if restore is not None:
            await _show_interrupted(row, restore)
        if not row.turn_recorded:
            await store.record_turn(_interrupted_turn(engine, row))
        await store.end_reply(row.id)
        log.info("%s: finished a reply interrupted by a restart", row.session_id)
    return len(rows)


async def rows_for_event(engine: ConversationEngine, platform: str, event_id: str) -> list[ReplyInFlight]:
    """The rows of replies to delivery ``event_id`` still in flight (left by a worker that died), oldest
    first. Only replies in flight have rows, so this reads a handful."""
    store = engine.store
    if not event_id or not isinstance(store, ReplyJournal):
        return []
    rows = await store.unfinished_replies(platform, engine.bot.name)
    return [row for row in rows if isinstance(row.address, dict) and row.address.get(EVENT_KEY) == event_id]


async def _show_interrupted(row: ReplyInFlight, restore: Restore) -> None:
    try:
        target = restore(row.address)
        if row.message is None or not isinstance(target, AddressedTarget):
            # nothing to edit (no message yet, or only a native preview, which does not outlive the
            # process): the text shown so far goes again as a new message, with the note
            note = interrupted_text(row.shown, target)
            await _with_one_wait(lambda: target.send(note, final=True))
            return
        ref = target.ref_from(row.message)
        text = interrupted_text(row.shown, target)
        await _with_one_wait(lambda: target.edit(ref, text, final=True))
    except Exception as exc:  # a message we cannot reach any more is no reason to keep the row
        log.warning("%s: could not mark an interrupted reply: %s", row.session_id, exc)


async def _with_one_wait(call: Callable[[], Awaitable[object]]) -> None:
    try:
        await call()
    except RateLimited as exc:
        if exc.retry_after > MAX_RECOVERY_WAIT:
            raise
        await asyncio.sleep(exc.retry_after)
        await call()


def _interrupted_turn(engine: ConversationEngine, row: ReplyInFlight) -> TurnRecord:
    return TurnRecord(
        session_id=row.session_id,
        user_text="",
        reply_text=row.shown,
        started_at=row.started_at,
        latency_ms=max(0.0, time.time() - row.started_at) * 1000.0,
        prompt_tokens=0,
        completion_tokens=0,
        status=TurnStatus.INTERRUPTED,
        model=engine.bot.model_name,
        user_id=row.user_id,
        bot=engine.bot.name,
        platform=row.platform,
    )
