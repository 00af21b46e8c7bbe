"""Privacy: ``/forget`` deletes what the bot stored about a user, a retention setting deletes old messages,
and credentials pasted into a chat are refused before they reach the model.

- ``/forget`` (every platform): the user's messages and turn records (``store.forget_user``), plus the rows
  of any other feature table in the same database that has a ``user_id`` column (review flags, for one).
- ``CHATBOT_RETENTION_DAYS`` > 0: at start and then every hour, messages and turns older than that many
  days are deleted (``store.delete_older_than``), with rows of feature tables that have both ``user_id``
  and ``created_at`` columns.
- :class:`features.guardrails.rules.SecretGuard`: a message with an API key, token or private key in it is refused
  (the model never sees it) and a reply with one is withdrawn. Always on, whatever ``CHATBOT_GUARDRAILS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import aiosqlite

from core.commands import Command
from core.incoming import IncomingMessage
from core.sqlite_store import SQLiteStore, connect
from core.store import ConversationStore
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
STORE_TABLES = frozenset({"messages", "turns", "sessions"})


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


class FeatureTables:
    """Per-user rows other features keep in the conversation database (found by their columns), on a
    connection of its own so its deletes are transactions of their own."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> FeatureTables:
        return cls(await connect(path))

    async def close(self) -> None:
        await self._db.close()

    def _connection(self) -> aiosqlite.Connection:
        return self._db

    async def _tables(self, *columns: str) -> list[str]:
        db = self._connection()
        names = [
            str(row[0])
            for row in await db.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        found = []
        for name in names:
            if name in STORE_TABLES:
                continue
            quoted = '"' + name.replace('"', '""') + '"'
            info = await db.execute_fetchall(f"PRAGMA table_info({quoted})")
            if set(columns) <= {str(row[1]) for row in info}:
                found.append(quoted)
        return found

    async def count_turns(self, user_id: str) -> int:
        rows = list(
            await self._connection().execute_fetchall(
                "SELECT COUNT(*) FROM turns WHERE user_id = ?", (user_id,)
            )
        )
        return int(rows[0][0]) if rows else 0

    async def forget(self, user_id: str) -> int:
        db, deleted = self._connection(), 0
        for table in await self._tables("user_id"):
            cursor = await db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
            deleted += max(0, cursor.rowcount)
        return deleted

    async def delete_older_than(self, timestamp: float) -> int:
        db, deleted = self._connection(), 0
        for table in await self._tables("user_id", "created_at"):
            cursor = await db.execute(f"DELETE FROM {table} WHERE created_at < ?", (timestamp,))
            deleted += max(0, cursor.rowcount)
        return deleted


class Forget:
    """The ``/forget`` command."""

    def __init__(self, store: ConversationStore, tables: FeatureTables | None) -> None:
        self.store, self.tables = store, tables

    async def __call__(self, message: IncomingMessage) -> str:
        user = message.user_id
        if not user:  # an empty id would match every reply in the store
            return NO_USER
        turns = await self.tables.count_turns(user) if self.tables is not None else 0
        messages = await self.store.forget_user(user)
        others = await self.tables.forget(user) if self.tables is not None else 0
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
        tables: FeatureTables | None,
        days: int,
        *,
        wall: Callable[[], float] = time.time,
        interval: float = RETENTION_INTERVAL,
    ) -> None:
        self.store, self.tables, self.days = store, tables, days
        self.wall, self.interval = wall, interval

    async def run_once(self) -> int:
        cutoff = self.wall() - self.days * DAY
        deleted = await self.store.delete_older_than(cutoff)
        if self.tables is not None:
            await self.tables.delete_older_than(cutoff)
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
    store = engine.store
    tables = None
    if isinstance(store, SQLiteStore) and str(store.path) != ":memory:":
        tables = await FeatureTables.open(store.path)
        ctx.closers.append(tables.close)

    secrets = SecretGuard(load_rules(ctx), ctx.secrets)
    # First in line although installed last: a pasted key must not even reach the guard model's classifier.
    engine.hooks.input_guards.insert(0, secrets)
    engine.hooks.output_guards.insert(0, secrets)

    engine.commands.add(Command("forget", FORGET_DESCRIPTION, Forget(store, tables)))

    if settings.retention_days > 0:
        retention = Retention(store, tables, settings.retention_days)
        task = asyncio.create_task(retention.run_forever(), name="retention")

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        ctx.closers.append(stop)
