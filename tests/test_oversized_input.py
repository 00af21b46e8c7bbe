"""Oversized input: a refused huge message is stored and logged in a bounded form; an accepted one whole."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.incoming import IncomingMessage
from core.log_setup import MAX_LINE_CHARS, configure_logging
from tests.fakes.openai_server import FakeOpenAI
from tests.support.engines import engine_for

MEGABYTE_MESSAGE = "".join(f"word{i} " for i in range(150_000))[:1_000_000]


def telegram(text: str) -> IncomingMessage:
    return IncomingMessage(session_id="telegram:1", text=text, user_id="telegram:1", platform="telegram")


def user_rows(db_path: Path) -> list[tuple[int, int]]:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT length(content), complete FROM messages WHERE role = 'user'").fetchall()


def read_log(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.fixture
def bot_logging(tmp_path: Path) -> Iterator[Path]:
    """The bot's own logging (file at INFO, stderr at INFO), and pytest's restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    log_file = tmp_path / "logs" / "bot.log"
    configure_logging(level="INFO", log_file=log_file, console_level="INFO")
    try:
        yield log_file
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


async def test_refused_huge_message_is_stored_and_logged_in_a_bounded_form(
    fake_model: FakeOpenAI, db_path: Path, bot_logging: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        reply = await engine.reply_text(telegram(MEGABYTE_MESSAGE))
    assert "too long" in reply.lower() or "long" in reply.lower()
    assert fake_model.chat_requests == []  # refused: never sent to the model
    [(length, complete)] = user_rows(db_path)
    assert length < 10_000 and complete == 0
    with sqlite3.connect(db_path) as db:
        [(content,)] = db.execute("SELECT content FROM messages").fetchall()
    assert content.startswith(MEGABYTE_MESSAGE[:1000])  # what the user said, kept in part
    assert f"{len(MEGABYTE_MESSAGE):,}" in content  # with its original length
    logged = read_log(bot_logging)
    assert "word1 " in logged  # the turn was logged
    assert len(logged.encode()) < 10_000
    assert len(capfd.readouterr().err.encode()) < 10_000


def test_every_log_line_is_capped(bot_logging: Path, capfd: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("some.library").warning("request failed: %s", "x" * 500_000)
    lines = bot_logging.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and MAX_LINE_CHARS < len(lines[0]) < MAX_LINE_CHARS + 200
    assert "more characters not logged" in lines[0]
    assert len(capfd.readouterr().err) < MAX_LINE_CHARS + 200


async def test_accepted_long_message_is_stored_whole(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        text = "".join(f"fact {i} " for i in range(2_000))[:7_500]  # within the guard's 8,000
        assert len(text) <= engine.bot.max_input_chars
        assert (await engine.reply_text(telegram(text))).startswith("You said: fact 0")
    assert user_rows(db_path) == [(len(text), 1)]
