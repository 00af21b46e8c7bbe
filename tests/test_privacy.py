"""Privacy: /forget, retention and pasted credentials, over the real engine, store and terminal bot."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.incoming import IncomingMessage
from core.log_setup import RedactSecrets
from core.secrets import find_secret, redact_secrets
from core.sqlite_store import SQLiteStore
from core.store import TurnRecord
from tests.fakes.openai_server import FakeOpenAI
from tests.support.cli import run_chatbot
from tests.support.engines import engine_for, said

DAY = 86_400


def msg(text: str, user: str, session: str) -> IncomingMessage:
    return IncomingMessage(session_id=session, text=text, user_id=user, platform=user.split(":")[0])


def rows(db_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, args).fetchall()


async def add_review_flags(db_path: Path, flags: list[tuple[str, float]]) -> None:
    """Review flags (user, created at) of turns the store no longer has, which /forget and retention must
    clear too: they hold the user's words."""
    store = SQLiteStore(db_path)
    await store.open()
    try:
        for user, created_at in flags:
            turn = TurnRecord("telegram:-7", "that is wrong", "", 1.0, 0.0, 0, 0, "ok", "m", user_id=user)
            await store.review.add(turn, "that is wrong", now=created_at)
    finally:
        await store.close()


async def test_forget_deletes_the_users_messages_and_says_what(fake_model: FakeOpenAI, db_path: Path) -> None:
    ada, bob = "telegram:1", "telegram:2"
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(msg("my order is 4411", ada, "telegram:1"))
        await engine.reply_text(msg("hello group", ada, "telegram:-50"))
        await engine.reply_text(msg("hi all", bob, "telegram:-50"))
        await add_review_flags(db_path, [(ada, time.time()), (bob, time.time())])
        help_text = await engine.reply_text(msg("/help", ada, "telegram:1"))
        answer = await engine.reply_text(msg("/forget", ada, "telegram:1"))
        again = await engine.reply_text(msg("/forget", ada, "telegram:1"))
        await engine.reply_text(msg("what is my order number?", ada, "telegram:1"))
    assert "/forget: delete everything I've stored about you" in help_text
    assert answer == (
        "Done: I deleted everything I had stored about you: 3 messages (yours, and my replies in "
        "conversations only you took part in), 2 records of our exchanges and 1 other note (such as "
        "review flags)."
    )
    assert again == "I had nothing stored about you, so there was nothing to delete."
    assert "4411" not in str(fake_model.last_messages())  # the model no longer sees the old conversation
    remaining = rows(db_path, "SELECT user_id, content FROM messages WHERE user_id != '' ORDER BY id")
    assert remaining == [(bob, "hi all"), (ada, "what is my order number?")]
    assert rows(db_path, "SELECT user_id FROM review_flags") == [(bob,)]
    assert rows(db_path, "SELECT user_id FROM turns WHERE user_id = ? AND status = 'ok'", bob) == [(bob,)]


