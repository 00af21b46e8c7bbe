"""The real servers some tests need (PostgreSQL, Redis on loopback), in one place: whether they are there,
and a space of their own for each test.

:class:`OwnRedis` starts a private ``redis-server`` on a free loopback port, for tests that stop it.

On the project's machines and in CI the servers run (../shared/SERVICES.md); on a newcomer's laptop they may
not, and the README's test command must still pass there: a test that needs one is skipped with one clear
reason ("PostgreSQL not reachable at 127.0.0.1:5432: ..."). With ``CI=true`` it fails instead: CI never
skips them silently.

Each test gets its own space, so runs never collide with CI, other helpers or each other: a fresh
PostgreSQL database ``chatbot_<random>`` (dropped afterwards, its connections with it), and a Redis key
prefix ``test:<random>:`` (its keys deleted afterwards).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
import redis.asyncio as aioredis

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN_URL = os.environ.get("CHATBOT_TEST_POSTGRES", f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres")
POSTGRES_ADMIN_URL = PG_ADMIN_URL
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = os.environ.get("CHATBOT_TEST_REDIS", f"redis://{REDIS_HOST}:{REDIS_PORT}/0")
CHECK_TIMEOUT = 5.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(service: str, where: str, error: BaseException) -> None:
    """Skip the test (fail it under ``CI=true``) because ``service`` is not there."""
    reason = f"{service} not reachable at {where}: {str(error) or type(error).__name__}"
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the services must run; see ../shared/SERVICES.md)")
    pytest.skip(reason)


async def postgres_admin() -> asyncpg.Connection:
    """A connection to the server's ``postgres`` database, or the test skipped (failed in CI)."""
    try:
        return await asyncpg.connect(PG_ADMIN_URL, timeout=CHECK_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        unavailable("PostgreSQL", PG_ADMIN_URL.rsplit("@", 1)[-1].rsplit("/", 1)[0], exc)
        raise  # not reached: skip and fail raise


@asynccontextmanager
async def scratch_database(admin_url: str = PG_ADMIN_URL) -> AsyncIterator[str]:
    """The URL of a new, empty database ``chatbot_<random>`` on the server of ``admin_url``, dropped
    afterwards with any connection left on it. Raises the driver's error if the server is not there (the
    benchmarks use it too: they report instead of skipping)."""
    admin = await asyncpg.connect(admin_url, timeout=CHECK_TIMEOUT)
    name = f"chatbot_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        admin = await asyncpg.connect(admin_url, timeout=CHECK_TIMEOUT)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """:func:`scratch_database` for a test: skipped (failed in CI) when the server is not there."""
    await (await postgres_admin()).close()
    async with scratch_database() as url:
        yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this test (see :func:`fresh_postgres_database`)."""
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The Redis server's URL, once it answered a ping (skipped, or failed in CI, otherwise)."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        unavailable("Redis", REDIS_URL.split("//", 1)[-1].rsplit("/", 1)[0], exc)
    finally:
        await client.aclose()
    yield REDIS_URL


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own (``test:<random>:``); every key under it is deleted afterwards."""
    prefix = f"test:{secrets.token_hex(6)}:"
    yield prefix
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnRedis:
    """A private ``redis-server`` on a loopback port this test owns: it can be stopped and started again."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server", "PATH", FileNotFoundError("not installed"))
            return
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        unavailable("redis-server", f"127.0.0.1:{self.port}", TimeoutError("did not start in 10 s"))

    def stop(self) -> None:
        """Kill it (SIGKILL, as a crash would), and wait until it is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """A private Redis server (started), killed after the test whatever happened."""
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
