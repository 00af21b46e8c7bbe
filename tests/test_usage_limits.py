"""Usage limits and prices: rate limit, daily budgets per user and per bot, over the real engine."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.conversation import ConversationEngine
from core.errors import ConfigError
from core.incoming import IncomingMessage
from core.store import TurnRecord
from features.limits.pricing import PriceTable, cost
from features.limits.usage import TokenLedger, UsageLimits, format_wait, utc_day_start
from tests.fakes.openai_server import FakeOpenAI
from tests.support.engines import engine_for

EVENING = datetime(2030, 1, 1, 20, 47, tzinfo=UTC).timestamp()  # 3 h 13 min before midnight UTC


def msg(text: str, user: str = "telegram:1", session: str | None = None) -> IncomingMessage:
    return IncomingMessage(session_id=session or user, text=text, user_id=user, platform=user.split(":")[0])


def limiter(engine: ConversationEngine) -> UsageLimits:
    return next(g for g in engine.hooks.input_guards if isinstance(g, UsageLimits))


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def test_eleventh_message_in_a_minute_waits(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        clock = limiter(engine).clock = Clock(1000.0)
        for i in range(10):
            clock.t = 1000.0 + i
            session = "telegram:1" if i % 2 else "telegram:-100"  # a private chat and a group: one user
            assert await engine.reply_text(msg(f"question {i}", session=session)) == f"You said: question {i}"
        clock.t = 1010.0
        refused = await engine.reply_text(msg("one more"))
        other_user = await engine.reply_text(msg("hello", user="slack:U1"))
        operator = await engine.reply_text(msg("hello", user="console:local"))
        clock.t = 1060.5
        later = await engine.reply_text(msg("one more"))
    assert refused == "Please slow down: you can send another message in 50 s."
    assert (other_user, operator, later) == ("You said: hello", "You said: hello", "You said: one more")
    assert len(fake_model.chat_requests) == 13  # never for the refused message


async def test_user_daily_budget_refuses_until_midnight(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path, CHATBOT_USER_DAILY_TOKENS=100) as engine:
        wall = limiter(engine).wall = Clock(EVENING)
        first = await engine.reply_text(msg("a first question that costs tokens"))
        spent = await limiter(engine).spent_today("telegram:1")
        second = await engine.reply_text(msg("a second question"))
        other = await engine.reply_text(msg("hi", user="discord:7"))
        wall.t = utc_day_start(EVENING) + 86_400 + 5  # just after midnight UTC
        next_day = await engine.reply_text(msg("good morning"))
    assert first.startswith("You said:") and spent > 100
    assert second == "You've reached today's limit; you can continue after 00:00 UTC (in 3 h 13 min)."
    assert other == "You said: hi" and next_day == "You said: good morning"
    assert len(fake_model.chat_requests) == 3


async def test_bot_daily_budget_stops_everyone(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path, CHATBOT_BOT_DAILY_TOKENS=100) as engine:
        limiter(engine).wall = Clock(EVENING)
        await engine.reply_text(msg("a first question that costs tokens"))
        other = await engine.reply_text(msg("hi", user="slack:U9"))
        operator = await engine.reply_text(msg("hi", user="console:local"))
    expected = (
        "I've reached my usage limit for today, so I can't answer right now; "
        "I'll be back after 00:00 UTC (in 3 h 13 min)."
    )
    assert other == operator == expected
    assert len(fake_model.chat_requests) == 1


class CountingLedger:
    def __init__(self, inner: TokenLedger) -> None:
        self.inner, self.loads = inner, 0

    async def user_tokens_since(self, user_id: str, since: float, *, bot: str | None = None) -> int:
        self.loads += 1
        return await self.inner.user_tokens_since(user_id, since, bot=bot)

    async def bot_tokens_since(self, bot: str, since: float) -> int:
        self.loads += 1
        return await self.inner.bot_tokens_since(bot, since)


def turn(user: str, started_at: float, tokens: int) -> TurnRecord:
    return TurnRecord(
        session_id=user,
        user_text="q",
        reply_text="a",
        started_at=started_at,
        latency_ms=1.0,
        prompt_tokens=tokens,
        completion_tokens=0,
        status="ok",
        model="gpt-4o-mini",
        user_id=user,
        bot="default",
        platform=user.split(":")[0],
    )


async def test_budgets_load_from_the_turns_table_once_a_day(fake_model: FakeOpenAI, db_path: Path) -> None:
    today = utc_day_start(time.time())
    async with engine_for(fake_model.base_url, db_path, CHATBOT_USER_DAILY_TOKENS=1500) as engine:
        await engine.store.record_turn(turn("telegram:5", today + 1, 2000))  # spent today, before a restart
        await engine.store.record_turn(turn("slack:U5", today - 100, 1_000_000))  # yesterday: not counted
        guard = limiter(engine)
        counting = guard.ledger = CountingLedger(guard.ledger)  # type: ignore[arg-type]
        over = await engine.reply_text(msg("hello", user="telegram:5"))
        fine = [await engine.reply_text(msg(f"hello {i}", user="slack:U5")) for i in range(4)]
        spent = await guard.spent_today("slack:U5")
    assert over.startswith("You've reached today's limit")
    assert fine == [f"You said: hello {i}" for i in range(4)]
    assert counting.loads == 3  # the bot once, each user once; later turns are counted in memory
    assert 0 < spent < 1500


def test_waits_read_naturally() -> None:
    assert [format_wait(s) for s in (0.2, 23, 59.5, 61, 3599, 3600, 11_520, 86_399)] == [
        "1 s",
        "23 s",
        "1 min",
        "2 min",
        "1 h",
        "1 h",
        "3 h 12 min",
        "24 h",
    ]


def test_prices_turn_tokens_into_cost() -> None:
    table = PriceTable.from_setting("gpt-4o-mini=0.20/0.80, my-local-llama=0.01/0.02")
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(1.00)  # overridden
    assert table.cost("gpt-4o-mini-2024-07-18", 500_000, 0) == pytest.approx(0.10)  # a dated snapshot
    assert table.cost("gpt-4o", 1_000_000, 100_000) == pytest.approx(3.50)  # built in
    assert table.cost("my-local-llama", 1_000_000, 1_000_000) == pytest.approx(0.03)
    assert table.cost("llama3.1:8b", 10**9, 10**9) == 0.0  # unknown (local) models cost nothing
    assert cost("openai/gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    with pytest.raises(ConfigError, match="CHATBOT_PRICES"):
        PriceTable.from_setting("gpt-4o=cheap")
