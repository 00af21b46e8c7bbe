"""Resident memory with 10,000 sessions that each had a conversation (run in a fresh interpreter)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path

from bench.core_overhead import make_engine, sentence
from core.incoming import IncomingMessage


def rss_mb() -> float:
    """Resident memory of this process now, in MB (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


async def memory_with_sessions(sessions: int = 10_000, turns: int = 3) -> tuple[str, ...]:
    """RSS after ``sessions`` conversations of ``turns`` turns each, 100 sessions at a time."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = await make_engine(Path(tmp) / "bench.db")
        before = rss_mb()

        async def converse(index: int) -> None:
            for i in range(turns):
                await engine.reply_text(IncomingMessage(f"mem:{index}", sentence(i), f"bench:{index}"))

        for start in range(0, sessions, 100):
            await asyncio.gather(*(converse(i) for i in range(start, min(sessions, start + 100))))
        after = rss_mb()
        await engine.store.close()
    return (
        f"memory, {sessions:,} sessions x {turns} turns",
        f"{after:.0f} MB RSS",
        f"engine ready: {before:.0f} MB",
        "",
    )


if __name__ == "__main__":
    logging.getLogger("chatbot.turns").setLevel(logging.WARNING)
    print(json.dumps(asyncio.run(memory_with_sessions())))
