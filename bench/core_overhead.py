"""A turn's core overhead (store, token counting, trimming, logging) with an instant model.

Measures per-turn wall and CPU time for sessions with 10, 1,000 and 10,000 stored messages, side by side in
one run, at 8k, 32k and 128k-token windows (issue 19 target 2), and throughput with 1, 100 and 1,000
concurrent sessions (8k window). Every row runs in process (the store, the engine, an instant model). From
about 200 messages (8k) to 3,000 (128k) on the prompt is full and the turn's work stops growing: 10 vs
10,000 compares a nearly empty prompt with a full one, 1,000 vs 10,000 shows that a longer history itself
costs nothing.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.instant_model import InstantModel
from bench.naive_baseline import NaiveBot
from bots.registry import get_bot
from bots.settings import Settings
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from core.sqlite_store import SQLiteStore
from core.store import ConversationStore
from core.tokens import TokenCounter

WORDS = "orbit plan price team board task sprint invoice login export calendar sync".split()


def sentence(i: int, n: int = 25) -> str:
    return f"message {i}: " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n))


WINDOWS = {"8k": 8_192, "32k": 32_000, "128k": 128_000}


async def make_engine(
    db: Path, window: int = 8_192, *, store: ConversationStore | None = None
) -> ConversationEngine:
    """An engine on the instant model and ``store`` (default: SQLite at ``db``), opened here."""
    settings = Settings(_env_file=None, CHATBOT_MODEL="gpt-4", CHATBOT_CONTEXT_TOKENS=window)  # type: ignore[call-arg]
    bot = get_bot("default").with_settings(settings)
    store = store if store is not None else SQLiteStore(db)
    await store.open()
    counter = TokenCounter(bot.model_name, allow_download=False)
    return ConversationEngine(bot, store, InstantModel(), counter)


async def seed(engine: ConversationEngine, session: str, messages: int) -> None:
    for i in range(messages):
        text = sentence(i)
        role = "user" if i % 2 == 0 else "assistant"
        await engine.store.add_message(session, role, text, engine.counter.message_tokens(text))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def turn_times(engine: ConversationEngine, sessions: list[str]) -> tuple[list[float], float]:
    """One turn in each of ``sessions``: per-turn wall times (ms) and mean CPU time per turn (ms)."""
    wall: list[float] = []
    cpu_start = time.process_time()
    for i, session in enumerate(sessions):
        start = time.perf_counter()
        await engine.reply_text(IncomingMessage(session, sentence(100_000 + i), "bench:user"))
        wall.append((time.perf_counter() - start) * 1000)
    return wall, (time.process_time() - cpu_start) * 1000 / len(sessions)


async def history_growth(turns: int = 300, rounds: int = 3) -> list[tuple[str, ...]]:
    """:func:`window_growth` at each of :data:`WINDOWS`, then the naive loop."""
    rows: list[tuple[str, ...]] = []
    for label, window in WINDOWS.items():
        rows += await window_growth(label, window, turns, rounds)
    rows += await naive_growth()
    return rows


async def window_growth(label: str, window: int, turns: int, rounds: int) -> list[tuple[str, ...]]:
    """Turns against 10 stored messages (a fresh session each turn), and against 1,000 and 10,000."""
    per_round = turns // rounds
    small_sessions = [f"bench:small:{i}" for i in range(turns)]
    sizes = {"10": 10, "1,000": 1_000, "10,000": 10_000}
    wall: dict[str, list[float]] = {name: [] for name in sizes}
    cpu: dict[str, list[float]] = {name: [] for name in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        engine = await make_engine(Path(tmp) / "bench.db", window)
        for session in small_sessions:
            await seed(engine, session, 10)
        for size in sizes.values():
            if size > 10:
                await seed(engine, f"bench:{size}", size)
        for r in range(rounds):  # interleave so drift on a shared machine hits every size alike
            for name, size in sizes.items():
                if size == 10:
                    sessions = small_sessions[r * per_round : (r + 1) * per_round]
                else:
                    sessions = [f"bench:{size}"] * per_round
                times, per_turn_cpu = await turn_times(engine, sessions)
                wall[name] += times
                cpu[name].append(per_turn_cpu)
        await engine.store.close()
    rows: list[tuple[str, ...]] = []
    for name in sizes:
        rows.append(
            (
                f"turn overhead, {label} window, {name} messages stored",
                f"{statistics.median(wall[name]):.2f} ms",
                f"{pct(wall[name], 0.95):.2f} ms",
                f"{statistics.median(cpu[name]):.2f} ms",
            )
        )
    for a, b in (("10", "10,000"), ("1,000", "10,000")):
        ratio = statistics.median(wall[b]) / statistics.median(wall[a])
        rows.append((f"ratio {b} / {a} at {label} (median)", f"{ratio:.2f}x", "", ""))
    return rows


async def naive_growth(turns: int = 30) -> list[tuple[str, ...]]:
    """The article's naive loop on the same store and model: whole history, re-tokenised, every turn."""
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = await make_engine(Path(tmp) / "bench.db")
        naive = NaiveBot(engine.bot, engine.store, engine.model, engine.counter)  # type: ignore[arg-type]
        medians = {}
        for size in (10, 10_000):
            session = f"naive:{size}"
            await seed(engine, session, size)
            times = []
            for i in range(turns):
                start = time.perf_counter()
                await naive.reply_text(session, sentence(200_000 + i))
                times.append((time.perf_counter() - start) * 1000)
            medians[size] = statistics.median(times)
            rows.append(
                (
                    f"naive loop, {size:,} messages stored",
                    f"{medians[size]:.2f} ms",
                    f"{pct(times, 0.95):.2f} ms",
                    "",
                )
            )
        await engine.store.close()
    rows.append(("naive ratio 10,000 / 10 (median)", f"{medians[10_000] / medians[10]:.1f}x", "", ""))
    return rows


async def throughput(concurrency: int, turns_each: int) -> tuple[str, ...]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = await make_engine(Path(tmp) / "bench.db")

        async def session(index: int) -> None:
            for i in range(turns_each):
                await engine.reply_text(IncomingMessage(f"bench:{index}", sentence(i), "bench:user"))

        cpu_start, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(session(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        await engine.store.close()
    total = concurrency * turns_each
    return (
        f"throughput, {concurrency} concurrent sessions",
        f"{total / elapsed:.0f} turns/s",
        "",
        f"{cpu * 1000 / total:.2f} ms",
    )


async def run() -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    header = ("measure", "median", "p95", "CPU per turn")
    rows = await history_growth()
    for concurrency, turns in ((1, 300), (100, 5), (1000, 1)):
        rows.append(await throughput(concurrency, turns))
    rows.append(await memory_in_fresh_process())
    return header, rows


async def memory_in_fresh_process() -> tuple[str, ...]:
    """Run :mod:`bench.memory` in its own interpreter, so earlier benchmarks do not inflate its RSS."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.memory", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return tuple(json.loads(out))
