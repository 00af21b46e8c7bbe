"""Running one queued reply, in whichever worker fetched the job, exactly once as the user sees it.

A job carries the :class:`core.incoming.IncomingMessage` (its ``event_id`` is the platform's delivery id)
and the address of the reply's target, from which any worker rebuilds the target. A job can run more than
once: its worker died mid-reply and another took it over, or its handler failed and procrastinate retried
it. Each run starts from what the earlier ones left:

- the delivery is marked done in the queue's database: nothing to do (a stale in-flight row is cleared);
- the question is stored with a complete reply (the dead worker got that far) but the final text may not
  have landed: the message the in-flight row names is edited to that reply; no new turn, no model call;
- otherwise the turn runs again (the engine stores the question once per event:
  :class:`core.store.EventQuestions`) and the reply is streamed into the message the dead worker was
  writing, so the user sees one answer, finished in place, never the writing marker left behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from adapters.base import ReplyDispatcher
from adapters.in_flight import AddressedTarget, Restore, rows_for_event
from adapters.work_queue.queue import WorkQueue
from core.attachments import Attachment, AttachmentKind
from core.incoming import IncomingMessage
from core.pacing import Gate
from core.store import EventQuestions, ReplyInFlight, ReplyJournal
from core.streaming import PlatformLimits

log = logging.getLogger(__name__)


Rebuild = Callable[[Any], Attachment]
"""The platform's attachment from its ``Attachment.ref`` (the download step is rebuilt on this worker)."""


def job_payload(message: IncomingMessage, address: Any) -> dict[str, Any]:
    """The JSON a job carries: the message, its files as the platform describes them (``Attachment.ref``, or
    the reason a file cannot be had), and where its reply goes (a target's ``address``)."""
    fields = {
        f.name: getattr(message, f.name) for f in dataclasses.fields(message) if f.name != "attachments"
    }
    files = [
        {"ref": file.ref}
        if file.ref is not None
        else {"name": file.name, "mime": file.mime, "kind": str(file.kind), "error": file.error or "not kept"}
        for file in message.attachments
    ]
    return {"message": fields, "files": files, "target": address}


def message_of(payload: dict[str, Any], rebuild: Rebuild | None = None) -> IncomingMessage:
    fields = payload["message"]
    files: list[Attachment] = []
    for file in payload.get("files") or ():
        if "ref" in file and rebuild is not None:
            files.append(rebuild(file["ref"]))
        else:
            files.append(
                Attachment(
                    name=str(file.get("name", "file")),
                    mime=str(file.get("mime", "")),
                    kind=AttachmentKind(file.get("kind", AttachmentKind.DOCUMENT)),
                    platform=str(fields.get("platform", "")),
                    error=str(file.get("error") or "this file could not be passed to another worker"),
                )
            )
    return IncomingMessage(
        session_id=str(fields["session_id"]),
        text=str(fields["text"]),
        user_id=str(fields.get("user_id", "")),
        platform=str(fields.get("platform", "")),
        extras=dict(fields.get("extras") or {}),
        event_id=str(fields.get("event_id", "")),
        attachments=tuple(files),
    )


class QueuedReplies:
    """A runner's job handler: the reply to one queued message, resumed where a dead worker left it."""

    def __init__(
        self,
        dispatcher: ReplyDispatcher,
        queue: WorkQueue,
        platform: str,
        restore: Restore,
        rebuild: Rebuild | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        dispatcher.journal_refs_only = True  # a takeover regenerates: the journal needs only the messages
        self.engine = dispatcher.engine
        self.queue = queue
        self.platform = platform
        self.restore = restore
        self.rebuild = rebuild
        self.resumed = 0  # runs that found an earlier run's traces (counted for tests and the bench)

    async def __call__(self, payload: dict[str, Any]) -> None:
        message = message_of(payload, self.rebuild)
        event = message.event_id
        left = await rows_for_event(self.engine, self.platform, event)
        record = await self.queue.delivery(event)
        if record.done:
            await self._clear(left)
            return
        target = self.restore(payload["target"])
        store = self.engine.store
        known = await store.event_turn(event) if isinstance(store, EventQuestions) else None
        answer = known.reply if known is not None else None
        prior = record.message
        if prior is None and left and left[-1].message is not None:
            prior = left[-1].message
        if answer is not None and prior is None and not left:
            # stored complete, and no reply in flight: the final text landed before its worker died
            await self.queue.mark_done(event)
            return
        into = None
        if prior is not None and isinstance(target, AddressedTarget):
            into = target.ref_from(prior)
            target = WritingRecorded(target, self.queue, event, prior)
        elif isinstance(target, AddressedTarget):
            target = WritingRecorded(target, self.queue, event, None)
        if left or known is not None or prior is not None:
            self.resumed += 1
            log.info("%s: taking over a reply a dead worker left (event %s)", message.session_id, event)
        await self.dispatcher.deliver(message, target, into=into, answer=answer)
        await self.queue.mark_done(event)
        await self._clear(left)

    async def _clear(self, rows: list[ReplyInFlight]) -> None:
        store = self.engine.store
        if not isinstance(store, ReplyJournal):
            return
        for row in rows:
            await store.end_reply(row.id)


class WritingRecorded:
    """A target that records in the queue's database each platform message the reply is written in, as
    soon as the platform returned it (see :meth:`WorkQueue.writing_in`); otherwise the target itself."""

    def __init__(self, target: Any, queue: WorkQueue, event_id: str, recorded: Any) -> None:
        self._target = target
        self._queue = queue
        self._event = event_id
        self._recorded = recorded

    @property
    def limits(self) -> PlatformLimits:
        limits: PlatformLimits = self._target.limits
        return limits

    @property
    def gate(self) -> Gate | None:
        gate: Gate | None = self._target.gate
        return gate

    @property
    def address(self) -> Any:
        return self._target.address

    def ref_address(self, ref: object) -> Any:
        return self._target.ref_address(ref)

    def ref_from(self, address: Any) -> object:
        return self._target.ref_from(address)

    async def send(self, text: str, *, final: bool) -> object:
        ref = await self._target.send(text, final=final)
        await self._record(ref)
        return ref

    async def edit(self, ref: object, text: str, *, final: bool) -> None:
        await self._target.edit(ref, text, final=final)
        await self._record(ref)  # an edit of a deleted message posts it anew: another message

    async def typing(self) -> None:
        await self._target.typing()

    async def _record(self, ref: object) -> None:
        address = self._target.ref_address(ref)
        if address == self._recorded:
            return
        self._recorded = address
        try:
            await asyncio.shield(self._queue.writing_in(self._event, address))
        except Exception:
            log.warning("could not record the message of event %s", self._event, exc_info=True)
