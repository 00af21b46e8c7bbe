"""Platform calls per reply against reply length and stream duration, with the platforms' real pace enforced.

Each platform fake runs with ``enforce_pace=True``: a send or edit that comes faster than the platform allows
(../shared/PLATFORMS.md) is answered 429 with ``retry_after`` and not carried out. Per scenario, on a fresh
fake, the bot and the naive loop (:func:`bench.naive_baseline.naive_stream`, an edit on every delta,
carrying on after a refusal) answer the same stream at the same time, each in its own conversation, which
has its own chat or channel budget. Slack's chat.update budget is the whole workspace's, so there the naive
loop gets a fake workspace of its own. The model streams in deltas of about 20 characters, closer to a real
model's token-sized deltas than the latency table's 40 chunks.

Targets (issue #7): zero rate-limit answers for the bot, and no more calls than the pace allows.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.report import Row, Section
from bench.rigs import PACED_PLATFORMS, PlatformCall, Rig, open_rig, run_naive, settle
from bench.streams import ReplyBook, Stream, words
from bench.timed_model import StreamTiming, TimedFakeOpenAI

SCENARIOS_FULL = (
    Stream("1k/2s", chars=1_000, chunks=50, delay=0.04),
    Stream("4k/10s", chars=4_000, chunks=200, delay=0.05),
    Stream("10k/10s", chars=10_000, chunks=400, delay=0.025),
    Stream("6k/75s", chars=6_000, chunks=300, delay=0.25),  # longer than the per-minute windows
)
NAIVE_GRACE = 6.0  # seconds the naive loop may run past the end of the stream before it counts as behind
SCENARIOS_QUICK = (
    Stream("1k/2s", chars=1_000, chunks=50, delay=0.04),
    Stream("10k/5s", chars=10_000, chunks=250, delay=0.02),
)
SCENARIOS_SMOKE = (Stream("smoke", chars=500, chunks=25, delay=0.02),)  # the test suite's


@dataclass
class Count:
    """What one reply cost on the platform, and whether the user ended up with the whole text."""

    sends: int
    edits: int
    refused: int  # answered 429
    errors: int  # answered with another error
    span: float  # seconds from the first call to the last
    final_lag: float  # seconds from the model's last token to the last call that went through
    complete: bool
    stopped: bool = False  # the naive loop was still behind when we stopped it

    @property
    def calls(self) -> int:
        return self.sends + self.edits + self.refused + self.errors


def count(
    rig: Rig, place: int, expected: str, timing: StreamTiming | None, *, stopped: bool = False
) -> Count:
    calls: list[PlatformCall] = rig.calls(place)
    done = [c for c in calls if c.ok]
    return Count(
        sends=sum(c.kind == "send" for c in done),
        edits=sum(c.kind == "edit" for c in done),
        refused=sum(c.status == 429 for c in calls),
        errors=sum(not c.ok and c.status != 429 for c in calls),
        span=(done[-1].at - done[0].at) if done else 0.0,
        final_lag=(done[-1].at - timing.last_token) if done and timing else math.nan,
        complete=words(rig.shown(place)) == words(expected),
        stopped=stopped,
    )


async def naive_until(deadline: float, rig: Rig, place: int, key: str) -> bool:
    """Run the naive loop, stopping it at ``deadline`` (``time.monotonic()``); whether it had to be stopped.

    A naive loop on Discord crawls: discord.py sleeps out every 429 and retries, one edit a second, long after
    the model has finished. It gets a few seconds after the stream ends, then counts as behind.
    """
    try:
        await asyncio.wait_for(run_naive(rig, place, key), timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        return True
    return False


@dataclass
class Outcome:
    platform: str
    stream: Stream
    seconds: float  # how long the model actually streamed
    ours: Count
    naive: Count
    allowed: int  # most calls the pace lets through in our reply's span


async def scenario(
    name: str, stream: Stream, model: TimedFakeOpenAI, book: ReplyBook, workdir: Path, seed: int
) -> Outcome:
    """One reply by the bot and one by the naive loop, at the same time, with their own pace budgets."""
    key = f"{name} {stream.name}: please write at length"
    naive_key = f"naive {key}"
    book[key] = book[naive_key] = stream.reply(seed)
    async with AsyncExitStack() as stack:
        rig = await stack.enter_async_context(open_rig(name, model.base_url, workdir, enforce_pace=True))
        naive_rig, naive_place = rig, 2  # another chat or channel: budgets per conversation are its own
        if rig.shared_budget:  # Slack's workspace-wide budget: the naive loop gets a workspace of its own
            naive_rig = await stack.enter_async_context(
                open_rig(name, model.base_url, workdir, enforce_pace=True)
            )
            naive_place = 1
        await rig.ask(1, key)
        naive_deadline = time.monotonic() + stream.seconds + NAIVE_GRACE
        _, stopped = await asyncio.gather(
            settle(rig, model, key, within=stream.seconds + 120.0),
            naive_until(naive_deadline, naive_rig, naive_place, naive_key),
        )
        expected = book[key].text
        timing, naive_timing = model.timing(key), model.timing(naive_key)
        ours = count(rig, 1, expected, timing)
        naive = count(naive_rig, naive_place, expected, naive_timing, stopped=stopped)
        allowed = rig.pace_allows(ours.span)
    return Outcome(name, stream, timing.duration if timing else 0.0, ours, naive, allowed)


async def measure_platform(
    name: str, streams: tuple[Stream, ...], model: TimedFakeOpenAI, book: ReplyBook, workdir: Path
) -> list[Outcome]:
    return [await scenario(name, stream, model, book, workdir, seed) for seed, stream in enumerate(streams)]


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _lag(count: Count) -> str:
    if count.stopped:
        return f"still behind {NAIVE_GRACE:g} s after the stream"
    return f"{count.final_lag:.2f} s" if count.complete else "never: the end was refused"


def row(outcome: Outcome) -> Row:
    ours, naive = outcome.ours, outcome.naive
    ours_calls = ours.sends + ours.edits
    met = ours.refused == 0 and ours.errors == 0 and ours_calls <= outcome.allowed and ours.complete
    return (
        outcome.platform,
        f"{outcome.stream.chars:,} chars, {outcome.stream.chunks} deltas / {outcome.seconds:.1f} s",
        f"{ours.sends} + {ours.edits}",
        str(ours.refused),
        str(outcome.allowed),
        f"{naive.sends} + {naive.edits}",
        str(naive.refused),
        str(naive.errors),
        f"{naive.calls / max(1, ours_calls):.0f}x",
        f"{_lag(ours)} / {_lag(naive)}",
        f"{_yes(ours.complete)} / {_yes(naive.complete)}",
        "met" if met else "MISSED",
    )


HEADER: Row = (
    "platform",
    "reply",
    "ours: sends + edits",
    "ours: 429s",
    "pace allows",
    "naive: sends + edits done",
    "naive: 429s",
    "naive: other errors",
    "naive / ours calls",
    "last call after last token: ours / naive",
    "whole reply shown: ours / naive",
    "target",
)


async def run(
    quick: bool = False,
    platforms: tuple[str, ...] = PACED_PLATFORMS,
    streams: tuple[Stream, ...] | None = None,
) -> Section:
    """The platform-calls table for ``platforms``: every row measured in this one run."""
    streams = streams or (SCENARIOS_QUICK if quick else SCENARIOS_FULL)
    book = ReplyBook()
    model = TimedFakeOpenAI(default=book)
    await model.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            measured = await asyncio.gather(
                *(measure_platform(name, streams, model, book, Path(tmp)) for name in platforms)
            )
    finally:
        await model.stop()
    return Section(
        title="Platform calls per reply, pace enforced (items 2 and 6)",
        header=HEADER,
        rows=[row(outcome) for outcomes in measured for outcome in outcomes],
        notes=[
            "The fakes enforce each platform's pace and answer 429 (with retry_after) to a call that comes "
            "too fast: Telegram 1 send or edit a second per chat, 20 a minute per group, 30 a second in all; "
            "Slack chat.update 50 a minute per workspace, chat.postMessage 1 a second per channel; Discord 5 "
            "creates or edits per 5 s per channel (discord.py sleeps out each 429 and retries by itself).",
            "pace allows: the most sends and edits the pace accepts in one conversation over the span of our "
            "reply's calls. naive: the article's loop (an edit on every delta, carrying on after a refusal), "
            "same stream at the same time in another conversation of the same fake (Slack: a fake workspace "
            f"of its own); stopped if still behind {NAIVE_GRACE:g} s after the stream. naive / ours: every call "
            "the naive loop made (refused and retried ones too) per call of ours.",
            "Target: no 429s for the bot, no more calls than the pace allows, and the whole reply shown.",
        ],
    )
