"""``chatbot`` with ``CHATBOT_DATABASE_URL`` set, run as a user runs it: conversations live in PostgreSQL
(a second run remembers the first, no SQLite file is made, the URL's password is in no log line), and a
server that is not there is a clear error naming it, never its password, in the output or the log.
"""

from __future__ import annotations

from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI
from tests.support.cli import run_chatbot
from tests.test_postgres_store import free_port


async def test_a_second_chat_remembers_the_first_from_postgresql(
    fake_model: FakeOpenAI, postgres_url: str, tmp_path: Path
) -> None:
    password = "pg-pass-90210-x"  # the loopback server trusts loopback: any password is accepted
    env = {
        "OPENAI_BASE_URL": fake_model.base_url,
        "CHATBOT_MODEL": "gpt-4",
        "CHATBOT_DATABASE_URL": postgres_url.replace("postgres@", f"postgres:{password}@", 1),
        "CHATBOT_LOG_LEVEL": "DEBUG",
    }
    code, out, err = await run_chatbot(["chat", "--session", "pg"], b"my name is Ada\n", tmp_path, env)
    assert (code, out) == (0, "You said: my name is Ada\n"), err
    code, out, err = await run_chatbot(["chat", "--session", "pg"], b"what is my name?\n", tmp_path, env)
    assert (code, out) == (0, "You said: what is my name?\n"), err
    sent = [(m["role"], m["content"]) for m in fake_model.last_messages()]
    assert ("user", "my name is Ada") in sent and ("assistant", "You said: my name is Ada") in sent
    assert not (tmp_path / "data" / "chatbot.db").exists()  # nothing went to SQLite
    log = (tmp_path / "data" / "chatbot.log").read_text()
    assert "migrated to schema version" in log and password not in log + err

    code, out, err = await run_chatbot(["stats", "--days", "1"], b"", tmp_path, env)
    assert code == 0, err
    assert "nothing has been recorded" not in out


async def test_a_database_server_that_is_down_is_a_clear_error_without_the_password(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "OPENAI_BASE_URL": fake_model.base_url,
        "CHATBOT_MODEL": "gpt-4",
        "CHATBOT_DATABASE_URL": f"postgresql://bot:pg-s3cret-4417@127.0.0.1:{port}/chat",
    }
    code, out, err = await run_chatbot(["chat", "--session", "down"], b"hello\n", tmp_path, env)
    assert code != 0
    assert f"cannot connect to PostgreSQL at postgresql://bot@127.0.0.1:{port}/chat" in err
    log = (
        (tmp_path / "data" / "chatbot.log").read_text()
        if (tmp_path / "data" / "chatbot.log").exists()
        else ""
    )
    assert "pg-s3cret-4417" not in out + err + log
    assert out == ""  # no reply pretends the message was kept
