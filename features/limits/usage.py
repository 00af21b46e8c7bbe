"""Usage limits: how often a user may write, and how many tokens a user and a bot may spend a day.

- Rate: at most ``per_minute`` messages from one user in any 60 seconds (a sliding window, in memory).
- Daily budgets: prompt + completion tokens since 00:00 UTC, per user and per bot, counted from the
  ``turns`` table the engine already writes. Each total is read from the database once per user (or bot)
  and day, then kept up to date in memory by :meth:`UsageLimits.on_turn` after every turn, so a check costs
  no query.

User ids are platform-qualified (``telegram:1001``, ``slack:U123``), so limits hold per account on every
platform. Over a limit the user is told when they can continue and the model is not called. The local
terminal user (``console:...``) is the operator at their own machine: no per-user limit applies to them,
but their tokens count towards the bot's budget.

With one process the window and the totals live in memory. With several workers (``engine.shared``, Redis)
each process would see only its own share, so the window and the totals live in the shared store instead:
the first worker to need a day's total seeds it from the ledger, every finished turn adds to it, and every
check reads it. While the shared store is unreachable each worker falls back to its in-process counts
(kept current all along), so a limit is then per worker until the store is back.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from core.hooks import Refusal
from core.incoming import IncomingMessage
from core.shared_state import SharedState, SharedUnavailable
from core.store import TurnRecord
from core.turn import TurnStatus

DAY = 86_400.0
TOTAL_TTL = DAY + 3_600.0  # a shared daily total outlives its day by an hour, then expires
EXEMPT_PREFIXES = ("console:",)

SLOW_DOWN = "Please slow down: you can send another message in {wait}."
USER_BUDGET = "You've reached today's limit; you can continue after 00:00 UTC (in {wait})."
BOT_BUDGET = (
    "I've reached my usage limit for today, so I can't answer right now; "
    "I'll be back after 00:00 UTC (in {wait})."
)


@dataclass(frozen=True, slots=True)
class Limits:
    """0 turns a limit off."""

    per_minute: int = 10
    user_daily_tokens: int = 200_000
    bot_daily_tokens: int = 5_000_000


def utc_day_start(timestamp: float) -> float:
    """00:00 UTC of the day ``timestamp`` falls in."""
    return math.floor(timestamp / DAY) * DAY


def format_wait(seconds: float) -> str:
    """``23 s``, ``4 min``, ``3 h 12 min``: rounded up, so the user is never told to come back too early."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class RateWindow:
    """Sliding-window counter: at most ``limit`` events per ``period`` seconds for each key."""

    def __init__(self, limit: int, period: float = 60.0) -> None:
        self.limit, self.period = limit, period
        self._events: dict[str, deque[float]] = {}
        self._checks = 0

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may act again (0: now). A call that returns 0 counts as an event."""
        self._checks += 1
        if self._checks % 1024 == 0:
            self._sweep(now)
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.period:
            events.popleft()
        if len(events) >= self.limit:
            return events[0] + self.period - now
        events.append(now)
        return 0.0

    def _sweep(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.period]:
            del self._events[key]

    def __len__(self) -> int:
        return len(self._events)


class TokenLedger(Protocol):
    """Where spent tokens are read from at the start of a day: the store's turn ledger
    (:class:`core.store.TurnLedger`, ``engine.store.ledger``) is one."""

    async def user_tokens_since(self, user_id: str, since: float, *, bot: str | None = None) -> int: ...

    async def bot_tokens_since(self, bot: str, since: float) -> int: ...


class _DailyTotals:
    """Tokens spent today per key, loaded from the ledger on first use and kept current in memory."""

    def __init__(self, load: Callable[[str, float], Awaitable[int]]) -> None:
        self._load = load
        self._day = 0.0
        self._totals: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _roll(self, day: float) -> None:
        if day != self._day:
            self._day, self._totals, self._locks = day, {}, {}

    async def get(self, key: str, day: float) -> int:
        self._roll(day)
        if key not in self._totals:
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                if key not in self._totals:
                    total = await self._load(key, day)
                    if self._day == day:
                        self._totals[key] = total
                        self._locks.pop(key, None)
                    return total
        return self._totals[key]

    def add(self, key: str, day: float, tokens: int) -> None:
        """Count a finished turn; a key not loaded yet will read it from the ledger instead."""
        self._roll(day)
        if key in self._totals:
            self._totals[key] += tokens


class UsageLimits:
    """Input guard (refuses over a limit) and turn observer (keeps the daily totals current).

    ``clock`` is monotonic (the rate window); ``wall`` is epoch seconds (the UTC day). Both are injectable.
    """

    def __init__(
        self,
        limits: Limits,
        ledger: TokenLedger | None,
        *,
        bot: Callable[[], str],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        shared: SharedState | None = None,
    ) -> None:
        self.limits = limits
        self.shared = shared
        self.ledger = ledger
        self.bot = bot
        self.clock = clock
        self.wall = wall
        self.rate = RateWindow(limits.per_minute) if limits.per_minute > 0 else None
        self._users = _DailyTotals(self._load_user)
        self._bots = _DailyTotals(self._load_bot)

    async def _load_user(self, user: str, day: float) -> int:
        # this bot's turns only: each bot of a shared store keeps its own limits
        return (
            await self.ledger.user_tokens_since(user, day, bot=self.bot()) if self.ledger is not None else 0
        )

    async def _load_bot(self, bot: str, day: float) -> int:
        return await self.ledger.bot_tokens_since(bot, day) if self.ledger is not None else 0

    @staticmethod
    def exempt(user: str) -> bool:
        return user.startswith(EXEMPT_PREFIXES)

    async def check_input(self, message: IncomingMessage, text: str) -> Refusal | None:
        user = message.user_id or message.session_id
        now = self.wall()
        day = utc_day_start(now)
        until_midnight = day + DAY - now
        if self.limits.bot_daily_tokens > 0:
            spent = await self._spent("bot", self.bot(), day)
            if spent >= self.limits.bot_daily_tokens:
                return Refusal(
                    BOT_BUDGET.format(wait=format_wait(until_midnight)),
                    f"bot daily token budget spent ({spent:,} of {self.limits.bot_daily_tokens:,})",
                    status=TurnStatus.LIMITED,
                )
        if self.exempt(user):
            return None
        if self.limits.user_daily_tokens > 0:
            spent = await self._spent("user", user, day)
            if spent >= self.limits.user_daily_tokens:
                return Refusal(
                    USER_BUDGET.format(wait=format_wait(until_midnight)),
                    f"user daily token budget spent ({spent:,} of {self.limits.user_daily_tokens:,})",
                    status=TurnStatus.LIMITED,
                )
        if self.rate is not None:
            wait = await self._rate_wait(self.rate, user)
            if wait > 0:
                return Refusal(
                    SLOW_DOWN.format(wait=format_wait(wait)),
                    f"rate limit ({self.limits.per_minute} messages a minute)",
                    status=TurnStatus.LIMITED,
                )
        return None

    async def on_turn(self, message: IncomingMessage, turn: TurnRecord) -> None:
        tokens = turn.prompt_tokens + turn.completion_tokens
        if tokens <= 0:
            return
        day = utc_day_start(self.wall())
        bot, user = turn.bot or self.bot(), turn.user_id or message.user_id or message.session_id
        self._bots.add(bot, day, tokens)
        self._users.add(user, day, tokens)
        if self.shared is not None:
            try:
                await self.shared.add_to_total(_total_key("bot", bot, day), tokens)
                await self.shared.add_to_total(_total_key("user", user, day), tokens)
            except SharedUnavailable:
                pass  # the in-process totals above have it; the ledger has it for the next seed

    async def _spent(self, kind: str, key: str, day: float) -> int:
        """Tokens ``key`` (a bot or a user) spent today: every worker's when shared, else this process's."""
        totals, load = (self._bots, self._load_bot) if kind == "bot" else (self._users, self._load_user)
        if self.shared is not None:
            try:
                return await self.shared.total(_total_key(kind, key, day), TOTAL_TTL, lambda: load(key, day))
            except SharedUnavailable:
                pass
        return await totals.get(key, day)

    async def _rate_wait(self, rate: RateWindow, user: str) -> float:
        """Seconds until ``user`` may write again, counting their messages to every worker when shared."""
        if self.shared is not None:
            try:
                return await self.shared.window_wait(f"limits:rate:{user}", rate.limit, rate.period)
            except SharedUnavailable:
                pass
        return rate.wait(user, self.clock())

    async def spent_today(self, user: str) -> int:
        """Tokens ``user`` has spent since 00:00 UTC (for commands and tests)."""
        return await self._spent("user", user, utc_day_start(self.wall()))


def _total_key(kind: str, key: str, day: float) -> str:
    return f"limits:{kind}:{int(day)}:{key}"
