"""The cost of one turn on the PostgreSQL store against the SQLite store, side by side in one run.

The same engine (every core step, an instant in-process model, the 8k window) runs turns on each store in
interleaved rounds, each turn in its own session with 10 messages stored, so drift on a shared machine hits
both alike. PostgreSQL is the loopback server of the project's machines, in a scratch database dropped
afterwards; a turn's statements cross TCP to it, where SQLite's run in a thread of the process. CPU per turn
is this process's only (the server's is not counted). Without a server the section says so.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.core_overhead import make_engine, pct, seed, sentence
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from core.postgres_store import PostgresStore
from tests.support.services import PG_HOST, PG_PORT, scratch_database

HEADER = ("store", "turn: median", "p95", "CPU per turn (this process)")


async def _turns(engine: ConversationEngine, sessions: list[str]) -> tuple[list[float], float]:
    wall: list[float] = []
    cpu = time.process_time()
    for i, session in enumerate(sessions):
        start = time.perf_counter()
        await engine.reply_text(IncomingMessage(session, sentence(300_000 + i), "bench:user"))
        wall.append((time.perf_counter() - start) * 1000)
    return wall, (time.process_time() - cpu) * 1000 / len(sessions)


async def run(quick: bool = False) -> list[tuple[str, ...]]:
    turns, rounds = (90, 3) if quick else (300, 5)
    try:
        async with scratch_database() as url:
            return await _compare(url, turns, rounds)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return [(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: {exc}", "", "", "")]


async def _compare(url: str, turns: int, rounds: int) -> list[tuple[str, ...]]:
    with tempfile.TemporaryDirectory() as tmp:
        engines = {
            "SQLite": await make_engine(Path(tmp) / "bench.db"),
            "PostgreSQL": await make_engine(Path(tmp) / "unused.db", store=PostgresStore(url)),
        }
        sessions = {name: [f"bench:{name}:{i}" for i in range(turns)] for name in engines}
        wall: dict[str, list[float]] = {name: [] for name in engines}
        cpu: dict[str, list[float]] = {name: [] for name in engines}
        try:
            for name, engine in engines.items():
                for session in sessions[name]:
                    await seed(engine, session, 10)
            per_round = turns // rounds
            for r in range(rounds):
                for name, engine in engines.items():
                    times, per_turn = await _turns(
                        engine, sessions[name][r * per_round : (r + 1) * per_round]
                    )
                    wall[name] += times
                    cpu[name].append(per_turn)
        finally:
            for engine in engines.values():
                await engine.store.close()
    rows: list[tuple[str, ...]] = [
        (
            f"{name}, a turn with 10 messages stored",
            f"{statistics.median(wall[name]):.2f} ms",
            f"{pct(wall[name], 0.95):.2f} ms",
            f"{statistics.median(cpu[name]):.2f} ms",
        )
        for name in engines
    ]
    ratio = statistics.median(wall["PostgreSQL"]) / statistics.median(wall["SQLite"])
    cpu_ratio = statistics.median(cpu["PostgreSQL"]) / statistics.median(cpu["SQLite"])
    rows.append(("ratio PostgreSQL / SQLite (median)", f"{ratio:.2f}x", "", f"{cpu_ratio:.2f}x"))
    return rows
