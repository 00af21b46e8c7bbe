"""A turn's status, and the prompt following the engine's current bot."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from core.hooks import Refusal
from core.incoming import IncomingMessage
from core.store import TurnRecord
from core.turn import TurnStatus
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said


class NoRecipes:
    async def check_input(self, message: IncomingMessage, text: str) -> Refusal | None:
        return Refusal("I can't share recipes.", "recipe") if "recipe" in text else None


class Statuses:
    """A turn observer keeping each turn's status, as features (review, metrics) see them."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_turn(self, message: IncomingMessage, turn: TurnRecord) -> None:
        self.seen.append(turn.status)


async def test_each_kind_of_turn_is_recorded_with_its_documented_status(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    statuses = Statuses()
    fake_model.queue(Reply(text="fine"), Reply(text="   "), Reply(status=503, error_message="overloaded"))
    async with engine_for(fake_model.base_url, db_path) as engine:
        engine.hooks.input_guards.insert(0, NoRecipes())
        engine.hooks.observers.append(statuses)
        for text in ("hello", "say nothing", "are you there?", "the secret recipe?", "/help"):
            await engine.reply_text(said("console:a", text))
    assert statuses.seen == ["ok", "empty", "error", "blocked", "command"]
    assert all(isinstance(status, TurnStatus) for status in statuses.seen)
    with sqlite3.connect(db_path) as db:
        stored = [row[0] for row in db.execute("SELECT status FROM turns ORDER BY id")]
    assert stored == ["ok", "empty", "error", "blocked"]  # the stored text is the plain value


async def test_changing_the_engines_bot_changes_the_next_prompt(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(said("console:a", "hello"))
        engine.bot = replace(engine.bot, system_prompt="You are a pirate.")
        await engine.reply_text(said("console:a", "and now?"))
    assert fake_model.last_messages()[0] == {"role": "system", "content": "You are a pirate."}
