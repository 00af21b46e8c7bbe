"""Telegram over several worker processes sharing a work queue (CHATBOT_QUEUE_URL): order per chat across
workers, durable before the webhook's 200, a dead worker's reply finished by another, redeliveries
answered once. Real ``chatbot run`` processes, a real PostgreSQL queue, the fake Telegram and model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.sqlite_store import SQLiteStore
from core.streaming import WRITING_MARKER
from tests.fakes.model_images import image_parts, image_size
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.telegram_api import FakeTelegram, StoredMessage
from tests.fakes.webhook_balancer import WebhookBalancer
from tests.support.media_files import image_bytes
from tests.support.services import POSTGRES_ADMIN_URL
from tests.support.workers import WEBHOOK_SECRET, Workers, conversation_db_env

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

MARKER = WRITING_MARKER.strip()
SLOW_FIRST = " ".join(["First answer, slowly."] * 6)


async def eventually(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def workers(
    fake_model: FakeOpenAI,
    telegram: FakeTelegram,
    postgres_url: str,
    tmp_path: Path,
) -> AsyncIterator[Workers]:
    pool = Workers(tmp_path, conversation_db_env(tmp_path), fake_model, telegram, postgres_url)
    try:
        yield pool
    finally:
        await pool.stop()


async def balancer(pool: Workers) -> WebhookBalancer:
    return await WebhookBalancer(pool.urls, WEBHOOK_SECRET).__aenter__()


def replies(telegram: FakeTelegram, chat_id: int) -> list[StoredMessage]:
    return [m for m in telegram.bot_messages(chat_id)]


async def stored(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    store = SQLiteStore(conversation_db_env(tmp_path)["CHATBOT_DB"])
    await store.open()
    try:
        return [tuple(row) for row in await store.db.execute_fetchall(sql)]
    finally:
        await store.close()


async def test_two_messages_of_one_chat_on_two_workers_are_answered_in_arrival_order(
    workers: Workers, fake_model: FakeOpenAI, telegram: FakeTelegram, tmp_path: Path
) -> None:
    fake_model.queue(Reply(text=SLOW_FIRST, chunk_size=12, delay=0.1), Reply(text="Second answer."))
    await workers.start(2)
    chat = telegram.private_chat(501)
    lb = await balancer(workers)
    try:
        first = telegram.numbered({"message": telegram.user_message(chat, "first question", queue=False)})
        second = telegram.numbered({"message": telegram.user_message(chat, "second question", queue=False)})
        assert await lb.deliver(first, to=0) == 0
        assert await lb.deliver(second, to=1) == 1  # while the first reply still streams on worker 0
        await eventually(lambda: [m.text for m in replies(telegram, 501)][-1:] == ["Second answer."])
    finally:
        await lb.__aexit__()
    texts = [m.text for m in replies(telegram, 501)]
    assert texts == [SLOW_FIRST, "Second answer."]
    sent = fake_model.chat_requests[1]["messages"]
    contents = [m["content"] for m in sent]
    assert contents[-3:] == ["first question", SLOW_FIRST, "second question"]


async def test_a_redelivered_update_is_answered_once(
    workers: Workers, fake_model: FakeOpenAI, telegram: FakeTelegram, tmp_path: Path
) -> None:
    fake_model.queue(Reply(text="The one answer.", chunk_size=4, delay=0.05))
    await workers.start(2)
    chat = telegram.private_chat(502)
    update = telegram.numbered({"message": telegram.user_message(chat, "hello", queue=False)})
    async with WebhookBalancer(workers.urls, WEBHOOK_SECRET) as lb:
        # Telegram re-posts an update it got no 200 for (the answer lost on the way): to any worker
        assert await lb.post_to(0, update) == 200
        assert await lb.post_to(1, update) == 200
        assert await lb.post_to(0, update) == 200
        await eventually(lambda: [m.text for m in replies(telegram, 502)] == ["The one answer."])
        await asyncio.sleep(1.0)  # room for a wrong second answer to show
    assert [m.text for m in replies(telegram, 502)] == ["The one answer."]
    assert len(fake_model.chat_requests) == 1
    assert await stored(tmp_path, "SELECT role, content FROM messages ORDER BY id") == [
        ("user", "hello"),
        ("assistant", "The one answer."),
    ]


async def test_bad_webhook_requests_are_refused_and_nothing_is_queued(
    workers: Workers,
    telegram: FakeTelegram,
    postgres_url: str,
) -> None:
    await workers.start(1)
    chat = telegram.private_chat(503)
    update = telegram.numbered({"message": telegram.user_message(chat, "hi", queue=False)})
    async with WebhookBalancer(workers.urls, "wrong-secret") as forged:
        assert await forged.post_to(0, update) == 403
    async with WebhookBalancer(workers.urls, WEBHOOK_SECRET) as lb:
        assert await lb.post_to(0, {"not": "an update"}) == 400
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cursor = await conn.execute("SELECT count(*) FROM procrastinate_jobs")
        assert await cursor.fetchone() == (0,)


async def test_an_update_acknowledged_by_a_worker_that_dies_at_once_is_answered_by_another(
    workers: Workers,
    fake_model: FakeOpenAI,
    telegram: FakeTelegram,
    postgres_url: str,
) -> None:
    hold = asyncio.Event()  # the model thinks until released: the job cannot have finished before the kill
    fake_model.default = lambda body: Reply(text="Answered after all.", hold=hold)
    await workers.start(2)
    chat = telegram.private_chat(504)
    update = telegram.numbered({"message": telegram.user_message(chat, "are you there?", queue=False)})
    async with WebhookBalancer(workers.urls, WEBHOOK_SECRET) as lb:
        assert await lb.post_to(0, update) == 200
    # durable before ack: when the 200 arrived, the job was committed in PostgreSQL
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cursor = await conn.execute("SELECT count(*) FROM procrastinate_jobs")
        assert await cursor.fetchone() == (1,)
    await workers.kill(0)
    hold.set()
    await eventually(lambda: [m.text for m in replies(telegram, 504)] == ["Answered after all."], within=60)
    assert MARKER not in replies(telegram, 504)[0].text


async def test_a_worker_killed_mid_reply_has_its_message_finished_by_another_worker(
    workers: Workers, fake_model: FakeOpenAI, telegram: FakeTelegram, tmp_path: Path
) -> None:
    long = " ".join(f"word{i}" for i in range(120))
    fake_model.queue(
        Reply(text=long, chunk_size=10, delay=0.25),  # about 20 s on worker 0: killed while it streams
        Reply(text=long, chunk_size=40),  # the takeover's generation, on worker 1
        Reply(text="Still here."),
    )
    await workers.start(1)  # alone, so worker 0 is the one that takes the job
    chat = telegram.private_chat(505)
    update = telegram.numbered({"message": telegram.user_message(chat, "tell me a lot", queue=False)})

    def previewed() -> bool:
        sent = replies(telegram, 505)
        return bool(sent) and len(sent[0].versions) >= 2 and sent[0].text.endswith(MARKER)

    async with WebhookBalancer(workers.urls, WEBHOOK_SECRET) as lb:
        assert await lb.post_to(0, update) == 200
        await eventually(previewed)
    await workers.start(1)  # worker 1 joins while worker 0 streams
    assert replies(telegram, 505)[0].text.endswith(MARKER), "still streaming when worker 1 is up"
    async with WebhookBalancer(workers.urls, WEBHOOK_SECRET) as lb:
        await workers.kill(0)
        killed_at = time.monotonic()
        (cut,) = replies(telegram, 505)
        await eventually(lambda: replies(telegram, 505)[0].text == long, within=60)
        took = time.monotonic() - killed_at
        (finished,) = replies(telegram, 505)
        assert finished.message_id == cut.message_id, "the same message is finished, not a second one"

        nxt = telegram.numbered({"message": telegram.user_message(chat, "and now?", queue=False)})
        await lb.deliver(nxt)
        await eventually(lambda: [m.text for m in replies(telegram, 505)] == [long, "Still here."])
    print(f"\ntakeover: the dead worker's message was finished {took:.1f} s after the kill")
    assert await stored(tmp_path, "SELECT role, content, complete FROM messages ORDER BY id") == [
        ("user", "tell me a lot", 1),
        ("assistant", long, 1),
        ("user", "and now?", 1),
        ("assistant", "Still here.", 1),
    ]
    assert await stored(tmp_path, "SELECT count(*) FROM replies_in_flight") == [(0,)]
    assert [status for (status,) in await stored(tmp_path, "SELECT status FROM turns ORDER BY id")] == [
        "ok",
        "ok",
    ]


async def test_while_the_queue_database_is_away_updates_are_refused_and_answered_when_redelivered(
    workers: Workers, fake_model: FakeOpenAI, telegram: FakeTelegram, postgres_url: str
) -> None:
    fake_model.queue("Back again.")
    await workers.start(1)
    chat = telegram.private_chat(506)
    update = telegram.numbered({"message": telegram.user_message(chat, "anyone?", queue=False)})
    name = postgres_url.rpartition("/")[2]
    async with await psycopg.AsyncConnection.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            async with WebhookBalancer(workers.urls, WEBHOOK_SECRET) as lb:
                status = await lb.post_to(0, update)
            assert status == 503, "not acknowledged: Telegram keeps the update and posts it again"
            assert replies(telegram, 506) == []
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    async with WebhookBalancer(workers.urls, WEBHOOK_SECRET) as lb:
        await lb.deliver(update)  # Telegram's next attempt
        await eventually(lambda: [m.text for m in replies(telegram, 506)] == ["Back again."])
        nxt = telegram.numbered({"message": telegram.user_message(chat, "still there?", queue=False)})
        await lb.deliver(nxt)
        await eventually(lambda: len(replies(telegram, 506)) == 2)
    assert MARKER not in replies(telegram, 506)[1].text


async def test_the_queue_library_does_not_log_job_payloads(
    workers: Workers, fake_model: FakeOpenAI, telegram: FakeTelegram
) -> None:
    fake_model.queue(Reply(text="Noted."))
    await workers.start(1)
    chat = telegram.private_chat(509)
    async with WebhookBalancer(workers.urls, WEBHOOK_SECRET) as lb:
        update = telegram.numbered(
            {"message": telegram.user_message(chat, "my secret plan xyzzy", queue=False)}
        )
        await lb.deliver(update)
        await eventually(lambda: [m.text for m in replies(telegram, 509)] == ["Noted."])
    await workers.stop()
    logs = [w.log.read_text(errors="replace") for w in workers.workers]
    logs += [path.read_text(errors="replace") for path in workers.cwd.rglob("*.log")]
    assert logs and any("telegram" in log for log in logs)
    # procrastinate logs each job's arguments at INFO, with the user's words in them (the turn log is ours:
    # what it records is CHATBOT_LOG_LEVEL's business, docs/monitoring.md)
    assert all("payload=" not in log for log in logs)


async def test_a_photo_sent_through_the_queue_reaches_the_model_from_another_worker(
    workers: Workers, fake_model: FakeOpenAI, telegram: FakeTelegram
) -> None:
    # the job carries the file's Telegram description (file_id...), never bytes or a closure: the worker
    # that runs it fetches the file itself (getFile and the file endpoint)
    fake_model.queue(Reply(text="That is a stack trace."))
    await workers.start(2)
    chat = telegram.private_chat(510)
    photo = telegram.files.photo(image_bytes(800, 600), 800, 600)
    message = telegram.user_message(
        chat, None, extra={"photo": photo, "caption": "what is this?"}, queue=False
    )
    async with WebhookBalancer(workers.urls, WEBHOOK_SECRET) as lb:
        assert await lb.post_to(0, telegram.numbered({"message": message})) == 200
        await eventually(lambda: [m.text for m in replies(telegram, 510)] == ["That is a stack trace."])
    parts = image_parts(fake_model.chat_requests[-1])
    assert len(parts) == 1 and image_size(parts[0]) == (800, 600)
    assert telegram.files.downloads == ["photos/file_2.jpg"]
