"""Tools through the terminal bot (the installed ``chatbot chat``, fed through a pipe): what a user reads,
and that the acting tool ran only after their "yes"."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI, Reply, tool_call
from tests.support.cli import run_chatbot
from tests.support.tools import tool_messages_are_paired, write_tools_file


def env_for(fake_model: FakeOpenAI, tools: Path) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": fake_model.base_url,
        "OPENAI_API_KEY": "sk-local",
        "CHATBOT_MODEL": "gpt-4",
        "CHATBOT_TOOLS_FILE": str(tools),
    }


async def test_the_terminal_asks_before_an_acting_tool_and_runs_it_after_yes(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    fake_model.queue(
        Reply(text="Let me look.", tool_calls=[tool_call("get_weather", {"city": "Bern"}, "w")]),
        Reply(
            text="Sunny in Bern. Shall I file it?",
            tool_calls=[tool_call("create_ticket", {"title": "Bern"}, "t")],
        ),
        Reply(text="Filed as ticket #1."),
    )
    tools = write_tools_file(tmp_path)
    code, out, err = await run_chatbot(
        ["chat", "--session", "pipe"],
        b"weather in Bern, and file it\nyes\n",
        tmp_path,
        env_for(fake_model, tools),
    )
    assert code == 0, err
    asked, done = out.rstrip("\n").rsplit("\n", 1)
    assert asked.startswith(
        "Let me look.\n\nSunny in Bern. Shall I file it?\n\n🔧 I'd like to use create ticket"
    )
    assert done == "Filed as ticket #1."
    assert "🔧 Using" not in out, "a terminal cannot take a passing line back"
    assert (tmp_path / "fake-actions.log").read_text() == "Bern\n"
    assert tool_messages_are_paired(fake_model.last_messages())
    with sqlite3.connect(tmp_path / "data" / "chatbot.db") as db:
        stored = [
            json.loads(t) for (t,) in db.execute("SELECT tools FROM messages WHERE tools != '' ORDER BY id")
        ]
    assert [[c["name"] for s in t["steps"] for c in s["calls"]] for t in stored] == [
        ["get_weather", "create_ticket"],
        ["create_ticket"],
    ]


async def test_the_terminal_shows_the_step_limit_as_a_sentence(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    fake_model.default = lambda body: Reply(tool_calls=[tool_call("get_time", {})])
    tools = write_tools_file(tmp_path, max_steps=2)
    code, out, err = await run_chatbot(["chat"], b"what time is it?\n", tmp_path, env_for(fake_model, tools))
    assert code == 0, err
    assert out.strip() == (
        "⚠️ I stopped here: this question needed more than 2 tool steps. Ask something narrower, or ask me to go on."
    )
    assert "Traceback" not in err
