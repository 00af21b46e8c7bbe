"""Extension points of a turn, exercised with small hooks over the fake model server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.commands import Command
from core.hooks import Refusal
from core.incoming import IncomingMessage
from core.store import TurnRecord
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import engine_for, said


class BlockWord:
    async def check_input(self, message: IncomingMessage, text: str) -> Refusal | None:
        return Refusal("I can't help with that.", "forbidden word") if "forbidden" in text else None


class NoSecrets:
    def check_partial(self, message: IncomingMessage, text: str) -> Refusal | None:
        return Refusal("Sorry, I can't share that.", "secret in reply") if "SECRET" in text else None

    async def check_reply(self, message: IncomingMessage, text: str) -> Refusal | None:
        return None


class Facts:
    async def context_for(self, message: IncomingMessage, text: str, max_tokens: int) -> str:
        return "Facts: the Pro plan costs 12 euros."


class Recorder:
    def __init__(self) -> None:
        self.turns: list[TurnRecord] = []

    async def on_turn(self, message: IncomingMessage, turn: TurnRecord) -> None:
        self.turns.append(turn)


async def test_blocked_input_is_stored_but_never_sent(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        recorder = Recorder()
        engine.hooks.input_guards.append(BlockWord())
        engine.hooks.observers.append(recorder)
        assert await engine.reply_text(said("c:1", "something forbidden")) == "I can't help with that."
        await engine.reply_text(said("c:1", "fine question"))
    assert len(fake_model.chat_requests) == 1
    assert "forbidden" not in str(fake_model.last_messages())
    assert [t.status for t in recorder.turns] == ["blocked", "ok"]
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT content, complete FROM messages WHERE role='user'").fetchall() == [
            ("something forbidden", 0),
            ("fine question", 1),
        ]


async def test_output_guard_withdraws_a_reply_mid_stream(fake_model: FakeOpenAI, db_path: Path) -> None:
    fake_model.queue(Reply(text="Here it is: SECRET stuff and more text after it", chunk_size=5))
    async with engine_for(fake_model.base_url, db_path) as engine:
        engine.hooks.output_guards.append(NoSecrets())
        assert await engine.reply_text(said("c:1", "tell me")) == "Sorry, I can't share that."
        await engine.reply_text(said("c:1", "next"))
    assert "SECRET" not in str(fake_model.last_messages())


async def test_context_source_goes_into_the_system_message(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        engine.hooks.context_sources.append(Facts())
        await engine.reply_text(said("c:1", "price?"))
    system = fake_model.last_messages()[0]["content"]
    assert system.startswith(engine.bot.system_prompt) and system.endswith(
        "Facts: the Pro plan costs 12 euros."
    )


async def test_extra_commands_are_answered_and_listed_in_help(fake_model: FakeOpenAI, db_path: Path) -> None:
    async def forget(message: IncomingMessage) -> str:
        return f"forgot {message.user_id}"

    async with engine_for(fake_model.base_url, db_path) as engine:
        engine.commands.add(Command("forget_me", "Delete what I stored about you", forget))
        assert await engine.reply_text(said("c:1", "/forget_me", user="telegram:9")) == "forgot telegram:9"
        assert "/forget_me: delete" in await engine.reply_text(said("c:1", "/help"))
    assert fake_model.chat_requests == []
