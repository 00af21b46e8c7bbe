"""Which files the installed ``chatbot`` command leaves in the folder it runs in.

Read-only commands leave none; the database and the log go to ``./data/`` (README, "Files") only when a
command records something.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.support.cli import run_chatbot

READ_ONLY = [
    (["--help"], "chat"),
    (["bots"], "orbit: "),
    (["review"], "nothing has been recorded yet"),
    (["stats"], "nothing has been recorded yet"),
    (["ingest", "--bot", "orbit", "--list"], "orbit: the knowledge base is empty"),
]


def files_in(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(("args", "says"), READ_ONLY, ids=[" ".join(args) for args, _ in READ_ONLY])
async def test_read_only_commands_create_no_files(args: list[str], says: str, tmp_path: Path) -> None:
    code, out, err = await run_chatbot(args, b"", tmp_path, {})
    assert code == 0, err
    assert says in out
    assert files_in(tmp_path) == []


async def test_a_chat_keeps_its_database_and_log_in_data_by_default(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    env = {"OPENAI_BASE_URL": fake_model.base_url, "CHATBOT_MODEL": "gpt-4"}
    code, out, err = await run_chatbot(["chat", "--session", "files"], b"hi\n", tmp_path, env)
    assert code == 0, err
    assert out == "You said: hi\n"
    assert files_in(tmp_path) == [
        "data",
        "data/chatbot.db",
        "data/chatbot.log",
    ]
    assert '"user_text": "hi"' in (tmp_path / "data" / "chatbot.log").read_text()


async def test_database_and_log_go_where_the_settings_say(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    env = {
        "OPENAI_BASE_URL": fake_model.base_url,
        "CHATBOT_MODEL": "gpt-4",
        "CHATBOT_DB": str(tmp_path / "state" / "bot.db"),
        "CHATBOT_LOG_FILE": str(tmp_path / "logs" / "bot.log"),
    }
    (tmp_path / "state").mkdir()
    code, _out, err = await run_chatbot(["chat"], b"hi\n", tmp_path / "state", env)
    assert code == 0, err
    assert (tmp_path / "state" / "bot.db").is_file()
    assert '"user_text": "hi"' in (tmp_path / "logs" / "bot.log").read_text()
    assert not (tmp_path / "state" / "data").exists()
