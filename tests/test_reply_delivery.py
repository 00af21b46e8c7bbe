"""Replies through the dispatcher, a real engine and the fake model server, onto targets that take time:
order of replies in one session, and what a platform failure mid-stream leaves behind."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from adapters.base import ReplyDispatcher
from core.clock import SystemClock
from core.conversation import ConversationEngine
from core.errors import PlatformError
from core.pacing import RateGate
from core.streaming import PlatformLimits
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said
from tests.support.recording_target import Call, RecordingTarget
from tests.support.waiting import eventually

LIMITS = PlatformLimits(max_chars=4096, min_edit_interval=0.05)


async def rows(engine: ConversationEngine, sql: str, *args: object) -> list[tuple[object, ...]]:
    store = engine.store
    return [tuple(r) for r in await store.db.execute_fetchall(sql, args)]  # type: ignore[attr-defined]


def inverted_pairs(order: list[int]) -> int:
    return sum(1 for a, b in itertools.combinations(order, 2) if a > b)


async def test_replies_in_one_session_reach_the_platform_in_arrival_order(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    def answer(body: dict[str, object]) -> Reply:
        text = str(body["messages"][-1]["content"])  # type: ignore[index]
        n = int(text.split()[-1])
        # a random-ish but deterministic pace per reply: later messages are often answered faster
        return Reply(
            text=f"answer {n} " + "word " * (5 + n * 7 % 11), chunk_size=6, delay=0.003 * (n * 5 % 7)
        )

    fake_model.default = answer
    clock = SystemClock()
    log: list[Call] = []
    chat_gate = RateGate(1, 0.1, clock)  # one call per 0.1 s in this chat, shared by its replies (Telegram's)
    limits = PlatformLimits(max_chars=4096, min_edit_interval=0.1)
    async with engine_for(fake_model.base_url, db_path) as engine:
        dispatcher = ReplyDispatcher(engine, clock)
        targets = [RecordingTarget(limits, clock, gate=chat_gate, latency=0.02, log=log) for _ in range(20)]
        tasks = []
        for n, t in enumerate(targets):
            tasks.append(dispatcher.submit(said("chat:1", f"message {n}"), t))
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        assert len(dispatcher.sessions) == 0, "a session's queue is forgotten once its replies are done"
    assert all(t.visible()[0].startswith(f"answer {n} ") for n, t in enumerate(targets))
    owner = {id(c): n for n, t in enumerate(targets) for c in t.calls}
    first_calls = [owner[id(c)] for c in log if c is targets[owner[id(c)]].changes()[0]]
    final_edits = [owner[id(c)] for c in log if c.final]
    assert inverted_pairs(first_calls) == 0, first_calls
    assert inverted_pairs(final_edits) == 0, final_edits
    assert first_calls == final_edits == list(range(20))


async def test_a_platform_failure_mid_stream_stops_the_model_frees_the_session_and_stores_it_incomplete(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    long_text = " ".join(f"word{i}" for i in range(400))
    fake_model.queue(Reply(text=long_text, chunk_size=10, delay=0.05))  # a 20-second stream
    clock = SystemClock()
    async with engine_for(fake_model.base_url, db_path) as engine:
        dispatcher = ReplyDispatcher(engine, clock)
        broken = RecordingTarget(LIMITS, clock, latency=0.02)
        broken.failures[("edit", 3)] = PlatformError("Telegram: Bad Gateway")
        started = time.monotonic()
        assert await dispatcher.submit(said("chat:1", "tell me a lot"), broken) is None
        await eventually(lambda: len(fake_model.request_times) == 1, within=5.0)
        assert fake_model.request_times[0][1] - started < 10.0, "the model stream must be closed, not read on"

        next_one = RecordingTarget(LIMITS, clock, latency=0.02)
        await asyncio.wait_for(dispatcher.submit(said("chat:1", "are you there?"), next_one), timeout=8)
        (answer,) = next_one.visible()
        assert answer.startswith("You said:") and answer.endswith("are you there?"), "the session is free"

        stored = await rows(
            engine, "SELECT role, content, complete FROM messages WHERE session_id = ? ORDER BY id", "chat:1"
        )
        turns = await rows(engine, "SELECT status FROM turns WHERE session_id = ? ORDER BY id", "chat:1")
    assert turns[0] == ("interrupted",)
    role, partial, complete = stored[1]
    assert role == "assistant" and complete == 0
    assert str(partial) and long_text.startswith(str(partial)) and partial != long_text
    seen = broken.visible()[0].removesuffix(" ▌")
    assert str(partial).startswith(seen), "the stored partial reply includes what the user saw"
