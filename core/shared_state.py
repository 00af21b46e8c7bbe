"""State that several worker processes of one bot share: pace gates, redelivery dedup, rate windows and
daily totals.

Unset (one process, the default) nothing here is used and every part keeps its in-process state. With
``CHATBOT_REDIS_URL`` the wiring (``bots/app.py``) puts a :class:`SharedState` on ``engine.shared``
(its Redis implementation lives in ``adapters/shared_state/``: core never imports a Redis client).

Failure is part of the interface: every call either answers from the shared store or raises
:class:`SharedUnavailable`, and the caller then answers from its own in-process state. The implementation
logs one warning when the store is lost and says when it is back; a reply never waits on it for long.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from core.pacing import Gate, PacedGate


class SharedUnavailable(Exception):
    """The shared store cannot be reached right now: use the in-process state instead."""


class SharedState(Protocol):
    """What the adapters and features ask of the state all workers share."""

    def gate(self, key: str | Sequence[str], local: PacedGate, *, max_delay: float | None = None) -> Gate:
        """A gate with ``local``'s limits, shared by every worker under ``key`` (or one key per limit of
        ``local``, in order, when limits of different scopes meet: a chat's and the bot's); ``local``
        paces the calls of this process while the store is unreachable. ``max_delay`` caps the wait a
        refused preview is told (it asks again then)."""
        ...

    async def first_time(self, key: str, ttl: float) -> bool:
        """Mark ``key`` as seen for ``ttl`` seconds; ``True`` if no worker had seen it (one atomic step)."""
        ...

    async def window_wait(self, key: str, limit: int, period: float) -> float:
        """Seconds until ``key`` may act again under ``limit`` events per ``period`` (0: now, and the event
        is counted)."""
        ...

    async def total(self, key: str, ttl: float, seed: Callable[[], Awaitable[int]]) -> int:
        """The running total under ``key``; the first worker to ask starts it from ``seed()``."""
        ...

    async def add_to_total(self, key: str, amount: int) -> None:
        """Add ``amount`` to a total that exists (one nobody started yet is seeded later, from the source)."""
        ...

    async def close(self) -> None: ...


def shared_gate(
    shared: SharedState | None, key: str, local: PacedGate, *, max_delay: float | None = None
) -> Gate:
    """``local`` itself in one process; with shared state, the gate every worker shares under ``key``."""
    if shared is None:
        return local
    return shared.gate(key, local, max_delay=max_delay)
