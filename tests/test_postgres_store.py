"""The PostgreSQL store with several workers on one database: migrations started at once, each worker's
cached windows right after another worker's writes, a connection dropped under a running engine, and a
server that is not there. (The store contract suite runs on it too: tests/store_contract.)

Each test has a database of its own on the loopback server (tests/support/services.py): skipped without
one, failed under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bench import store_cost
from core.conversation import ConversationEngine
from core.errors import ConfigError
from core.postgres_connection import SharedPool
from core.postgres_migrations import PG_SCHEMA_VERSION
from core.postgres_store import PostgresStore
from core.storage_url import storage_for
from core.store import TurnRecord
from tests.fakes.openai_server import FakeOpenAI
from tests.support.engines import engine_for, said
from tests.support.services import fresh_postgres_database
from tests.test_recent_window import SESSION, SMALL_WINDOW, question, scripted

ROOT = Path(__file__).resolve().parent.parent
OPEN_AND_CLOSE = """
import asyncio, sys
from core.postgres_store import PostgresStore

async def main():
    store = PostgresStore(sys.argv[1])
    await store.open()
    await store.add_message("started", "user", sys.argv[2], 1)
    await store.close()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_workers_starting_at_once_on_a_fresh_database_all_start_and_migrate_it_once(
    postgres_url: str,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            OPEN_AND_CLOSE,
            postgres_url,
            f"worker {i}",
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(4)
    ]
    # and two more pools in this process, racing them
    in_process = [PostgresStore(postgres_url) for _ in range(2)]
    await asyncio.gather(*(store.open() for store in in_process))
    results = [await worker.communicate() for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * 4, [err.decode() for _, err in results]
    try:
        connection = await asyncpg.connect(postgres_url)
        try:
            versions = [r[0] for r in await connection.fetch("SELECT version FROM schema_version ORDER BY 1")]
            started = await connection.fetchval("SELECT count(*) FROM messages WHERE session_id = 'started'")
        finally:
            await connection.close()
        assert versions == list(range(1, PG_SCHEMA_VERSION + 1))
        assert started == 4
    finally:
        for store in in_process:
            await store.close()


async def test_a_message_one_worker_stores_is_in_the_other_workers_next_window(postgres_url: str) -> None:
    one, two = PostgresStore(postgres_url), PostgresStore(postgres_url)
    await one.open()
    await two.open()
    try:
        await one.add_message("s", "user", "my name is Ada", 3, user_id="ada")
        await one.add_message("s", "assistant", "hello Ada", 2)
        assert [m.content for m in await two.recent_messages("s")] == ["hello Ada", "my name is Ada"]
        assert [m.content for m in await one.recent_messages("s")] == ["hello Ada", "my name is Ada"]

        question_id = await two.add_message("s", "user", "what is my name?", 4, user_id="ada", complete=False)
        record = TurnRecord("s", "what is my name?", "Ada", 0.0, 1.0, 5, 2, "ok", "m", user_id="ada")
        await two.save_reply("s", "Ada", 1, complete=True, turn=record, question_id=question_id)
        expected = ["Ada", "what is my name?", "hello Ada", "my name is Ada"]
        assert [m.content for m in await one.recent_messages("s")] == expected  # one's copy was stale
        assert [m.content for m in await two.recent_messages("s")] == expected  # two's followed its writes
        await one.add_message("s", "user", "thanks", 1, user_id="ada")
        assert [m.content for m in await two.recent_messages("s", limit=2)] == ["thanks", "Ada"]

        await two.reset("s")
        assert await one.recent_messages("s") == []
        await one.add_message("s", "user", "a new start", 3, user_id="ada")
        assert [m.content for m in await two.recent_messages("s")] == ["a new start"]
        await one.forget_user("ada")
        assert await two.recent_messages("s") == []
        await two.add_message("t", "user", "old", 1)
        assert [m.content for m in await one.recent_messages("t")] == ["old"]
        await two.delete_older_than(float("inf"))
        assert await one.recent_messages("t") == []
    finally:
        await one.close()
        await two.close()


async def open_engines(
    stack: AsyncExitStack, fake_model: FakeOpenAI, url: str, count: int, *, cached: bool, tmp_path: Path
) -> list[ConversationEngine]:
    """``count`` engines on one database, each with its own store and pool (a worker's worth)."""
    engines = []
    with pytest.MonkeyPatch.context() as patch:
        if not cached:
            patch.setattr(
                "core.storage_url.PostgresStore", functools.partial(PostgresStore, cache_windows=False)
            )
        for _ in range(count):
            engine = await stack.enter_async_context(
                engine_for(
                    fake_model.base_url, tmp_path / "unused.db", CHATBOT_DATABASE_URL=url, **SMALL_WINDOW
                )
            )
            assert isinstance(engine.store, PostgresStore) and (engine.store._windows is not None) == cached
            engines.append(engine)
    return engines


async def test_two_workers_taking_turns_give_the_model_the_same_prompts_as_uncached_reads(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    """Turns alternate between two workers on one database, with failed turns and a /reset: each worker's
    cached windows give the same prompts as reading every window from the database."""
    fake_model.default = scripted
    async with AsyncExitStack() as stack:
        cached_url = await stack.enter_async_context(fresh_postgres_database())
        reference_url = await stack.enter_async_context(fresh_postgres_database())
        cached = await open_engines(stack, fake_model, cached_url, 2, cached=True, tmp_path=tmp_path)
        uncached = await open_engines(stack, fake_model, reference_url, 2, cached=False, tmp_path=tmp_path)
        got: Any = None
        for i in range(240):
            text = "/reset" if i == 150 else question(i)
            before = len(fake_model.chat_requests)
            got = (await cached[i % 2].reply_text(said(SESSION, text)), fake_model.chat_requests[before:])
            before = len(fake_model.chat_requests)
            expected = (
                await uncached[i % 2].reply_text(said(SESSION, text)),
                fake_model.chat_requests[before:],
            )
            assert [got[0], [r["messages"] for r in got[1]]] == [
                expected[0],
                [r["messages"] for r in expected[1]],
            ], f"turn {i}"
        last_prompt = " ".join(m["content"] for m in got[1][-1]["messages"])
        assert "question 238:" in last_prompt and "question 140:" not in last_prompt


async def test_the_next_turn_works_after_the_server_dropped_every_connection(
    fake_model: FakeOpenAI, postgres_url: str, tmp_path: Path
) -> None:
    async with engine_for(
        fake_model.base_url, tmp_path / "unused.db", CHATBOT_DATABASE_URL=postgresql_url(postgres_url)
    ) as engine:
        assert await engine.reply_text(said("console:drop", "my name is Ada")) == "You said: my name is Ada"
        name = postgres_url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres")
        try:
            dropped = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1", name
            )
        finally:
            await admin.close()
        assert dropped >= 1
        # The next turn comes a moment later: the terminated backends' goodbyes have reached the pool's
        # sockets. (A write racing the drop itself fails its own turn: docs/storage.md.)
        await asyncio.sleep(0.2)
        assert (
            await engine.reply_text(said("console:drop", "what is my name?")) == "You said: what is my name?"
        )
        sent = " ".join(m["content"] for m in fake_model.last_messages())
        assert "my name is Ada" in sent  # the first turn, read back over a new connection


async def test_a_lost_connection_is_tried_again_for_a_read_but_not_for_a_write_that_may_have_run(
    postgres_url: str,
) -> None:
    """The pool's retry rule (core/postgres_connection.py): a read meeting a lost connection runs once more
    on a fresh one; a write is repeated only if the connection refused to send it (it certainly did not
    run), never when it was cut off midway (it may have been committed)."""
    shared = SharedPool(postgres_url)
    await shared.open()
    try:

        def lost_once(exc: BaseException, calls: list[int]) -> Callable[[Any], Awaitable[int]]:
            async def work(connection: Any) -> int:
                calls.append(1)
                if len(calls) == 1:
                    raise exc
                return int(await connection.fetchval("SELECT 1"))

            return work

        read: list[int] = []
        assert await shared.run(lost_once(asyncpg.exceptions.ConnectionDoesNotExistError("gone"), read)) == 1
        assert len(read) == 2
        cut: list[int] = []
        with pytest.raises(asyncpg.exceptions.ConnectionDoesNotExistError):
            await shared.run(
                lost_once(asyncpg.exceptions.ConnectionDoesNotExistError("gone"), cut), retry=False
            )
        assert len(cut) == 1
        refused: list[int] = []
        assert (
            await shared.run(lost_once(asyncpg.exceptions.InterfaceError("closed"), refused), retry=False)
            == 1
        )
        assert len(refused) == 2
    finally:
        await shared.close()


async def test_a_read_right_after_the_server_dropped_the_connections_is_answered(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, cache_windows=False)
    await store.open()
    try:
        await store.add_message("s", "user", "kept", 1)
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        # no pause: the read may meet the dead connection before asyncpg noticed, and is tried again
        assert [m.content for m in await store.recent_messages("s")] == ["kept"]
    finally:
        await store.close()


def postgresql_url(url: str) -> str:
    """The same database as a ``postgres://`` URL (both schemes select PostgreSQL)."""
    return url.replace("postgresql://", "postgres://", 1)


async def test_a_server_that_is_not_there_is_named_without_the_password() -> None:
    port = free_port()
    store = storage_for(f"postgresql://app:s3cret-pw-771@127.0.0.1:{port}/chat", Path("unused.db"))
    with pytest.raises(ConfigError) as caught:
        await store.open()
    message = str(caught.value)
    assert f"postgresql://app@127.0.0.1:{port}/chat" in message and "CHATBOT_DATABASE_URL" in message
    assert "s3cret-pw-771" not in message and caught.value.__cause__ is None


def test_a_database_url_of_another_kind_is_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="must start with postgresql:// or postgres://") as caught:
        storage_for("mysql://root:hunter2hunter2@db/chat", Path("unused.db"))
    assert "hunter2" not in str(caught.value)
    assert type(storage_for(None, Path("x.db"))).__name__ == "SQLiteStore"
    assert type(storage_for("", Path("x.db"))).__name__ == "SQLiteStore"


async def test_the_storage_benchmark_compares_a_turn_on_both_stores(postgres_url: str) -> None:
    rows = await store_cost.run(quick=True)
    assert [row[0] for row in rows] == [
        "SQLite, a turn with 10 messages stored",
        "PostgreSQL, a turn with 10 messages stored",
        "ratio PostgreSQL / SQLite (median)",
    ]
    assert all(len(row) == len(store_cost.HEADER) for row in rows)
    assert rows[2][1].endswith("x") and float(rows[2][1][:-1]) > 0
