"""Shared pacing of platform calls across concurrent replies.

A platform's limit is often wider than one message (Slack's chat.update per workspace, Discord's edits per
channel). A :class:`RateGate` is a token bucket that every reply to the same place shares: live-preview
edits take a token only when one is free (and leave a reserve for final edits), final edits and new
messages wait for theirs.
"""

from __future__ import annotations

from core.clock import Clock


class RateGate:
    """At most ``rate`` operations per ``per`` seconds, smoothed as a token bucket."""

    def __init__(self, rate: float, per: float, clock: Clock, *, reserve: float = 0.2) -> None:
        if rate <= 0 or per <= 0:
            raise ValueError("rate and per must be positive")
        self._capacity = float(rate)
        self._refill = rate / per
        self._clock = clock
        self._reserve = reserve * self._capacity
        self._tokens = float(rate)
        self._stamp = clock.now()

    def _update(self) -> None:
        now = self._clock.now()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._refill)
        self._stamp = now

    def try_acquire(self) -> bool:
        """Take a token for an optional call (a preview edit), keeping the reserve for final ones."""
        self._update()
        if self._tokens - 1.0 >= self._reserve:
            self._tokens -= 1.0
            return True
        return False

    def delay(self) -> float:
        """Seconds until :meth:`try_acquire` can succeed."""
        self._update()
        missing = self._reserve + 1.0 - self._tokens
        return max(0.0, missing / self._refill)

    async def acquire(self) -> None:
        """Wait for a token for a call that must happen (a final edit, a new message)."""
        while True:
            self._update()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            await self._clock.sleep((1.0 - self._tokens) / self._refill)


class RateGates:
    """One :class:`RateGate` per key (a workspace, a channel), made on first use."""

    def __init__(self, rate: float, per: float, clock: Clock, *, reserve: float = 0.2) -> None:
        self._args = (rate, per, clock)
        self._reserve = reserve
        self._gates: dict[str, RateGate] = {}

    def get(self, key: str) -> RateGate:
        gate = self._gates.get(key)
        if gate is None:
            rate, per, clock = self._args
            gate = self._gates[key] = RateGate(rate, per, clock, reserve=self._reserve)
        return gate
