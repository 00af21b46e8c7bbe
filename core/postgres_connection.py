"""The PostgreSQL store's connection pool, its URL (never shown with its password) and its migrations.

Every table group of :class:`core.postgres_store.PostgresStore` (conversations, journal, ledger, review,
knowledge) uses one :class:`SharedPool`: an asyncpg pool of a few connections, each statement on whichever
connection is free. Several workers (processes, machines) share the database; nothing here assumes one.

Failures:

- The server is down or refuses us at start: :class:`core.errors.ConfigError` naming the server as
  ``postgresql://user@host:port/db`` (the password never appears: not in the message, not in the log).
- A connection is dropped while the bot runs (the server restarted, an administrator ran
  ``pg_terminate_backend``, a proxy timed out): asyncpg notices the closed socket and the pool opens a new
  connection for the next statement. A statement that meets the dead connection before asyncpg noticed is
  tried once more on a fresh one if it is a read, or a write that certainly did not run (asyncpg refused
  to send it); a write cut off midway fails (it may have
  been committed: trying it again could store a message twice), and the turn reports it like any other
  failure.
- Two workers start at once on a fresh database: :func:`migrate` runs in one transaction holding a
  transaction-level advisory lock, so one applies the migrations and the other waits, then finds the
  schema current.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

import asyncpg

from core.errors import ConfigError
from core.postgres_migrations import PG_MIGRATIONS, PG_SCHEMA_VERSION
from core.secrets import redact_secrets

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"  # a pooled connection, as the pool lends it

SCHEMES = ("postgresql", "postgres")
# Any constant the bot alone uses: pg_advisory_xact_lock(MIGRATION_LOCK) serialises migrations.
MIGRATION_LOCK = 0x63686174626F74  # "chatbot"
POOL_MIN, POOL_MAX = 1, 10
CONNECT_TIMEOUT = 10.0
# Errors after which a connection is gone (the statement may not have run); a fresh one is tried once.
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
)

# Of those, the ones that say the statement never ran: asyncpg refused to send it (the connection was
# already closed or in a broken state). A write is tried again after these only.
NOT_RUN: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.InterfaceError,
)

T = TypeVar("T")


def is_postgres_url(url: str | None) -> bool:
    """Whether ``url`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return bool(url) and urlsplit(url or "").scheme in SCHEMES


def describe(url: str) -> str:
    """The database ``url`` names, for messages: ``postgresql://user@host:port/db``, never the password."""
    parts = urlsplit(url)
    try:
        port = parts.port or 5432
    except ValueError:
        port = 5432
    user = f"{parts.username}@" if parts.username else ""
    return f"postgresql://{user}{parts.hostname or 'localhost'}:{port}{parts.path or '/'}"


def password_of(url: str) -> str:
    """The password in ``url`` ("" without one), so that logs can redact it wherever it shows up."""
    return urlsplit(url).password or ""


class SharedPool:
    """The store's pool (once open), handed to each table group."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = describe(url)
        self.pool: asyncpg.Pool | None = None

    @property
    def opened(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("store is not open")
        return self.pool

    async def open(self) -> None:
        """Open the pool (one connection at once, to fail here if the server is not there)."""
        try:
            self.pool = await asyncpg.create_pool(
                self.url, min_size=POOL_MIN, max_size=POOL_MAX, timeout=CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            reason = redact_secrets(str(exc) or type(exc).__name__, [password_of(self.url)])
            raise ConfigError(
                f"cannot connect to PostgreSQL at {self.where} ({reason}); check CHATBOT_DATABASE_URL "
                "and that the server is running"
            ) from None

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    async def run(self, work: Callable[[Connection], Awaitable[T]], *, retry: bool = True) -> T:
        """``work`` on a pooled connection, once more on a fresh one if the connection was lost: always
        with ``retry`` (reads), and for a write only if it certainly did not run (:data:`NOT_RUN`): a
        write cut off midway may or may not have been committed, and is not repeated."""
        try:
            async with self.opened.acquire() as connection:
                return await work(connection)
        except CONNECTION_LOST as exc:
            if not retry and not isinstance(exc, NOT_RUN):
                raise
            log.warning("PostgreSQL connection lost (%s); trying once more", type(exc).__name__)
            async with self.opened.acquire() as connection:
                return await work(connection)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One transaction on one pooled connection (rolled back on any failure)."""
        async with self.opened.acquire() as connection, connection.transaction():
            yield connection

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """A read: its rows."""
        return await self.run(lambda connection: connection.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        """A read: its first row."""
        return await self.run(lambda connection: connection.fetchrow(query, *args))

    async def fetchval(self, query: str, *args: Any) -> Any:
        """A read: the first value of its first row."""
        return await self.run(lambda connection: connection.fetchval(query, *args))

    async def write_row(self, query: str, *args: Any) -> asyncpg.Record | None:
        """One write statement (its own transaction) and the first row it returns."""
        return await self.run(lambda connection: connection.fetchrow(query, *args), retry=False)

    async def write_value(self, query: str, *args: Any) -> Any:
        """One write statement (its own transaction) and the first value it returns."""
        return await self.run(lambda connection: connection.fetchval(query, *args), retry=False)

    async def execute(self, query: str, *args: Any) -> str:
        """One write statement, its own transaction; returns the status (``DELETE 3``)."""
        return await self.run(lambda connection: connection.execute(query, *args), retry=False)


def row_count(status: str) -> int:
    """The number of rows an ``execute`` status reports (``UPDATE 2`` -> 2, ``INSERT 0 1`` -> 1)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def migrate(shared: SharedPool) -> None:
    """Apply the missing :data:`PG_MIGRATIONS` in one transaction holding the migration lock.

    ``pg_advisory_xact_lock`` is released with the transaction, so a worker killed mid-migration leaves
    neither a lock nor half a schema behind.
    """
    async with shared.transaction() as connection:
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at "
            "TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        version = int(await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
        if version > PG_SCHEMA_VERSION:
            raise ConfigError(
                f"{shared.where} has schema version {version}, newer than this bot knows "
                f"({PG_SCHEMA_VERSION}); upgrade the bot"
            )
        for number in range(version, PG_SCHEMA_VERSION):
            if PG_MIGRATIONS[number].strip():
                await connection.execute(PG_MIGRATIONS[number])
            await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", number + 1)
            log.info("database %s migrated to schema version %d", shared.where, number + 1)
