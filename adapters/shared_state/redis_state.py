"""The state all workers share, in Redis (``CHATBOT_REDIS_URL``): :class:`core.shared_state.SharedState`.

How it fails, and what then:

- Redis unreachable at start: :func:`connect` raises a :class:`core.errors.ConfigError` that names the
  setting and the host (never the password); the bot does not start half-shared.
- Redis lost while running: the call that finds out raises :class:`SharedUnavailable` (the caller answers
  from its in-process state), ONE warning is logged, and for ``retry_after`` seconds no call tries Redis
  (so a reply never waits on a dead server more than once per interval). After that the next call tries
  again; when it answers, one line says Redis is back and shared state resumes.
- A slow Redis: every command has a short socket timeout and counts as lost when it runs out.

Every key starts with the prefix (``CHATBOT_REDIS_PREFIX``), so several bots (or tests) can share a server.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.shared_state.redis_gate import RESERVE_SLOT, RedisGate
from core.clock import Clock
from core.errors import ConfigError
from core.pacing import Gate, PacedGate
from core.shared_state import SharedUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

COMMAND_TIMEOUT = 1.0  # seconds: a command slower than this counts as Redis being lost
RETRY_AFTER = 5.0  # seconds without trying Redis after it was lost

# add to a running total only once a worker has seeded it from the ledger (else the seed would be lost)
_ADD_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return false
"""


def safe_url(url: str) -> str:
    """The Redis URL without its user and password, for logs and errors."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisState:
    """:class:`core.shared_state.SharedState` over one Redis client, falling back while Redis is lost."""

    def __init__(
        self,
        client: Redis,
        clock: Clock,
        *,
        prefix: str = "chatbot:",
        where: str = "redis",
        retry_after: float = RETRY_AFTER,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.where = where
        self.retry_after = retry_after
        self._clock = clock
        self._lost_until: float | None = None  # set while Redis is lost: no call tries it before then
        self._reserve = client.register_script(RESERVE_SLOT)
        self._add_if_exists = client.register_script(_ADD_IF_EXISTS)

    @property
    def lost(self) -> bool:
        """Whether the last attempt found Redis unreachable (the in-process state answers meanwhile)."""
        return self._lost_until is not None

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        if self._lost_until is not None and self._clock.now() < self._lost_until:
            raise SharedUnavailable(f"{self.where} is unreachable")
        try:
            result = await operation()
        except (RedisError, OSError, TimeoutError) as exc:
            if self._lost_until is None:
                log.warning(
                    "shared state: %s is unreachable (%s); each worker uses its own gates, dedup and limits "
                    "until it is back",
                    self.where,
                    type(exc).__name__,
                )
            self._lost_until = self._clock.now() + self.retry_after
            raise SharedUnavailable(f"{self.where} is unreachable") from exc
        if self._lost_until is not None:
            self._lost_until = None
            log.info("shared state: %s is back; workers share gates, dedup and limits again", self.where)
        return result

    def key(self, name: str) -> str:
        return self.prefix + name

    # -- SharedState ---------------------------------------------------------------------------------

    def gate(self, key: str | Sequence[str], local: PacedGate, *, max_delay: float | None = None) -> Gate:
        return RedisGate(self, key, local, self._clock, max_delay=max_delay)

    async def reserve(self, keys: list[str], args: list[str]) -> tuple[bool, float]:
        """Run the gate script over ``keys`` (without the prefix): (granted, seconds to wait)."""
        full = [self.key(k) for k in keys]
        reply: Any = await self._call(lambda: self._reserve(keys=full, args=args))
        return bool(int(reply[0])), float(reply[1])

    async def first_time(self, key: str, ttl: float) -> bool:
        stored = await self._call(lambda: self.client.set(self.key(key), b"1", nx=True, px=_ms(ttl)))
        return bool(stored)

    async def window_wait(self, key: str, limit: int, period: float) -> float:
        _granted, wait = await self.reserve(
            [f"window:{key}"], ["try", "window", str(limit), repr(period), "0"]
        )
        return wait

    async def total(self, key: str, ttl: float, seed: Callable[[], Awaitable[int]]) -> int:
        full = self.key(key)
        current = await self._call(lambda: self.client.get(full))
        if current is None:
            start = await seed()
            # NX: when two workers seed at once, the first value stays and both read it
            await self._call(lambda: self.client.set(full, start, nx=True, px=_ms(ttl)))
            current = await self._call(lambda: self.client.get(full))
        return int(current or 0)

    async def add_to_total(self, key: str, amount: int) -> None:
        full = self.key(key)
        await self._call(lambda: self._add_if_exists(keys=[full], args=[amount]))

    async def close(self) -> None:
        await self.client.aclose()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


async def connect(url: str, clock: Clock, *, prefix: str = "chatbot:") -> RedisState:
    """A :class:`RedisState` on ``url`` once Redis answers; a :class:`ConfigError` if it does not."""
    where = safe_url(url)
    try:
        client = Redis.from_url(
            url,
            socket_timeout=COMMAND_TIMEOUT,
            socket_connect_timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 1),  # once more on a fresh connection (a restarted server), no more
        )
    except ValueError:
        raise ConfigError(
            f"CHATBOT_REDIS_URL is not a Redis URL ({where}): use redis://host:port/db"
        ) from None
    try:
        await client.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        await client.aclose()
        raise ConfigError(
            f"cannot reach Redis at {where} (CHATBOT_REDIS_URL): {type(exc).__name__}; start it, or unset "
            "CHATBOT_REDIS_URL to run one process with in-process state"
        ) from None
    log.info("shared state: workers share gates, dedup and limits through %s", where)
    return RedisState(client, clock, prefix=prefix, where=where)
