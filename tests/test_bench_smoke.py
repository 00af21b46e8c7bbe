"""The platform benchmarks run end to end in their quickest mode, on one platform.

Only structure and deterministic facts are checked, never timings: the machines that run the tests are
shared and noisy. With pace enforcement on, the bot must get no 429 while the naive loop (an edit on every
delta, 25 deltas in half a second against Telegram's one call a second per chat) must get many.
"""

from __future__ import annotations

import pytest

from bench import http_path, platform_calls, platform_latency
from bench.report import Section

# PTB's own RetryAfter constructor reads its deprecated int property (the naive loop is refused a lot).
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")
PLATFORM = "telegram private"


def cells(section: Section) -> list[dict[str, str]]:
    assert all(len(row) == len(section.header) for row in section.rows)
    return [dict(zip(section.header, row, strict=True)) for row in section.rows]


async def test_latency_benchmark_reports_every_lag_for_the_bot_and_the_naive_loop() -> None:
    section = await platform_latency.run(platforms=(PLATFORM,), plan=platform_latency.SMOKE)

    assert section.header == platform_latency.HEADER
    [row] = cells(section)
    assert row["platform"] == PLATFORM
    assert row["runs"] == str(platform_latency.SMOKE.runs)
    assert row["messages"] == "1"
    for column in ("first token lag: median / p95", "naive: median / p95", "naive: median / max"):
        assert row[column].count(" ms") == row[column].count("/") + 1, (column, row[column])
    assert row["final edit lag: median / p95 / max"].count(" ms") == 3
    assert row["min edit interval"] == "1 s"
    assert "failed" not in row["targets"]
    assert section.markdown().startswith(f"## {section.title}\n\n| platform")


async def test_calls_benchmark_counts_429s_for_the_naive_loop_and_none_for_the_bot() -> None:
    section = await platform_calls.run(platforms=(PLATFORM,), streams=platform_calls.SCENARIOS_SMOKE)

    assert section.header == platform_calls.HEADER
    [row] = cells(section)
    assert row["platform"] == PLATFORM
    assert row["ours: 429s"] == "0"
    assert int(row["naive: 429s"]) > 0
    sends, edits = (int(n) for n in row["ours: sends + edits"].split(" + "))
    assert sends == 1 and sends + edits <= int(row["pace allows"])
    assert row["whole reply shown: ours / naive"].startswith("yes / ")
    assert row["target"] == "met"
    assert section.markdown().startswith(f"## {section.title}\n\n| platform")


async def test_http_path_benchmark_compares_both_parsers_through_a_server_in_another_process() -> None:
    section = await http_path.run(quick=True)

    assert section.header == http_path.HEADER
    rows = cells(section)
    assert len(rows) == 6
    for row in rows[:2]:
        assert row["SDK objects (before)"].endswith(" µs") and row["parsed SSE (now)"].endswith(" µs")
        assert row["ratio"].endswith("x cheaper")
    assert rows[2]["parsed SSE (now)"].endswith(" turns/s")
    assert "real HTTP" in section.notes[0]
