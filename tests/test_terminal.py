"""The terminal bot end to end: the installed ``chatbot`` command, fed through a pipe."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.cli import run_chatbot


async def test_pipe_one_message_per_line(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    fake_model.queue(
        Reply(text="Hello! I'm here.", chunk_size=3), Reply(text="Your name is Ada.", chunk_size=3)
    )
    env = {"OPENAI_BASE_URL": fake_model.base_url, "OPENAI_API_KEY": "sk-local", "CHATBOT_MODEL": "gpt-4"}
    code, out, err = await run_chatbot(
        ["chat", "--session", "pipe"], b"hi, I'm Ada\n\nwhat's my name?\n", tmp_path, env
    )
    assert code == 0, err
    assert out == "Hello! I'm here.\nYour name is Ada.\n"
    sent = fake_model.last_messages()
    assert [m["content"] for m in sent[1:]] == ["hi, I'm Ada", "Hello! I'm here.", "what's my name?"]
    with sqlite3.connect(tmp_path / "data" / "chatbot.db") as db:
        sessions = db.execute("SELECT DISTINCT session_id FROM messages").fetchall()
    assert sessions == [("console:pipe",)]
    log = (tmp_path / "data" / "chatbot.log").read_text()
    assert '"user_text": "hi, I\'m Ada"' in log and "sk-local" not in log


async def test_orbit_bot_is_selectable(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": fake_model.base_url, "CHATBOT_MODEL": "gpt-4"}
    code, _out, err = await run_chatbot(
        ["chat", "--bot", "orbit"], b"how much is the pro plan?\n", tmp_path, env
    )
    assert code == 0, err
    system = fake_model.last_messages()[0]["content"]
    assert "Orbit" in system and "Never make up prices" in system
    assert fake_model.chat_requests[-1]["temperature"] == 0.3


async def test_bad_input_bytes_do_not_crash(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": fake_model.base_url, "CHATBOT_MODEL": "gpt-4"}
    code, out, err = await run_chatbot(["chat"], b"caf\xe9 \xff\xfe bytes\n", tmp_path, env)
    assert code == 0, err
    assert out.startswith("You said: caf")


async def test_unreachable_model_server_is_one_actionable_line(tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    code, _out, err = await run_chatbot(["chat"], b"hello\n", tmp_path, env)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "cannot reach the model server at http://127.0.0.1:9/v1" in lines[0]
    assert "OPENAI_BASE_URL" in lines[0]


async def test_missing_api_key_for_openai_is_one_actionable_line(tmp_path: Path) -> None:
    code, _out, err = await run_chatbot(["chat"], b"hello\n", tmp_path, {})
    assert code == 2
    assert err.strip().splitlines() == [
        "error: OPENAI_API_KEY is not set: put it in .env (see .env.example), "
        "or set OPENAI_BASE_URL to a local OpenAI-compatible server."
    ]


async def test_invalid_setting_is_one_line(tmp_path: Path) -> None:
    code, _out, err = await run_chatbot(["chat"], b"", tmp_path, {"CHATBOT_TEMPERATURE": "hot"})
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "CHATBOT_TEMPERATURE" in err


async def test_run_without_platforms_says_what_to_set(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    code, _out, err = await run_chatbot(["run"], b"", tmp_path, {"OPENAI_BASE_URL": fake_model.base_url})
    assert code == 2
    assert "TELEGRAM_BOT_TOKEN" in err and "SLACK_BOT_TOKEN" in err and "DISCORD_BOT_TOKEN" in err


async def test_dotenv_file_is_read(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"OPENAI_BASE_URL={fake_model.base_url}\nCHATBOT_MODEL=gpt-4\nCHATBOT_BOT=orbit\n"
    )
    code, _out, err = await run_chatbot(["chat"], b"hi\n", tmp_path, {})
    assert code == 0, err
    assert "Orbit" in fake_model.last_messages()[0]["content"]
