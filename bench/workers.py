"""Turns per second and reply latency with 1, 2 and 3 Telegram workers sharing the work queue.

Each run: a fresh PostgreSQL database for the queue, one SQLite file for the conversations, N
``chatbot run --platform telegram`` processes behind the test load balancer (tests/fakes/webhook_balancer.py),
a slow fake model (every reply takes about ``REPLY_SECONDS``), and C users who each send a message, wait
for the complete answer, and send the next. Latency is from the webhook POST to the final text on the fake
Telegram; turns/s is the number of answered turns over the run's wall time. Each worker runs at most
``CONCURRENCY`` replies at once, so one worker is the bottleneck when more users than that talk at once.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.report import Row, Section, median, ms, percentile
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.webhook_balancer import WebhookBalancer
from tests.support.services import POSTGRES_ADMIN_URL, database_url
from tests.support.workers import WEBHOOK_SECRET, Workers, conversation_db_env

CONCURRENCY = 8  # replies per worker at once
REPLY_SECONDS = 1.0
MARKER = "▌"


def slow_model(body: dict[str, Any]) -> Reply:
    question = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    text = f"answer to {question}: " + " ".join(f"w{i}" for i in range(30))
    return Reply(text=text, chunk_size=len(text) // 10 + 1, delay=REPLY_SECONDS / 10)


async def answered(telegram: FakeTelegram, chat_id: int, question: str) -> None:
    """Return once the complete answer to ``question`` shows in the chat (checked every 10 ms)."""
    while True:
        if any(
            m.text.startswith(f"answer to {question}:") and not m.text.endswith(MARKER)
            for m in telegram.bot_messages(chat_id)
        ):
            return
        await asyncio.sleep(0.01)


async def one_run(workers: int, users: int, turns: int) -> tuple[float, list[float]]:
    """``(turns per second, latencies)`` for ``users`` users x ``turns`` turns over ``workers`` workers."""
    name = f"chatbot_bench_{secrets.token_hex(4)}"
    admin = await psycopg.AsyncConnection.connect(POSTGRES_ADMIN_URL, autocommit=True)
    model, telegram = FakeOpenAI(), FakeTelegram()
    model.default = slow_model
    await model.start()
    await telegram.start()
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as folder:
            env = {**conversation_db_env(Path(folder)), "CHATBOT_QUEUE_CONCURRENCY": str(CONCURRENCY)}
            pool = Workers(Path(folder), env, model, telegram, database_url(name))
            try:
                await pool.start(workers)
                async with WebhookBalancer(pool.urls, WEBHOOK_SECRET) as lb:
                    latencies: list[float] = []

                    async def user(index: int) -> None:
                        chat = telegram.private_chat(9000 + index)
                        for turn in range(1, turns + 1):
                            text = f"u{index} t{turn}"
                            update = telegram.numbered(
                                {"message": telegram.user_message(chat, text, queue=False)}
                            )
                            sent = time.monotonic()
                            await lb.deliver(update)
                            await answered(telegram, chat["id"], text)
                            latencies.append(time.monotonic() - sent)

                    started = time.monotonic()
                    await asyncio.gather(*(user(i) for i in range(users)))
                    elapsed = time.monotonic() - started
            finally:
                await pool.stop()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        await telegram.stop()
        await model.stop()
    return len(latencies) / elapsed, latencies


async def run(quick: bool = False) -> Section:
    users, turns = (24, 2) if quick else (24, 5)
    title = "Workers: turns per second and reply latency over 1, 2 and 3 Telegram workers (work queue)"
    header = ("workers", "turns", "turns/s", "latency p50", "latency p95", "vs 1 worker")
    try:
        probe = await psycopg.AsyncConnection.connect(POSTGRES_ADMIN_URL, connect_timeout=3)
        await probe.close()
    except psycopg.OperationalError:
        return Section(title, header, [], notes=["Skipped: PostgreSQL is not running on 127.0.0.1:5432."])
    rows: list[Row] = []
    base = 0.0
    for count in (1, 2, 3):
        rate, latencies = await one_run(count, users, turns)
        base = base or rate
        rows.append(
            (
                str(count),
                str(len(latencies)),
                f"{rate:.1f}",
                ms(median(latencies)),
                ms(percentile(latencies, 0.95)),
                f"{rate / base:.2f}x",
            )
        )
    return Section(
        title,
        header,
        rows,
        notes=[
            f"{users} users x {turns} turns, each user waiting for the answer before the next message; a "
            f"slow fake model (about {REPLY_SECONDS:.0f} s a reply); each worker runs at most {CONCURRENCY} "
            "replies at once, so with one worker users queue for a slot; conversations in one SQLite file "
            "shared by the workers, the queue in PostgreSQL. Ratios are within this run.",
        ],
    )
