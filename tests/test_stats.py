"""``chatbot stats`` over a seeded ``turns`` table: counts, users, latency p50/p95, tokens and cost."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from bots.commands.stats import bar_chart, percentile
from core.sqlite_store import SQLiteStore
from core.store import TurnRecord
from tests.support.cli import run_chatbot

PRICES = {"gpt-4o-mini": (1.0, 4.0), "gpt-4o": (5.0, 20.0)}  # USD per million tokens, set below
PRICE_SETTING = "gpt-4o-mini=1/4, gpt-4o=5/20"


def at(days_ago: int, hour: int, minute: int = 0) -> float:
    day = date.today() - timedelta(days=days_ago)
    return datetime.combine(day, clock_time(hour, minute)).timestamp()


def turn(
    started: float,
    *,
    user: str,
    latency: float,
    prompt: int,
    completion: int,
    status: str = "ok",
    model: str = "gpt-4o-mini",
    bot: str = "orbit",
    platform: str = "telegram",
) -> TurnRecord:
    return TurnRecord(
        session_id=f"{platform}:{user}",
        user_text="question",
        reply_text="answer",
        started_at=started,
        latency_ms=latency,
        prompt_tokens=prompt,
        completion_tokens=completion,
        status=status,
        model=model,
        user_id=user,
        bot=bot,
        platform=platform,
    )


SEEDED = [
    # today
    turn(at(0, 0, 5), user="telegram:1", latency=400, prompt=1200, completion=300),
    turn(at(0, 0, 6), user="telegram:1", latency=900, prompt=1500, completion=250),
    turn(at(0, 0, 7), user="slack:U1", latency=2500, prompt=800, completion=100, platform="slack"),
    turn(
        at(0, 0, 8),
        user="slack:U2",
        latency=0,
        prompt=0,
        completion=0,
        status="blocked",
        model="",
        platform="slack",
    ),
    turn(
        at(0, 0, 9), user="telegram:2", latency=30000, prompt=900, completion=0, status="error", bot="default"
    ),
    # two days ago
    turn(
        at(2, 9),
        user="discord:7",
        latency=700,
        prompt=5000,
        completion=1000,
        model="gpt-4o",
        platform="discord",
    ),
    turn(
        at(2, 10),
        user="discord:7",
        latency=650,
        prompt=6000,
        completion=900,
        model="gpt-4o",
        platform="discord",
    ),
    turn(
        at(2, 11),
        user="telegram:1",
        latency=1100,
        prompt=2000,
        completion=400,
        model="local-llama",
        bot="default",
    ),
    # outside a 7-day window
    turn(at(9, 12), user="telegram:9", latency=5000, prompt=99999, completion=9999),
]


async def seed(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    for record in SEEDED:
        await store.record_turn(record)
    await store.close()


def expected_cells(turns: list[TurnRecord]) -> list[str]:
    """What the table should show for these turns, computed independently of the command."""

    def nearest_rank(values: list[float], p: int) -> str:
        ordered = sorted(values)
        return f"{ordered[math.ceil(p / 100 * len(ordered)) - 1]:,.0f}" if ordered else "-"

    latencies = [t.latency_ms for t in turns if t.model]
    cost = sum(
        (t.prompt_tokens * PRICES[t.model][0] + t.completion_tokens * PRICES[t.model][1]) / 1e6
        for t in turns
        if t.model in PRICES
    )
    return [
        str(len(turns)),
        str(len({t.user_id for t in turns})),
        str(sum(t.status in ("error", "interrupted") for t in turns)),
        str(sum(t.status == "blocked" for t in turns)),
        nearest_rank(latencies, 50),
        nearest_rank(latencies, 95),
        f"{sum(t.prompt_tokens for t in turns):,}",
        f"{sum(t.completion_tokens for t in turns):,}",
        f"{cost:,.4f}",
    ]


def tables(out: str) -> dict[str, dict[str, list[str]]]:
    """Each table of the output by its first header cell, as {row label: cells}."""
    found: dict[str, dict[str, list[str]]] = {}
    for block in out.split("\n\n"):
        lines = block.splitlines()
        if len(lines) > 2 and set(lines[1].replace(" ", "")) == {"-"}:
            rows = [re.split(r"\s{2,}", line.strip()) for line in lines[2:]]
            found[lines[0].split()[0]] = {row[0]: row[1:] for row in rows}
    return found


async def test_stats_per_day_platform_and_bot(tmp_path: Path) -> None:
    await seed(tmp_path / "data" / "chatbot.db")
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "CHATBOT_PRICES": PRICE_SETTING}
    code, out, err = await run_chatbot(["stats", "--days", "7"], b"", tmp_path, env)
    assert code == 0, err
    found = tables(out)
    recent = SEEDED[:-1]
    today, two_days_ago = date.today().isoformat(), (date.today() - timedelta(days=2)).isoformat()
    assert len(found["day"]) == 8  # seven days and the total
    assert found["day"][today] == expected_cells(SEEDED[:5])
    assert found["day"][two_days_ago] == expected_cells(SEEDED[5:8])
    assert found["day"][(date.today() - timedelta(days=1)).isoformat()][:5] == ["0", "0", "0", "0", "-"]
    assert found["day"]["all"] == expected_cells(recent)
    assert found["day"]["all"][:2] == ["8", "5"]
    for platform in ("telegram", "slack", "discord"):
        assert found["platform"][platform] == expected_cells([t for t in recent if t.platform == platform])
    for bot in ("orbit", "default"):
        assert found["bot"][bot] == expected_cells([t for t in recent if t.bot == bot])
    assert list(found["platform"]) == ["telegram", "discord", "slack", "all"]  # busiest first, then by name
    chart = out.split("Turns per day\n", 1)[1].splitlines()
    assert chart[-1].startswith(today) and chart[-1].endswith(" 5") and "█" * 40 in chart[-1]
    assert chart[-3].endswith(" 3") and "█" * 24 in chart[-3] and "█" * 25 not in chart[-3]


async def test_stats_for_one_bot_and_one_day(tmp_path: Path) -> None:
    await seed(tmp_path / "data" / "chatbot.db")
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "CHATBOT_PRICES": PRICE_SETTING}
    code, out, err = await run_chatbot(["stats", "--days", "1", "--bot", "orbit"], b"", tmp_path, env)
    assert code == 0, err
    found = tables(out)
    orbit_today = [t for t in SEEDED[:5] if t.bot == "orbit"]
    assert found["day"] == {
        date.today().isoformat(): expected_cells(orbit_today),
        "all": expected_cells(orbit_today),
    }
    assert list(found["bot"]) == ["orbit"]
    assert "Turns per day" not in out  # one bar is no chart


async def test_stats_with_nothing_to_show(tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    code, out, _ = await run_chatbot(["stats"], b"", tmp_path, env)
    assert code == 0 and "nothing has been recorded yet" in out
    await SQLiteStore(tmp_path / "data" / "chatbot.db").open()
    code, out, _ = await run_chatbot(["stats", "--bot", "orbit"], b"", tmp_path, env)
    assert code == 0 and out.strip().endswith("none recorded.")
    code, _out, err = await run_chatbot(["stats"], b"", tmp_path, {**env, "CHATBOT_PRICES": "gpt-4o=cheap"})
    assert code == 2 and "CHATBOT_PRICES" in err


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (10.0, 19.0, 20.0)
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None


def test_bar_chart_scales_to_the_largest() -> None:
    assert bar_chart([("a", 4), ("bb", 2), ("c", 0)], width=8).splitlines() == [
        "a  │████████ 4",
        "bb │████ 2",
        "c  │ 0",
    ]


async def test_a_reply_cut_at_the_length_limit_is_not_counted_as_blocked(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data" / "chatbot.db")
    await store.open()
    for minute, status in ((1, "ok"), (2, "length"), (3, "blocked")):
        await store.record_turn(
            turn(at(0, 0, minute), user="telegram:1", latency=500, prompt=100, completion=50, status=status)
        )
    await store.close()
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "CHATBOT_PRICES": PRICE_SETTING}
    code, out, err = await run_chatbot(["stats", "--days", "1"], b"", tmp_path, env)
    assert code == 0, err
    turns, _users, errors, blocked = tables(out)["day"]["all"][:4]
    assert (turns, errors, blocked) == ("3", "0", "1")  # the length-cut reply was answered, not blocked
