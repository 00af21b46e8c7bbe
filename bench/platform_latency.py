"""Added latency per platform: the bot's own delay between the model and what the user sees.

For each platform (see :mod:`bench.rigs`) the bot runs as ``chatbot run`` runs it, with the adapters' real
pacing defaults, against the loopback fakes; the fake model streams each reply at a fixed pace. Per reply:

- first-token lag: from the moment the model server sends the first token to the arrival at the platform
  of the first call that shows it (Telegram sendMessage, Slack chat.postMessage, Discord's message create,
  a terminal write);
- final-edit lag: from the last token sent to the arrival of the reply's last call (its final edit, or the
  last continuation message of a long reply).

The final-edit lag depends on where in the bot's edit cycle the stream ends (just after an edit, the final
one waits almost a whole interval), so each run's stream is stretched by a different fraction of the
platform's edit interval: the runs sample the whole cycle.

Targets (issue #7): first-token lag p95 under 20 ms; final-edit lag never above the platform's minimum edit
interval. The naive loop (an edit on every delta, :func:`bench.naive_baseline.naive_stream`) runs through
the same platform targets right after each reply, in its own conversation, for the side-by-side figures.
Pace enforcement is off here (calls are counted in :mod:`bench.platform_calls`), so nothing but the code
under test delays a call. Runs are sequential per platform; platforms run concurrently.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import Row, Section, median, ms, percentile
from bench.rigs import PLATFORMS, Rig, open_rig, run_naive, settle
from bench.streams import ReplyBook, Stream, words
from bench.timed_model import StreamTiming, TimedFakeOpenAI

FIRST_TOKEN_TARGET = 0.020

# 40 chunks 50 ms apart: a reply that fits one message, and a long one that needs continuation messages.
SHORT = Stream("short", chars=1_200, chunks=40, delay=0.05)
LONG = Stream("long", chars=8_000, chunks=40, delay=0.05)
# Discord's limit: a reply that fits one message only without the "still writing" marker (issue 19)
AT_LIMIT = Stream("at the limit", chars=2_000, chunks=40, delay=0.05)


@dataclass(frozen=True, slots=True)
class Plan:
    runs: int
    streams: tuple[Stream, ...]


FULL = Plan(runs=12, streams=(SHORT, AT_LIMIT, LONG))
QUICK = Plan(runs=3, streams=(SHORT, AT_LIMIT))
SMOKE = Plan(runs=2, streams=(Stream("smoke", chars=400, chunks=10, delay=0.03),))  # the test suite's


@dataclass
class Lags:
    """First-token and final-edit lags (seconds) of the replies of one kind on one platform."""

    first: list[float] = field(default_factory=list)
    final: list[float] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)  # messages each reply took
    failures: int = 0  # replies that never showed up
    incomplete: int = 0  # replies whose whole text never showed (the naive loop cuts at the length limit)

    def add(self, timing: StreamTiming | None, rig: Rig, place: int, expected: str) -> None:
        shown = [call for call in rig.calls(place) if call.ok]
        if timing is None or not timing.done or not shown:
            self.failures += 1
            return
        self.first.append(shown[0].at - timing.first_token)
        self.messages.append(max(1, sum(call.kind == "send" for call in shown)))
        if words(rig.shown(place)) != words(expected):
            self.incomplete += 1
            return
        self.final.append(shown[-1].at - timing.last_token)

    def final_summary(self, *, p95: bool) -> str:
        if not self.final:
            return "never: text cut at the limit" if self.incomplete else "n/a"
        parts = [median(self.final)] + ([percentile(self.final, 0.95)] if p95 else []) + [max(self.final)]
        cut = f" ({self.incomplete} cut)" if self.incomplete else ""
        return " / ".join(ms(value) for value in parts) + cut


async def measure_platform(
    name: str, model: TimedFakeOpenAI, book: ReplyBook, workdir: Path, plan: Plan
) -> list[tuple[Stream, Lags, Lags, float]]:
    """Ours and the naive loop on one platform: (stream, our lags, naive lags, min edit interval) each."""
    results = []
    places = itertools.count(1)
    async with open_rig(name, model.base_url, workdir) as rig:
        for stream in plan.streams:
            ours, naive = Lags(), Lags()
            for run in range(plan.runs):
                # Stretch each run's stream by a different part of one edit interval, so that across the
                # runs the reply ends at every point of the bot's edit cycle (the final-edit lag depends on it).
                paced = stream.longer(rig.min_edit_interval * run / plan.runs)
                key = f"{name} {stream.name} reply {run}: tell me about streaming"
                book[key] = paced.reply(seed=run)
                place = next(places)
                await rig.ask(place, key)
                await settle(rig, model, key)
                ours.add(model.timing(key), rig, place, book[key].text)

                naive_key = f"naive {key}"
                book[naive_key] = paced.reply(seed=run)
                place = next(places)
                await run_naive(rig, place, naive_key)
                naive.add(model.timing(naive_key), rig, place, book[naive_key].text)
            results.append((stream, ours, naive, rig.min_edit_interval))
    return results


def _verdict(ours: Lags, interval: float) -> str:
    first_ok = percentile(ours.first, 0.95) < FIRST_TOKEN_TARGET
    final_ok = max(ours.final, default=math.inf) <= max(interval, FIRST_TOKEN_TARGET)
    failures = ours.failures + ours.incomplete
    failed = f"; {failures} failed" if failures else ""
    first = "first met" if first_ok else f"first MISSED ({ms(percentile(ours.first, 0.95))})"
    worst = max(ours.final, default=math.nan)
    final = "final met" if final_ok else f"final MISSED ({worst:.2f} s > {interval:g} s)"
    return f"{first}, {final}{failed}"


def rows_for(name: str, results: list[tuple[Stream, Lags, Lags, float]]) -> list[Row]:
    rows: list[Row] = []
    for stream, ours, naive, interval in results:
        rows.append(
            (
                name,
                stream.describe(),
                str(len(ours.first)),
                "/".join(str(n) for n in sorted(set(ours.messages))),
                f"{ms(median(ours.first))} / {ms(percentile(ours.first, 0.95))}",
                f"{ms(median(naive.first))} / {ms(percentile(naive.first, 0.95))}",
                ours.final_summary(p95=True),
                naive.final_summary(p95=False),
                f"{interval:g} s" if interval else "none",
                _verdict(ours, interval),
            )
        )
    return rows


HEADER: Row = (
    "platform",
    "reply",
    "runs",
    "messages",
    "first token lag: median / p95",
    "naive: median / p95",
    "final edit lag: median / p95 / max",
    "naive: median / max",
    "min edit interval",
    "targets",
)


async def run(
    quick: bool = False, platforms: tuple[str, ...] = PLATFORMS, plan: Plan | None = None
) -> Section:
    """The added-latency table for ``platforms`` (all rows measured in this one run)."""
    plan = plan or (QUICK if quick else FULL)
    book = ReplyBook()
    model = TimedFakeOpenAI(default=book)
    await model.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            measured = await asyncio.gather(
                *(measure_platform(name, model, book, Path(tmp), plan) for name in platforms)
            )
    finally:
        await model.stop()
    rows = [row for name, results in zip(platforms, measured, strict=True) for row in rows_for(name, results)]
    return Section(
        title="Added latency per platform (item 1)",
        header=HEADER,
        rows=rows,
        notes=[
            "first token lag: the model server sends the first token -> the platform receives the call that "
            "shows it; final edit lag: last token sent -> the reply's last call arrives (ms). Target: first "
            "p95 < 20 ms, final never above the platform's minimum edit interval (the terminal: 20 ms). "
            "messages: how many messages a reply took on the platform.",
            "naive: the article's loop (an edit on every delta) through the same platform target, same "
            "stream, run right after ours in its own conversation; it cuts the text at the length limit.",
            f"Streams: {', '.join(s.describe() for s in plan.streams)}, each run stretched by a different "
            "fraction of the edit interval (the stream's end falls all over the edit cycle); the adapters' "
            "real pacing (Telegram 1 s private / 3 s groups after a burst of 3 a chat, Slack 1 s, Discord 1 s); no pace enforcement "
            "in the fakes; each Slack reply in a workspace of its own; platforms measured concurrently, "
            "runs one after another.",
        ],
    )
