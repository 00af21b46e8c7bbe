"""What the features cost per turn: the same turns with the features on and with the core only.

Both arms write the turn log to a file through the bot's own logging (redaction and length cap), and stream
each reply in 40 deltas, so the output guards run on every delta as they do against a real model. Each
turn is a different user (the per-user rate limit never refuses one). Rounds alternate the two arms, so
drift on a shared machine hits both alike; the ratio is of the median CPU times per turn. Target (issue 19, item 3): features
on cost at most 1.3x core only.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

from bench.core_overhead import sentence
from bench.instant_model import InstantModel
from bots.registry import get_bot
from bots.settings import Settings
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from core.log_setup import configure_logging
from core.sqlite_store import SQLiteStore
from core.tokens import TokenCounter
from features import FeatureContext, install_features

REPLY = "Boards, timelines and docs are in every plan; exports come as CSV or JSON files. " * 4
TARGET = 1.3


async def _turns_per_second(
    features: bool, turns: int, workdir: Path, counter: TokenCounter
) -> tuple[float, float]:
    """Turns a second and CPU milliseconds per turn, for ``turns`` turns with or without the features."""
    settings = Settings(_env_file=None, CHATBOT_MODEL="gpt-4", CHATBOT_CONTEXT_TOKENS=8192)  # type: ignore[call-arg]
    bot = get_bot("default").with_settings(settings)
    store = SQLiteStore(workdir / f"features-{features}-{time.monotonic_ns()}.db")
    await store.open()
    engine = ConversationEngine(bot, store, InstantModel(REPLY, chunks=40), counter)
    context = FeatureContext(settings, engine, data_root=workdir, secrets=["bench-secret-value-0123456789"])
    try:
        if features:
            await install_features(context)
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(turns):
            await engine.reply_text(IncomingMessage(f"bench:{i % 50}", sentence(i), f"bench:user{i}"))
        return turns / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / turns
    finally:
        for close in reversed(context.closers):
            await close()
        await store.close()


async def run(turns: int = 400, rounds: int = 5) -> list[tuple[str, ...]]:
    """Rows for the core section: turns/s with the features off and on, and the ratio of the medians."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    rates: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        configure_logging(
            level="INFO",
            log_file=workdir / "bot.log",
            console_level="CRITICAL",
            secrets=["bench-secret-value"],
        )
        try:
            counter = TokenCounter("gpt-4", allow_download=False)
            for _ in range(rounds):
                for features in (False, True):
                    rate, cpu_ms = await _turns_per_second(features, turns, workdir, counter)
                    rates[features].append(rate)
                    cpu[features].append(cpu_ms)
        finally:
            for handler in root.handlers:
                handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)
    core, featured = statistics.median(rates[False]), statistics.median(rates[True])
    core_cpu, featured_cpu = statistics.median(cpu[False]), statistics.median(cpu[True])
    ratio = featured_cpu / core_cpu
    verdict = "met" if ratio <= TARGET else f"missed by {ratio / TARGET - 1:.0%}"
    return [
        (
            "throughput, core only (turn log on, 40 deltas a reply)",
            f"{core:.0f} turns/s",
            "",
            f"{core_cpu:.2f} ms",
        ),
        ("throughput, features on (same turns)", f"{featured:.0f} turns/s", "", f"{featured_cpu:.2f} ms"),
        (f"CPU per turn, features on / core only (target <= {TARGET}x)", f"{ratio:.2f}x", verdict, ""),
    ]
