"""Tool calls read off the wire: pieces joined by index whatever the framing, a non-streamed answer's calls,
what counts as a server refusing tools, and tools configurations that are wrong said in one line."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest

from core.bot_profile import ModelParams
from core.errors import ConfigError
from core.model_client import OpenAIChatModel, refuses_tools
from core.tools import ToolCall
from features.tools.config import ToolsConfig
from tests.fakes.openai_server import FakeOpenAI, Reply, tool_call

MESSAGES = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]


def sse(*payloads: dict[str, Any]) -> list[bytes]:
    return [f"data: {json.dumps(p)}\r\n\r\n".encode() for p in payloads] + [b"data: [DONE]\r\n\r\n"]


def delta(value: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": value, "finish_reason": finish}]}  # fmt: skip


async def calls_of(fake: FakeOpenAI, *, stream: bool = True) -> tuple[list[str], list[ToolCall], str | None]:
    model = OpenAIChatModel.connect(fake.base_url, "sk-test", max_retries=0)
    try:
        reply = model.stream("m", MESSAGES, ModelParams(), tools=TOOLS)
        pieces = [piece async for piece in reply]
        calls = list(getattr(reply, "tool_calls", []))
        return pieces, calls, reply.finish_reason
    finally:
        await model.close()


async def test_interleaved_calls_split_into_pieces_are_joined_by_index(fake_model: FakeOpenAI) -> None:
    # two calls whose argument pieces interleave, as parallel calls may stream (OpenAI streaming guide)
    fake_model.queue(
        Reply(
            raw_sse=sse(
                delta({"role": "assistant", "content": "One moment."}),
                delta({"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                delta({"tool_calls": [{"index": 1, "id": "b", "type": "function", "function": {"name": "get_time", "arguments": '{"zo'}}]}),
                delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
                delta({"tool_calls": [{"index": 1, "function": {"arguments": 'ne": "UTC"}'}}]}),
                delta({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
                delta({}, "tool_calls"),
            )
        )
    )  # fmt: skip
    pieces, calls, finish = await calls_of(fake_model)
    assert pieces == ["One moment."]
    assert finish == "tool_calls"
    assert calls == [
        ToolCall("a", "get_weather", '{"city": "Oslo"}'),
        ToolCall("b", "get_time", '{"zone": "UTC"}'),
    ]
    assert fake_model.chat_requests[0]["tools"] == TOOLS


async def test_the_fake_models_scripted_calls_arrive_whole(fake_model: FakeOpenAI) -> None:
    fake_model.queue(Reply(tool_calls=[tool_call("get_weather", {"city": "Lyon"}, "x")], chunk_size=3))
    _pieces, calls, finish = await calls_of(fake_model)
    assert calls == [ToolCall("x", "get_weather", '{"city": "Lyon"}')] and finish == "tool_calls"


def refusal(status: int, message: str) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, request=request)
    return openai.APIStatusError(message, response=response, body=None)


@pytest.mark.parametrize(
    ("message", "refused"),
    [
        ("tools param requires --jinja flag", True),  # llama-server without --jinja
        ("registry.ollama.ai/library/gemma3:270m does not support tools", True),  # Ollama
        (
            '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
            True,
        ),  # vLLM
        ("No endpoints found that support tool use", True),  # OpenRouter
        (
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
            "'tool_calls'.",
            False,
        ),  # a broken request: reported, not hidden by a retry without tools
        ("This model's maximum context length is 4096 tokens.", False),
    ],
)
def test_only_errors_that_say_tools_are_unsupported_count_as_a_refusal(message: str, refused: bool) -> None:
    assert refuses_tools(refusal(400, message)) is refused


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"servers": [{"name": "x", "tools": ["a"]}]}, "a stdio server needs a command"),
        ({"servers": [{"name": "x", "transport": "http", "tools": ["a"]}]}, "an http server needs a url"),
        ({"servers": [{"name": "x", "command": "c", "tools": []}]}, "servers.0.tools"),
        ({"servers": [{"name": "bad name!", "command": "c", "tools": ["a"]}]}, "servers.0.name"),
        ({"servers": [{"name": "x", "command": "c", "tools": ["a"], "typo": 1}]}, "servers.0.typo"),
        ({"servers": [{"name": "x", "command": "c", "tools": ["a"]}] * 2}, "must be unique"),
        ({"limits": {"max_steps": 0}}, "limits.max_steps"),
    ],
)
def test_a_wrong_tools_configuration_is_one_line_naming_the_field(data: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        ToolsConfig.parse(data, "bot 'orbit'")
    message = str(raised.value)
    assert says in message and message.startswith("bot 'orbit': ") and "\n" not in message
