"""Review triggers: phrases and blocked turns flag a conversation; ``chatbot review`` lists it in context."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from core.hooks import Refusal
from core.incoming import IncomingMessage
from features.review.flags import DEFAULT_REVIEW_PHRASES, find_phrase, parse_phrases
from tests.fakes.openai_server import FakeOpenAI
from tests.support.cli import run_chatbot
from tests.support.engines import engine_for, said


def flags(db_path: Path) -> list[tuple[str, str, str, str, int]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(
            "SELECT session_id, phrase, user_text, platform, resolved FROM review_flags ORDER BY id"
        ).fetchall()


def test_phrases_match_whatever_the_case_punctuation_or_apostrophes() -> None:
    phrases = DEFAULT_REVIEW_PHRASES
    assert find_phrase("Hmm, YOU MADE THAT UP!!!", phrases) == "you made that up"
    assert find_phrase("That’s wrong.", phrases) == "that's wrong"
    assert find_phrase("thats wrong", phrases) == "that's wrong"
    assert find_phrase("No... that is   wrong?", phrases) == "that is wrong"
    assert find_phrase("That is not helpful at all", phrases) == "not helpful"
    assert find_phrase("that was notably helpful, thanks", phrases) is None
    assert find_phrase("what's the wrong-answer policy", phrases) == "wrong answer"
    assert find_phrase("How do I invite a teammate?", phrases) is None


def test_phrase_setting() -> None:
    assert parse_phrases("") == DEFAULT_REVIEW_PHRASES
    assert parse_phrases("none") == ()
    assert parse_phrases("rubbish, , Not What I Asked") == ("rubbish", "Not What I Asked")
    assert find_phrase("that's not what I asked!", parse_phrases("not what I asked")) == "not what I asked"


class BlockEverythingSecret:
    async def check_input(self, message: IncomingMessage, text: str) -> Refusal | None:
        return Refusal("I can't help with that.", "test rule") if "secret" in text else None


async def test_user_phrase_and_blocked_turn_flag_the_conversation(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.queue("Timelines are on every plan.", "Sorry about that.", "Fine.")
    async with engine_for(fake_model.base_url, db_path, bot="orbit") as engine:
        engine.hooks.input_guards.append(BlockEverythingSecret())
        await engine.reply_text(said("t:1", "Which plans have timelines?"))
        assert flags(db_path) == []
        await engine.reply_text(said("t:1", "You made that up!"))
        await engine.reply_text(said("t:2", "tell me the secret"))
        await engine.reply_text(said("t:2", "/help"))  # commands never flag
        await engine.reply_text(said("t:3", "thanks, that helped"))
    assert flags(db_path) == [
        ("t:1", "you made that up", "You made that up!", "test", 0),
        ("t:2", "status:blocked", "tell me the secret", "test", 0),
    ]
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT DISTINCT bot FROM review_flags").fetchall() == [("orbit",)]


async def test_configured_phrases_replace_the_defaults(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path, CHATBOT_REVIEW_PHRASES="rubbish") as engine:
        await engine.reply_text(said("t:1", "you made that up"))
        await engine.reply_text(said("t:1", "Rubbish."))
    assert [f[1] for f in flags(db_path)] == ["rubbish"]


async def test_chatbot_review_lists_flags_with_context_and_resolves(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    fake_model.queue(
        "Hi! How can I help with Orbit?",
        "Timelines are on every plan.",
        "I'm sorry: I shouldn't have said that. Let me pass you to the support team.",
        "Sure.",
    )
    env = {"OPENAI_BASE_URL": fake_model.base_url, "CHATBOT_MODEL": "gpt-4", "CHATBOT_BOT": "orbit"}
    lines = b"hello\nwhich plans have timelines?\nyou made that up\nok bye\n"
    code, _out, err = await run_chatbot(["chat", "--session", "s1"], lines, tmp_path, env)
    assert code == 0, err

    code, out, err = await run_chatbot(["review", "--context", "2"], b"", tmp_path, env)
    assert code == 0, err
    assert "1 open flag" in out
    assert "#1 " in out and "orbit on console" in out and "session console:s1" in out
    assert 'why: the user said "you made that up"' in out
    body = [line.strip() for line in out.splitlines()]
    conversation = [
        line for line in body if line.endswith(("timelines?", "every plan.", "made that up", "team."))
    ]
    assert len(conversation) == 4, out
    assert "user  which plans have timelines?" in conversation[0]
    assert "bot   Timelines are on every plan." in conversation[1]
    assert conversation[2].startswith(">>") and "user  you made that up" in conversation[2]
    assert "support team." in conversation[3]
    assert "hello" not in out and "ok bye" not in out  # --context 2, and only the reply after the flag

    code, out, _ = await run_chatbot(["review", "--resolve", "1"], b"", tmp_path, env)
    assert (code, out.strip()) == (0, "Resolved #1.")
    code, out, _ = await run_chatbot(["review"], b"", tmp_path, env)
    assert (code, out.strip()) == (0, "No open flags.")
    code, out, _ = await run_chatbot(["review", "--all", "--bot", "orbit"], b"", tmp_path, env)
    assert code == 0 and "#1 " in out and "[resolved]" in out
    code, out, _ = await run_chatbot(["review", "--resolve", "99"], b"", tmp_path, env)
    assert (code, out.strip()) == (1, "No flag #99.")


async def test_review_without_a_database_says_so(tmp_path: Path) -> None:
    code, out, _ = await run_chatbot(["review"], b"", tmp_path, {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert code == 0 and "nothing has been recorded yet" in out
    assert not (tmp_path / "data" / "chatbot.db").exists()


async def test_flags_go_with_their_turns_when_a_user_is_forgotten_or_data_expires(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(said("t:1", "that is wrong", user="telegram:1"))
        await engine.reply_text(said("t:2", "you made that up", user="telegram:2"))
        await engine.reply_text(said("t:3", "not helpful", user="telegram:3"))
        assert len(flags(db_path)) == 3
        await engine.store.forget_user("telegram:1")
        assert [f[0] for f in flags(db_path)] == ["t:2", "t:3"]
        with sqlite3.connect(db_path) as db:
            db.execute("UPDATE turns SET started_at = started_at - 86400 * 40 WHERE session_id = 't:2'")
            db.execute(
                "UPDATE review_flags SET turn_started_at = turn_started_at - 86400 * 40 WHERE session_id = 't:2'"
            )
        await engine.store.delete_older_than(time.time() - 86400 * 30)
        assert [f[0] for f in flags(db_path)] == ["t:3"]
