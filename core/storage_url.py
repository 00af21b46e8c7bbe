"""Which store a deployment uses: ``CHATBOT_DATABASE_URL`` names a PostgreSQL database (several workers
share it), or, unset, the SQLite file at ``CHATBOT_DB`` (one process, the default).

Every command that opens the store goes through :func:`storage_for`, so a deployment switches backend with
one setting. Messages about the database name it without its password (:func:`describe_storage`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from core.errors import ConfigError
from core.postgres_connection import SCHEMES, describe, is_postgres_url
from core.postgres_store import PostgresStore
from core.sqlite_store import SQLiteStore
from core.store import Storage


def check_database_url(url: str | None) -> str | None:
    """``url`` if it is empty or a PostgreSQL URL; a clear error (without the URL's password) otherwise."""
    if not url:
        return None
    if not is_postgres_url(url):
        scheme = urlsplit(url).scheme or "(none)"
        raise ConfigError(
            f"CHATBOT_DATABASE_URL must start with {' or '.join(s + '://' for s in SCHEMES)}, not "
            f"{scheme!r}; unset it to keep SQLite at CHATBOT_DB"
        )
    return url


def storage_for(url: str | None, sqlite_path: Path) -> Storage:
    """The store (not open yet): PostgreSQL at ``url`` if one is given, else SQLite at ``sqlite_path``."""
    checked = check_database_url(url)
    if checked is not None:
        return PostgresStore(checked)
    return SQLiteStore(sqlite_path)


async def open_storage(url: str | None, sqlite_path: Path) -> Storage:
    """:func:`storage_for`, opened (connected, schema up to date)."""
    store = storage_for(url, sqlite_path)
    await store.open()
    return store


def nothing_stored(url: str | None, sqlite_path: Path) -> bool:
    """Whether there is certainly nothing stored yet (no SQLite file): read-only commands then say so
    instead of creating a database. A PostgreSQL database may always hold something."""
    return not url and not sqlite_path.exists()


def describe_storage(url: str | None, sqlite_path: Path) -> str:
    """The database, for messages: the SQLite path, or ``postgresql://user@host:port/db``."""
    return describe(url) if url else str(sqlite_path)
