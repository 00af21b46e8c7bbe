"""One aiosqlite connection shared by every part of the SQLite store, and its write discipline.

Autocommit mode with WAL (readers never wait for the writer); one write transaction at a time through a
shared lock (``BEGIN IMMEDIATE ... COMMIT``, rolled back on any failure). Every table group of
:class:`core.sqlite_store.SQLiteStore` (conversations, journal, ledger, review, knowledge) uses the same
:class:`SharedConnection`, so a process holds one connection to its database.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import aiosqlite

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000


async def connect(path: Path) -> aiosqlite.Connection:
    """A connection in autocommit mode with WAL (readers never wait for the writer), creating the folder.

    ``busy_timeout`` is set first, so that switching a fresh file to WAL while another process does the
    same waits for it instead of failing with "database is locked". The switch is skipped when the file
    is in WAL already, and retried while another connection holds the lock it needs (SQLite answers
    "locked" there without waiting, e.g. while another opener migrates the schema). The connection is
    closed again when a pragma fails: an open aiosqlite connection is a live thread that keeps the
    process from exiting.
    """
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await _use_wal(db)
        for pragma in ("synchronous=NORMAL", "foreign_keys=ON"):
            await db.execute(f"PRAGMA {pragma}")
    except BaseException:
        await db.close()
        raise
    return db


async def _use_wal(db: aiosqlite.Connection) -> None:
    """Switch to WAL unless the file is in WAL already, retrying "locked" for up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            async with db.execute("PRAGMA journal_mode") as cursor:
                row = await cursor.fetchone()
            if row is not None and str(row[0]).lower() == "wal":
                return
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


async def _roll_back(db: aiosqlite.Connection) -> None:
    """Roll back whatever transaction is open, so the connection takes the next write.

    ``ROLLBACK`` is always sent, not only when a transaction looks open: a cancelled ``BEGIN`` or ``COMMIT``
    still runs on the database thread, and the rollback queued behind it runs after it. With nothing open
    SQLite answers "no transaction is active", which is fine. Called while another exception is on its way
    up: any other failure here is logged, not raised over it.
    """
    try:
        await db.execute("ROLLBACK")
    except sqlite3.OperationalError:
        if db.in_transaction:
            log.exception("rolling back a failed transaction failed")
    except Exception:
        log.exception("rolling back a failed transaction failed")


@asynccontextmanager
async def write_transaction(
    db: aiosqlite.Connection, lock: asyncio.Lock
) -> AsyncIterator[aiosqlite.Connection]:
    """One write transaction at a time on a shared connection: ``BEGIN IMMEDIATE``, then commit.

    Any failure rolls back, a failed ``COMMIT`` included (a deferred constraint, ``SQLITE_BUSY``): SQLite
    leaves the transaction open then, and without the rollback every later write on the connection fails.
    """
    async with lock:
        try:
            await db.execute("BEGIN IMMEDIATE")
            yield db
            await db.execute("COMMIT")
        except BaseException:
            await _roll_back(db)
            raise


def schema_statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one each (a trigger's ``BEGIN ... END`` body stays whole)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n\t;"):
        statements.append(pending.strip())
    return statements


class SharedConnection:
    """The store's connection (once open) and its write lock, handed to each table group."""

    def __init__(self) -> None:
        self.connection: aiosqlite.Connection | None = None
        self.write_lock = asyncio.Lock()

    @property
    def db(self) -> aiosqlite.Connection:
        if self.connection is None:
            raise RuntimeError("store is not open")
        return self.connection

    def transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        return write_transaction(self.db, self.write_lock)

    async def fetchrow(self, query: str, params: Iterable[object] = ()) -> sqlite3.Row | None:
        """A read: its first row (``None`` without one)."""
        async with self.db.execute(query, tuple(params)) as cursor:
            row: sqlite3.Row | None = await cursor.fetchone()
        return row
