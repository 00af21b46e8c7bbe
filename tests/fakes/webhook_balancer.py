"""A load balancer in front of N workers' Telegram webhooks, with Telegram's redelivery behind it.

Deliveries go round-robin. One that fails (connection refused or reset, a timeout, a non-2xx answer) goes to
the next worker, as nginx does with ``proxy_next_upstream error timeout http_500 http_502 http_503
non_idempotent`` (``non_idempotent`` lets nginx pass a POST on; see docs/work-queue.md for the block). When
every worker failed, it waits and posts again, as Telegram re-posts an update it got no 2xx for
(https://core.telegram.org/bots/api#setwebhook: "In case of an unsuccessful request ... we will repeat the
request"). Every attempt is recorded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class Attempt:
    update_id: int
    worker: int
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    at: float


@dataclass
class WebhookBalancer:
    urls: list[str]
    secret: str
    retry_wait: float = 0.2  # Telegram waits longer; a test does not
    give_up_after: float = 60.0
    timeout: float = 10.0
    attempts: list[Attempt] = field(default_factory=list)
    _next: int = 0
    _session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WebhookBalancer:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def deliver(self, update: dict[str, Any], *, to: int | None = None) -> int:
        """Post ``update`` until a worker answers 2xx (starting with worker ``to`` if given, else the next
        in turn); the index of the worker that took it."""
        start = to if to is not None else self._take_turn()
        deadline = time.monotonic() + self.give_up_after
        while True:
            for step in range(len(self.urls)):
                index = (start + step) % len(self.urls)
                status = await self._post(index, update)
                if status is not None and 200 <= status < 300:
                    return index
            if time.monotonic() > deadline:
                raise AssertionError(f"update {update['update_id']}: no worker took it")
            await asyncio.sleep(self.retry_wait)

    async def post_to(self, index: int, update: dict[str, Any]) -> int | None:
        """One post to worker ``index``, no failover: its status, ``None`` without an HTTP answer."""
        return await self._post(index, update)

    def _take_turn(self) -> int:
        index = self._next
        self._next = (self._next + 1) % len(self.urls)
        return index

    async def _post(self, index: int, update: dict[str, Any]) -> int | None:
        assert self._session is not None, "use the balancer as an async context manager"
        status: int | None = None
        try:
            async with self._session.post(
                self.urls[index], json=update, headers={SECRET_HEADER: self.secret}
            ) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            status = None
        self.attempts.append(Attempt(int(update.get("update_id", -1)), index, status, time.monotonic()))
        return status