async def test_forget_without_a_user_id_deletes_nothing(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(msg("hello", "telegram:1", "telegram:1"))
        answer = await engine.reply_text(IncomingMessage(session_id="web:9", text="/forget"))
    assert answer.startswith("I can't tell who you are on this platform")
    assert len(rows(db_path, "SELECT id FROM messages")) == 2  # the reply (user_id '') survived too


async def test_forget_from_the_terminal(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": fake_model.base_url, "CHATBOT_MODEL": "gpt-4o-mini"}
    code, out, err = await run_chatbot(["chat"], b"remember 1234\n/forget\n", tmp_path, env)
    assert code == 0, err
    assert out.splitlines()[-1].startswith("Done: I deleted everything I had stored about you: 2 messages")
    assert rows(tmp_path / "data" / "chatbot.db", "SELECT COUNT(*) FROM messages") == [(0,)]


async def seed_old_and_new(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    try:
        await store.add_message("telegram:1", "user", "old secret plan", 4, user_id="telegram:1")
        await store.add_message("telegram:1", "assistant", "old answer", 2)
        await store.add_message("telegram:2", "user", "recent question", 3, user_id="telegram:2")
    finally:
        await store.close()
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE messages SET created_at = ? WHERE content LIKE 'old%'", (time.time() - 40 * DAY,))
    await add_review_flags(db_path, [("telegram:1", time.time() - 40 * DAY), ("telegram:2", time.time())])


async def wait_for(predicate: Callable[[], bool], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def test_retention_deletes_old_messages_at_start(fake_model: FakeOpenAI, db_path: Path) -> None:
    await seed_old_and_new(db_path)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_RETENTION_DAYS=30):
        assert await wait_for(lambda: len(rows(db_path, "SELECT id FROM messages")) == 1)
    assert rows(db_path, "SELECT content FROM messages") == [("recent question",)]
    assert rows(db_path, "SELECT user_id FROM review_flags") == [("telegram:2",)]


async def test_no_retention_by_default(fake_model: FakeOpenAI, db_path: Path) -> None:
    await seed_old_and_new(db_path)
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(msg("hi", "telegram:3", "telegram:3"))
    assert len(rows(db_path, "SELECT id FROM messages WHERE content LIKE 'old%'")) == 2


async def test_a_pasted_key_never_reaches_the_model(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path, CHATBOT_GUARD_MODEL_CHECK=True) as engine:
        answer = await engine.reply_text(
            msg("why does ghp_abcdefghijklmnopqrstuvwxyz0123456789 fail?", "slack:U1", "slack:C1")
        )
        after = await engine.reply_text(msg("ok, what now?", "slack:U1", "slack:C1"))
    assert answer == (
        "It looks like your message contains an API key, token or private key, so I didn't pass it on. "
        "Please treat it as exposed: revoke it and create a new one."
    )
    assert after == "You said: ok, what now?"
    assert "ghp_" not in str(fake_model.requests)  # not even to the guard model's classifier


def test_redaction_for_logs_and_storage() -> None:
    text = "key sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c, token 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0, pw hunter2hunter2"
    assert redact_secrets(text, ["hunter2hunter2"]) == "key [redacted], token [redacted], pw [redacted]"


async def test_a_pasted_key_never_reaches_the_database_or_the_log(
    fake_model: FakeOpenAI, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
    async with engine_for(fake_model.base_url, db_path) as engine:
        reply = await engine.reply_text(
            said("telegram:5", f"my key is {key} why does it fail?", user="telegram:5")
        )
    assert "key" in reply.lower()
    assert fake_model.chat_requests == []
    with sqlite3.connect(db_path) as db:
        stored = " ".join(row[0] for row in db.execute("SELECT content FROM messages"))
    assert key not in stored and "[redacted]" in stored
    assert key not in caplog.text


AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PASTED_CREDENTIALS = [
    (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    (f'"SecretAccessKey": "{AWS_SECRET}"', AWS_SECRET),
    (f"my keys are AKIAIOSFODNN7EXAMPLE and {AWS_SECRET}", AWS_SECRET),
    ("connect with postgres://app:Tr0ub4dor@db.internal:5432/app please", "Tr0ub4dor"),
    ("mysql://root:hunter2@10.0.0.5/shop", "hunter2"),
    ("mongodb+srv://admin:S3cr3t!x@cluster0.abcde.mongodb.net/test", "S3cr3t!x"),
    ("REDIS_URL=redis://:redispass@cache:6379/0", "redispass"),
    ("amqp://guest:p@ssw0rd@rabbit/vhost", "p@ssw0rd"),
]
NOT_CREDENTIALS = [
    "Fixed in commit 3f786850e387550fdab836ed7e6dc881de23001b yesterday.",
    "The request id was 123e4567-e89b-12d3-a456-426614174000.",
    "Clone it from https://alice@git.example.com/team/repo.git",
    "The server listens on http://localhost:8080/a@b",
    "The word U29tZSBiYXNlNjQgdGV4dA== looks like base64 but is just prose.",
    "Trace 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 in the log.",
    "password: see the docs",
    "Use postgres://user:<password>@host/db with your own password.",
    "The format is postgres://user:password@localhost:5432/mydb (put in your own).",
    "DATABASE_URL=mysql://app:${DB_PASSWORD}@db/app or redis://:changeme@cache:6379",
    "Write to bob@example.com or see https://example.com/help",
]


@pytest.mark.parametrize(("text", "secret"), PASTED_CREDENTIALS)
def test_pasted_aws_keys_and_database_passwords_are_found_and_redacted(text: str, secret: str) -> None:
    assert find_secret(text) is not None
    redacted = redact_secrets(text)
    assert secret not in redacted and "[redacted]" in redacted
    assert secret not in RedactSecrets([]).redact(text)  # the log filter too


@pytest.mark.parametrize("text", NOT_CREDENTIALS)
def test_ordinary_ids_urls_and_prose_are_not_taken_for_credentials(text: str) -> None:
    assert find_secret(text) is None
    assert redact_secrets(text) == text


async def test_a_pasted_database_url_is_refused_stored_redacted_and_kept_out_of_the_log(
    fake_model: FakeOpenAI, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    text = f"why does postgres://app:Tr0ub4dor@db.internal/app fail? aws_secret_access_key={AWS_SECRET}"
    async with engine_for(fake_model.base_url, db_path) as engine:
        reply = await engine.reply_text(said("telegram:5", text, user="telegram:5"))
        logging.getLogger("chatbot.test").warning("user pasted %s", text)
    assert "revoke" in reply
    assert fake_model.chat_requests == []
    with sqlite3.connect(db_path) as db:
        stored = " ".join(row[0] for row in db.execute("SELECT content FROM messages"))
    assert "Tr0ub4dor" not in stored and AWS_SECRET not in stored
    assert "postgres://app:[redacted]@db.internal/app" in stored
    filtered = [RedactSecrets([]).redact(record.getMessage()) for record in caplog.records]
    assert not any("Tr0ub4dor" in line or AWS_SECRET in line for line in filtered)


async def test_the_turn_log_redacts_a_secret_in_user_text_and_keeps_the_rest(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    # features off: no guard refuses the message, so only the log filter stands between the key and the log
    from bots.app import open_engine
    from core.log_setup import configure_logging
    from tests.support.engines import settings_for

    key = "sk-proj-" + "Z9y8X7w6V5u4T3s2R1q0" * 2
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    log_file = tmp_path / "bot.log"
    configure_logging(level="INFO", log_file=log_file, console_level="CRITICAL", secrets=["hunter2hunter2"])
    try:
        async with open_engine(settings_for(fake_model.base_url, db_path), features=False) as engine:
            await engine.reply_text(
                said("telegram:6", f"is {key} or hunter2hunter2 my key?", user="telegram:6")
            )
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    logged = log_file.read_text(encoding="utf-8")
    assert key not in logged and "hunter2hunter2" not in logged
    assert "is [redacted] or [redacted] my key?" in logged
    assert '"prompt_tokens"' in logged and '"completion_tokens"' in logged  # the rest of the line is kept
