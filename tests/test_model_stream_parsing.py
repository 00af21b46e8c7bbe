"""Issue 19 target 1: streamed replies parsed from the SSE body (core/chat_stream.py) instead of the SDK's
chunk objects. What the engine gets (text deltas, usage, finish_reason, errors) must not change, whatever
framing a server uses; the fake server sends each framing over real HTTP to the real openai client.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from core.bot_profile import ModelParams
from core.chat_stream import LineSplitter
from core.errors import StreamIncomplete
from core.model_client import OpenAIChatModel, Usage
from tests.fakes.openai_server import FakeOpenAI, Reply

MESSAGES = [{"role": "user", "content": "hi"}]


def chunk(content: str | None = None, finish: str | None = None, usage: dict[str, int] | None = None) -> str:
    choices = [] if usage else [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    body: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    body["choices"] = choices
    if usage:
        body["usage"] = usage
    return json.dumps(body)


USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


async def streamed(fake: FakeOpenAI) -> tuple[list[str], Usage | None, str | None, Exception | None]:
    model = OpenAIChatModel.connect(fake.base_url, "sk-test", max_retries=0)
    stream = model.stream("m", MESSAGES, ModelParams())
    pieces: list[str] = []
    error: Exception | None = None
    try:
        async for piece in stream:
            pieces.append(piece)
    except Exception as exc:
        error = exc
    finally:
        await model.close()
    return pieces, stream.usage, stream.finish_reason, error


async def test_crlf_framed_stream_gives_the_same_deltas_usage_and_finish_reason(
    fake_model: FakeOpenAI,
) -> None:
    fake_model.queue(
        Reply(
            raw_sse=[
                f"data: {chunk('Hel')}\r\n\r\n".encode(),
                f"data: {chunk('lo')}\r\n\r\ndata: {chunk(None, 'stop')}\r\n\r\n".encode(),
                f"data: {chunk(usage=USAGE)}\r\n\r\ndata: [DONE]\r\n\r\n".encode(),
            ]
        )
    )
    pieces, usage, finish, error = await streamed(fake_model)
    assert (pieces, usage, finish, error) == (["Hel", "lo"], Usage(11, 3), "stop", None)


async def test_cr_only_line_ends_split_from_their_lf_across_reads_end_no_event_early(
    fake_model: FakeOpenAI,
) -> None:
    # one event's JSON over two data lines; the CRLF between them is split across two writes, so a parser
    # that took the lone LF for a blank line would dispatch half a JSON document
    first, second = chunk("Hello"), chunk(None, "stop")
    fake_model.queue(
        Reply(
            raw_sse=[
                f"data: {first[:20]}\r".encode(),
                f"\ndata: {first[20:]}\r\n\r".encode(),
                f"\ndata: {second}\r\rdata: [DONE]\r\r".encode(),
            ]
        )
    )
    pieces, _, finish, error = await streamed(fake_model)
    assert (pieces, finish, error) == (["Hello"], "stop", None)


async def test_comments_keep_alives_and_other_fields_are_ignored(fake_model: FakeOpenAI) -> None:
    fake_model.queue(
        Reply(
            raw_sse=[
                b": OPENROUTER PROCESSING\n\n",
                f"id: 1\nevent: message\nretry: 3000\ndata: {chunk('one ')}\n\n".encode(),
                b":keep-alive\n\n",
                f"data:{chunk('two')}\n\n".encode(),  # no space after the colon
                f"data: {chunk(None, 'length')}\n\ndata: [DONE]\n\n".encode(),
            ]
        )
    )
    pieces, _, finish, error = await streamed(fake_model)
    assert (pieces, finish, error) == (["one ", "two"], "length", None)


async def test_multi_line_data_is_one_payload(fake_model: FakeOpenAI) -> None:
    body = json.dumps(json.loads(chunk("multi")), indent=1)  # the JSON spread over several data lines
    data = "".join(f"data: {line}\n" for line in body.splitlines())
    fake_model.queue(Reply(raw_sse=[f"{data}\ndata: {chunk(None, 'stop')}\n\ndata: [DONE]\n\n".encode()]))
    pieces, _, finish, error = await streamed(fake_model)
    assert (pieces, finish, error) == (["multi"], "stop", None)


async def test_nothing_after_done_reaches_the_reply(fake_model: FakeOpenAI) -> None:
    fake_model.queue(
        Reply(
            raw_sse=[
                f"data: {chunk('kept', 'stop')}\n\ndata: [DONE]\n\n".encode(),
                f"data: {chunk('dropped')}\n\n".encode(),
            ]
        )
    )
    pieces, _, finish, error = await streamed(fake_model)
    assert (pieces, finish, error) == (["kept"], "stop", None)


async def test_an_error_event_after_text_is_an_incomplete_reply_naming_the_servers_message(
    fake_model: FakeOpenAI,
) -> None:
    error_event = json.dumps({"error": {"message": "upstream model crashed", "type": "server_error"}})
    fake_model.queue(
        Reply(
            raw_sse=[
                f"data: {chunk('partial')}\n\n".encode(),
                f"event: error\ndata: {error_event}\n\n".encode(),
            ]
        )
    )
    pieces, _, _, error = await streamed(fake_model)
    assert pieces == ["partial"]
    assert isinstance(error, StreamIncomplete)
    assert "upstream model crashed" in str(error)


async def test_a_chunk_that_is_not_json_is_an_incomplete_reply_saying_so(fake_model: FakeOpenAI) -> None:
    fake_model.queue(Reply(raw_sse=[f"data: {chunk('ok ')}\n\ndata: {{not json\n\n".encode()]))
    pieces, _, _, error = await streamed(fake_model)
    assert pieces == ["ok "]
    assert isinstance(error, StreamIncomplete)
    assert "not JSON" in str(error)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="A reply long enough for several chunks of eight characters."),
        Reply(text="cut short here", finish_reason="length", chunk_size=3),
        Reply(text="no usage at all", usage=False),
        Reply(text="", finish_reason="content_filter"),
    ],
)
async def test_the_parsed_stream_matches_the_sdks_objects(fake_model: FakeOpenAI, reply: Reply) -> None:
    fake_model.queue(reply)
    pieces, usage, finish, error = await streamed(fake_model)
    fake_model.queue(reply)
    model = OpenAIChatModel.connect(fake_model.base_url, "sk-test", max_retries=0)
    sdk: AsyncStream[ChatCompletionChunk] = await model.client.post(
        "/chat/completions",
        body={"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}},
        cast_to=ChatCompletion,
        stream=True,
        stream_cls=AsyncStream[ChatCompletionChunk],
    )
    expected: list[str] = []
    expected_usage: Usage | None = None
    expected_finish: str | None = None
    async for item in sdk:
        if item.usage is not None:
            expected_usage = Usage(item.usage.prompt_tokens, item.usage.completion_tokens)
        if item.choices:
            expected_finish = item.choices[0].finish_reason or expected_finish
            if item.choices[0].delta.content:
                expected.append(item.choices[0].delta.content)
    await model.close()
    assert (pieces, usage, finish, error) == (expected, expected_usage, expected_finish, None)


def test_lines_split_at_every_byte_come_out_whole() -> None:
    body = b"data: a\r\n\r\n: c\rdata: b\n\ndata: x\r\ndata: y\r\r\n"
    whole = LineSplitter().feed(body)
    splitter = LineSplitter()
    pieces = [line for i in range(len(body)) for line in splitter.feed(body[i : i + 1])]
    assert pieces == whole == [b"data: a", b"", b": c", b"data: b", b"", b"data: x", b"data: y", b""]
