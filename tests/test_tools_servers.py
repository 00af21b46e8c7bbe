"""MCP servers around the bot: a published reference server, a server that dies and comes back, one that is
down at start, streamable HTTP, and the tool loop seen through the Telegram fake (the progress line while a
tool runs, the clean final text)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import adapters.telegram.runner as telegram_runner
from adapters.telegram import TelegramTuning
from bots.app import open_engine, running_platforms
from core.conversation import ConversationEngine
from core.tool_loop import ToolRunner
from features.tools.toolbox import MCPToolBox
from tests.fakes.openai_server import FakeOpenAI, Reply, tool_call
from tests.fakes.telegram_api import FakeTelegram
from tests.support.engines import engine_for, said, settings_for
from tests.support.services import free_port
from tests.support.tools import ROOT, fake_server, stored_replies, write_tools_file
from tests.support.waiting import eventually

SESSION = "test:servers"


def toolbox_of(engine: ConversationEngine) -> MCPToolBox:
    assert isinstance(engine.tools, ToolRunner)
    box = engine.tools.toolbox
    assert isinstance(box, MCPToolBox)
    return box


async def test_the_published_mcp_server_time_answers_through_the_bot(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    pytest.importorskip("mcp_server_time", reason="mcp-server-time is in the dev extra")
    server = {
        "name": "clock",
        "command": sys.executable,
        "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
        "tools": ["get_current_time"],
    }
    fake_model.queue(
        Reply(tool_calls=[tool_call("get_current_time", {"timezone": "Asia/Tokyo"}, "now")]),
        Reply(text="It is evening in Tokyo."),
    )
    tools = write_tools_file(tmp_path, [server])
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        reply = await engine.reply_text(said(SESSION, "time in Tokyo?"))
    assert reply == "It is evening in Tokyo."
    assert [t["function"]["name"] for t in fake_model.chat_requests[0]["tools"]] == ["get_current_time"]
    result = json.loads(fake_model.chat_requests[1]["messages"][-1]["content"])
    assert result["timezone"] == "Asia/Tokyo" and "datetime" in result


async def test_a_server_that_dies_is_restarted_and_meanwhile_the_bot_answers_without_it(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "server.pid"
    tools = write_tools_file(tmp_path, [fake_server(tmp_path=tmp_path, FAKE_MCP_PIDFILE=str(pidfile))])
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        (link,) = toolbox_of(engine).links
        first_pid = int(pidfile.read_text())
        os.kill(first_pid, signal.SIGKILL)  # the server process the link started
        await eventually(lambda: not link.up, within=20.0)
        fake_model.queue(Reply(text="Answered while the tools were away."))
        meanwhile = await engine.reply_text(said(SESSION, "hello"))
        await eventually(lambda: link.connects == 2 and link.up, within=20.0)
        fake_model.queue(
            Reply(tool_calls=[tool_call("get_weather", {"city": "Lima"}, "w")]), Reply(text="Sunny in Lima.")
        )
        after = await engine.reply_text(said(SESSION, "weather in Lima?"))
    assert meanwhile == "Answered while the tools were away."
    assert not fake_model.chat_requests[0].get("tools"), "a dead server's tools are not offered"
    assert int(pidfile.read_text()) != first_pid
    assert after == "Sunny in Lima."
    assert fake_model.chat_requests[-1]["messages"][-1]["content"] == "Sunny and 21 °C in Lima."


async def test_a_server_down_at_start_leaves_the_bot_up_with_the_other_servers_tools(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    down = {**fake_server("weather", FAKE_MCP_FAIL_START="1"), "tools": ["get_weather"]}
    up = {**fake_server("clock"), "tools": ["get_time"]}
    tools = write_tools_file(tmp_path, [down, up], start_seconds=3)
    fake_model.queue(
        Reply(tool_calls=[tool_call("get_weather", {"city": "Oslo"}, "w")]), Reply(text="No weather today.")
    )
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine:
        reply = await engine.reply_text(said(SESSION, "weather?"))
    assert [t["function"]["name"] for t in fake_model.chat_requests[0]["tools"]] == ["get_time"]
    assert reply == "No weather today."
    told = fake_model.chat_requests[1]["messages"][-1]["content"]
    assert told == "Error: there is no tool named 'get_weather'. Available tools: get_time."


@contextlib.asynccontextmanager
async def http_mcp_server(port: int) -> AsyncIterator[None]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_MCP_HTTP_PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.mcp_server",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(20):
            while True:
                try:
                    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                break
        yield
    finally:
        process.kill()
        await process.wait()


async def test_a_streamable_http_server_serves_its_tools(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MCP_TOKEN", "local-token")
    port = free_port()
    server = {
        "name": "remote",
        "transport": "http",
        "url": f"http://127.0.0.1:{port}/mcp",
        "headers": {"Authorization": "Bearer ${FAKE_MCP_TOKEN}"},
        "tools": ["get_weather"],
    }
    tools = write_tools_file(tmp_path, [server])
    fake_model.queue(
        Reply(tool_calls=[tool_call("get_weather", {"city": "Quito"}, "w")]), Reply(text="Mild in Quito.")
    )
    async with (
        http_mcp_server(port),
        engine_for(fake_model.base_url, db_path, CHATBOT_TOOLS_FILE=str(tools)) as engine,
    ):
        reply = await engine.reply_text(said(SESSION, "weather in Quito?"))
    assert reply == "Mild in Quito."
    assert fake_model.chat_requests[1]["messages"][-1]["content"] == "Sunny and 21 °C in Quito."


FAST = TelegramTuning(
    private_edit_interval=0.1,
    group_edit_interval=0.3,
    typing_interval=0.05,
    group_rate=100,
    group_per=1.0,
    poll_timeout=1.0,
    drain_grace=5.0,
)


async def test_telegram_shows_the_progress_line_while_a_tool_runs_and_a_clean_final_text(
    fake_model: FakeOpenAI,
    telegram: FakeTelegram,
    db_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(telegram_runner, "DEFAULT_TUNING", FAST)
    fake_model.queue(
        Reply(text="Checking the archive.", tool_calls=[tool_call("slow_lookup", {"seconds": 1.0}, "s")]),
        Reply(text="Found it: the answer is 42.", chunk_size=6, delay=0.02),
    )
    tools = write_tools_file(tmp_path)
    config = settings_for(
        fake_model.base_url,
        db_path,
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_BASE_URL=telegram.root,
        CHATBOT_TOOLS_FILE=str(tools),
    )
    chat = telegram.private_chat(1001)
    async with open_engine(config) as engine, running_platforms(config, engine, ["telegram"]) as runners:
        telegram.user_message(chat, "what is the answer?")
        await telegram.wait_for(
            lambda: bool(telegram.bot_messages(1001)) and runners[0].in_flight == 0, within=20
        )
    (message,) = telegram.bot_messages(1001)
    final = "Checking the archive.\n\nFound it: the answer is 42."
    assert message.text == final
    # a private chat streams in drafts (sendMessageDraft) and ends with one message: the progress line is
    # in what the user was shown on the way
    shown = [str(d.get("text")) for d in telegram.drafts_in(1001)] + list(message.versions)
    assert any(v.startswith("Checking the archive.\n\n🔧 Using slow lookup…") for v in shown)
    assert "🔧" not in message.text
    content, complete, stored = stored_replies(db_path)[0]
    assert complete and content == final
    assert json.loads(stored)["steps"][0]["results"] == {"s": "finally done"}


async def test_a_bot_definition_names_its_servers_and_tools(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    from dataclasses import replace

    from features import FeatureContext
    from features.tools import install as tools_install
    from features.tools.config import ToolsConfig

    config = settings_for(fake_model.base_url, db_path)
    definition = ToolsConfig.model_validate({"servers": [{**fake_server(), "tools": ["get_time"]}]})
    async with open_engine(config, features=False) as engine:
        engine.bot = replace(engine.bot, tools=definition)
        context = FeatureContext(config, engine, data_root=tmp_path)
        await tools_install.install(context)
        try:
            offered = [spec.name for spec in engine.tools.offered()] if engine.tools else []
        finally:
            for close in context.closers:
                await close()
    assert offered == ["get_time"]
