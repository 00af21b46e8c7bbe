"""Privacy: ``/forget`` deletes what the bot stored about a user, a retention setting deletes old messages,
and credentials pasted into a chat are refused before they reach the model.

- ``/forget`` (every platform): everything the store keeps about the user (``store.forget_user``: messages,
  turn records, review flags, replies in flight), counted first through the store's interfaces to say what.
- ``CHATBOT_RETENTION_DAYS`` > 0: at start and then every hour, messages, turns and review flags older than
  that many days are deleted (``store.delete_older_than``).
- :class:`features.guardrails.rules.SecretGuard`: a message with an API key, token or private key in it is refused
  (the model never sees it) and a reply with one is withdrawn. Always on, whatever ``CHATBOT_GUARDRAILS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from core.commands import Command
from core.incoming import IncomingMessage
from core.store import ConversationStore, Storage, storage_of
from features import FeatureContext
from features.guardrails.install import load_rules
from features.guardrails.rules import SecretGuard

ORDER = 90

log = logging.getLogger(__name__)

FORGET_DESCRIPTION = "Delete everything I've stored about you"
NO_USER = (
    "I can't tell who you are on this platform, so I can't delete messages by user. "
    "/reset forgets this conversation."
)
NOTHING = "I had nothing stored about you, so there was nothing to delete."
DONE = "Done: I deleted everything I had stored about you: {what}."
RETENTION_INTERVAL = 3600.0
DAY = 86_400.0


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


class Forget:
    """The ``/forget`` command."""

    def __init__(self, store: Storage) -> None:
        self.store = store

    async def __call__(self, message: IncomingMessage) -> str:
        user = message.user_id
        if not user:  # an empty id would match every reply in the store
            return NO_USER
        turns = await self.store.ledger.count_user_turns(user)
        others = await self.store.review.count_user_flags(user)
        messages = await self.store.forget_user(user)
        log.info("%s: /forget deleted %d messages, %d turns, %d other rows", user, messages, turns, others)
        parts = []
        if messages:
            parts.append(
                _plural(messages, "message", "messages")
                + " (yours, and my replies in conversations only you took part in)"
            )
        if turns:
            parts.append(_plural(turns, "record of our exchanges", "records of our exchanges"))
        if others:
            parts.append(_plural(others, "other note", "other notes") + " (such as review flags)")
        if not parts:
            return NOTHING
        return DONE.format(what=", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1])


class Retention:
    """Deletes what is older than ``days``: once at start, then every ``interval`` seconds."""

    def __init__(
        self,
        store: ConversationStore,
        days: int,
        *,
        wall: Callable[[], float] = time.time,
        interval: float = RETENTION_INTERVAL,
    ) -> None:
        self.store, self.days = store, days
        self.wall, self.interval = wall, interval

    async def run_once(self) -> int:
        cutoff = self.wall() - self.days * DAY
        deleted = await self.store.delete_older_than(cutoff)
        if deleted:
            log.info("retention: deleted %d messages older than %d days", deleted, self.days)
        return deleted

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention: deleting old messages failed; will try again")
            await asyncio.sleep(self.interval)


async def install(ctx: FeatureContext) -> None:
    settings, engine = ctx.settings, ctx.engine
    store = storage_of(engine.store)

    secrets = SecretGuard(load_rules(ctx), ctx.secrets)
    # First in line although installed last: a pasted key must not even reach the guard model's classifier.
    engine.hooks.input_guards.insert(0, secrets)
    engine.hooks.output_guards.insert(0, secrets)

    engine.commands.add(Command("forget", FORGET_DESCRIPTION, Forget(store)))

    if settings.retention_days > 0:
        retention = Retention(store, settings.retention_days)
        task = asyncio.create_task(retention.run_forever(), name="retention")

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        ctx.closers.append(stop)
