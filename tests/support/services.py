"""Servers the tests use on loopback (../shared/SERVICES.md): a fresh PostgreSQL database per test.

A test that needs a server skips with one clear reason when it is not running, except with ``CI=true``,
where a missing server fails the test (CI starts the services first).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import psycopg
import pytest

POSTGRES_ADMIN_URL = os.environ.get("CHATBOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the services must run; see ../shared/SERVICES.md)")
    pytest.skip(reason)


async def _admin() -> psycopg.AsyncConnection[tuple[object, ...]]:
    try:
        return await psycopg.AsyncConnection.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        _unavailable("PostgreSQL is not running on 127.0.0.1:5432")
        raise  # not reached: skip and fail raise


def database_url(name: str) -> str:
    """The URL of database ``name`` on the test server."""
    base, _, _db = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """The URL of a fresh, empty PostgreSQL database (``chatbot_<random>``), dropped after the test."""
    name = f"chatbot_{secrets.token_hex(6)}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield database_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
