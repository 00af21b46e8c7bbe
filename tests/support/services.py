"""The real servers some tests need (Redis here), found on loopback or skipped with one clear reason.

A test that needs Redis takes the ``redis_url`` and ``redis_prefix`` fixtures: its keys all start with its
own prefix and are deleted afterwards, so tests share the machine's server without seeing each other.
Without a server the test is skipped with one reason, except under ``CI=true``, where it fails instead
(CI starts the servers; see ../shared/SERVICES.md). ``CHATBOT_TEST_REDIS_URL`` points at another server.

:class:`OwnRedis` starts a private ``redis-server`` on a free loopback port, for tests that stop it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

REDIS_URL = os.environ.get("CHATBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(reason: str) -> None:
    """Skip the test (a newcomer's machine without the server), or fail it under CI, which has them."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the CI services must be running; see ../shared/SERVICES.md)")
    pytest.skip(reason)


@pytest.fixture
async def redis_url() -> str:
    """The test Redis server's URL, once it answers a PING."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        await client.ping()
    except Exception as exc:
        unavailable(
            f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__}); start it to run this test"
        )
    finally:
        await client.aclose()
    return REDIS_URL


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; every key under it is deleted after the test."""
    from redis.asyncio import Redis

    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
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
            unavailable("redis-server is not installed; install it to run this test")
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
        unavailable(f"redis-server did not start on port {self.port}")

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
