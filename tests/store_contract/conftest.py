"""The store contract: every test here runs once per storage backend in ``FACTORIES``.

A backend joins by adding one factory to the list: an async context manager that yields an open, empty
:class:`core.store.Storage` and closes it afterwards. ``postgres`` runs each test in a database of its own
on the loopback server (skipped without one, failed under ``CI=true``: tests/support/services.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from core import postgres_store
from core.sqlite_store import SQLiteStore, as_storage
from core.store import Storage
from tests.support.services import fresh_postgres_database

Factory = Callable[[Path], AbstractAsyncContextManager[Storage]]


@asynccontextmanager
async def sqlite(tmp_path: Path) -> AsyncIterator[Storage]:
    store = SQLiteStore(tmp_path / "contract.db")
    await store.open()
    try:
        yield as_storage(store)
    finally:
        await store.close()


@asynccontextmanager
async def postgres(tmp_path: Path) -> AsyncIterator[Storage]:
    async with fresh_postgres_database() as url:
        store = postgres_store.PostgresStore(url)
        await store.open()
        try:
            yield postgres_store.as_storage(store)
        finally:
            await store.close()


FACTORIES: list[Factory] = [sqlite, postgres]


@pytest.fixture(params=FACTORIES, ids=lambda factory: factory.__name__)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    factory: Factory = request.param
    async with factory(tmp_path) as opened:
        yield opened
