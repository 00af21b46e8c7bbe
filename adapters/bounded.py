"""Per-key memory with a ceiling, for runners that meet an unbounded number of chats and channels.

A runner keeps a rate gate per chat (Telegram) or channel (Discord). Made on first use and never dropped,
those would grow by one entry for every chat the bot has ever spoken in. :class:`BoundedRateGates` keeps
the ``size`` most recently used ones; a dropped gate is one whose chat has been quiet while ``size`` other
chats were active, and a fresh gate for it starts empty, as the old one would be by then.
"""

from __future__ import annotations

from collections import OrderedDict

from core.clock import Clock
from core.pacing import RateGate

MAX_KEYS = 10_000


class BoundedRateGates:
    """:class:`core.pacing.RateGates` that remembers at most ``size`` keys, least recently used dropped first."""

    def __init__(
        self, rate: int, per: float, clock: Clock, *, reserve: float = 0.2, size: int = MAX_KEYS
    ) -> None:
        self._rate, self._per, self._clock, self._reserve, self._size = rate, per, clock, reserve, size
        self._gates: OrderedDict[str, RateGate] = OrderedDict()

    def get(self, key: str) -> RateGate:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = RateGate(self._rate, self._per, self._clock, reserve=self._reserve)
            while len(self._gates) > self._size:
                self._gates.popitem(last=False)
        else:
            self._gates.move_to_end(key)
        return gate

    def __len__(self) -> int:
        return len(self._gates)
