"""The real HTTP path (issue 19 target 1): the real openai client against the instant fake model server
running in another process, so this process's CPU time is the client's alone.

Two stream parsers side by side in one run: the SDK's chunk objects (``AsyncStream[ChatCompletionChunk]``,
what the bot used before) and :class:`core.chat_stream.ChunkStream` (the SSE body parsed with one
``json.loads`` per event). Both send the request through the same ``client.post``.

- CPU per chunk is the marginal cost: CPU per reply of a long stream minus that of a short one, divided by
  the difference in chunks, so request and turn overhead cancel out;
- turns/s runs whole engine turns (store, trimming, the model call over HTTP) with concurrent sessions and
  the instant model (the fake answers ``You said: <message>`` in 8-character chunks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI, AsyncStream
from openai._streaming import SSEDecoder
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from bench.report import Section
from bots.registry import get_bot
from bots.settings import Settings
from core.bot_profile import ModelParams
from core.chat_stream import LineSplitter, StreamChunk, events, read_chunk
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from core.model_client import OpenAIChatModel
from core.sqlite_store import SQLiteStore
from core.tokens import TokenCounter

ROOT = Path(__file__).resolve().parent.parent
HEADER = ("measure", "SDK objects (before)", "parsed SSE (now)", "ratio", "target")
CHUNK = 8  # the fake's characters per content chunk
PREFIX = "You said: "


class _SDKChunks:
    """The SDK's own stream, its objects read as the bot read them before (the "before" column)."""

    def __init__(self, stream: AsyncStream[ChatCompletionChunk]) -> None:
        self._stream = stream

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[StreamChunk]:
        async for chunk in self._stream:
            usage = chunk.usage
            counts = (int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)) if usage else None
            if not chunk.choices:
                yield StreamChunk(None, None, counts)
                continue
            choice = chunk.choices[0]
            finish = str(choice.finish_reason) if choice.finish_reason else None
            yield StreamChunk(choice.delta.content if choice.delta else None, finish, counts)

    async def close(self) -> None:
        await self._stream.close()


class SDKObjectsModel(OpenAIChatModel):
    """The model client as it was: the same request, the stream parsed into the SDK's chunk objects."""

    async def post_chat(self, body: dict[str, Any], *, stream: bool) -> Any:
        if not stream:
            return await super().post_chat(body, stream=False)
        sdk: AsyncStream[ChatCompletionChunk] = await self.client.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            stream=True,
            stream_cls=AsyncStream[ChatCompletionChunk],
            options={"security": {"bearer_auth": True}},
        )
        return _SDKChunks(sdk)


MODELS: dict[str, type[OpenAIChatModel]] = {"sdk": SDKObjectsModel, "parsed": OpenAIChatModel}


@contextlib.asynccontextmanager
async def model_server() -> AsyncIterator[tuple[str, int]]:
    """tests/packaging/serve_fake_model.py in its own process; yields its base URL and process id."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.packaging.serve_fake_model",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        yield line.decode().strip(), process.pid
    finally:
        process.stdin.close()  # the server stops when its stdin closes
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far, from /proc (nan elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chunks_in_reply(message: str) -> int:
    """Events the fake streams for ``message``: a role chunk, the content chunks, finish, usage."""
    return math.ceil(len(PREFIX + message) / CHUNK) + 3


async def cpu_per_reply(model: OpenAIChatModel, message: str, replies: int) -> float:
    """Mean CPU seconds of this process per streamed reply, the replies one after another."""
    messages = [{"role": "user", "content": message}]
    params = ModelParams(max_tokens=4096)
    for _ in range(3):  # warm the connection pool
        async for _piece in model.stream("gpt-4", messages, params):
            pass
    start = time.process_time()
    for _ in range(replies):
        async for _piece in model.stream("gpt-4", messages, params):
            pass
    return (time.process_time() - start) / replies


async def cpu_per_chunk(base_url: str, kind: str, long_chunks: int, replies: int) -> float:
    model = MODELS[kind].connect(base_url, "sk-bench", max_retries=0)
    try:
        short, long = "hi", "x" * (long_chunks * CHUNK)
        short_cpu = await cpu_per_reply(model, short, replies)
        long_cpu = await cpu_per_reply(model, long, replies)
    finally:
        await model.close()
    return (long_cpu - short_cpu) / (chunks_in_reply(long) - chunks_in_reply(short))


async def turns_per_second(
    base_url: str, server_pid: int, kind: str, concurrency: int, turns_each: int
) -> tuple[float, float, float]:
    """Whole engine turns over real HTTP: turns per second, CPU ms per turn here and in the fake server."""
    settings = Settings(_env_file=None, CHATBOT_MODEL="gpt-4", CHATBOT_CONTEXT_TOKENS=8192)  # type: ignore[call-arg]
    bot = get_bot("default").with_settings(settings)
    model = MODELS[kind].connect(base_url, "sk-bench", max_retries=0)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        await store.open()
        engine = ConversationEngine(bot, store, model, TokenCounter(bot.model_name, allow_download=False))

        async def session(index: int, turns: int) -> None:
            for i in range(turns):
                await engine.reply_text(
                    IncomingMessage(f"http:{index}", f"message {i} of the bench", "bench:u")
                )

        await asyncio.gather(*(session(-1 - i, 2) for i in range(concurrency)))  # connections, caches
        cpu_start, start = time.process_time(), time.perf_counter()
        server_start = process_cpu(server_pid)
        await asyncio.gather(*(session(i, turns_each) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        server_cpu = process_cpu(server_pid) - server_start
        await store.close()
        await model.close()
    total = concurrency * turns_each
    return total / elapsed, cpu * 1000 / total, server_cpu * 1000 / total


def recorded_body(content_chunks: int) -> list[bytes]:
    """A streamed reply's body as the fake sends it, one HTTP chunk per event."""
    pieces = []
    for i in range(content_chunks + 2):
        finish = "stop" if i == content_chunks + 1 else None
        delta = (
            {"role": "assistant", "content": ""}
            if i == 0
            else {"content": "x" * CHUNK}
            if finish is None
            else {}
        )
        event = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4"}
        event["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
        pieces.append(f"data: {json.dumps(event)}\n\n".encode())
    usage = {
        "prompt_tokens": 9,
        "completion_tokens": content_chunks * 2,
        "total_tokens": 9 + content_chunks * 2,
    }
    pieces.append(f"data: {json.dumps({'id': 'c', 'choices': [], 'usage': usage})}\n\n".encode())
    pieces.append(b"data: [DONE]\n\n")
    return pieces


def parse_cpu_per_event(kind: str, body: list[bytes], rounds: int) -> float:
    """CPU seconds per event to parse a recorded body, no I/O: the SDK's decoder and chunk objects as its
    stream does it (openai/_streaming.py), or :mod:`core.chat_stream`."""
    client = AsyncOpenAI(api_key="sk-bench", base_url="http://127.0.0.1:9/v1")
    request: Any = None
    text = 0
    start = time.process_time()
    for _ in range(rounds):
        if kind == "sdk":
            for sse in SSEDecoder().iter_bytes(iter(body)):
                if sse.data.startswith("[DONE]"):
                    break
                item = client._process_response_data(
                    data=sse.json(), cast_to=ChatCompletionChunk, response=request
                )
                if item.choices and item.choices[0].delta.content:
                    text += len(item.choices[0].delta.content)
        else:
            splitter, pending = LineSplitter(), []
            for block in body:
                for payload in events(splitter.feed(block), pending):
                    if payload.startswith(b"[DONE]"):
                        break
                    chunk = read_chunk(payload, request)
                    if chunk.text:
                        text += len(chunk.text)
    return (time.process_time() - start) / (rounds * (len(body) - 1))


def _verdict(met: bool, what: str) -> str:
    return f"{what}: {'met' if met else 'missed'}"


async def run(quick: bool = False) -> Section:
    long_chunks, replies = (200, 10) if quick else (400, 30)
    concurrency, turns_each = (20, 10) if quick else (20, 50)
    async with model_server() as (base_url, pid):
        per_chunk = {kind: await cpu_per_chunk(base_url, kind, long_chunks, replies) for kind in MODELS}
        rates = {
            kind: await turns_per_second(base_url, pid, kind, concurrency, turns_each) for kind in MODELS
        }
    body = recorded_body(long_chunks)
    parse = {kind: parse_cpu_per_event(kind, body, 20 if quick else 100) for kind in MODELS}
    parse_ratio = parse["sdk"] / parse["parsed"]
    chunk_ratio = per_chunk["sdk"] / per_chunk["parsed"]
    turn_rate = rates["parsed"][0]
    rows = [
        (
            f"CPU to parse one event (recorded {len(body) - 1}-event body, in-process, no I/O)",
            f"{parse['sdk'] * 1e6:.1f} µs",
            f"{parse['parsed'] * 1e6:.1f} µs",
            f"{parse_ratio:.1f}x cheaper",
            _verdict(parse_ratio >= 5, ">= 5x"),
        ),
        (
            f"CPU per streamed chunk (marginal, replies of {chunks_in_reply('x' * long_chunks * CHUNK)} "
            f"vs {chunks_in_reply('hi')} events)",
            f"{per_chunk['sdk'] * 1e6:.1f} µs",
            f"{per_chunk['parsed'] * 1e6:.1f} µs",
            f"{chunk_ratio:.1f}x cheaper",
            _verdict(chunk_ratio >= 5, ">= 5x"),
        ),
        (
            f"engine turns/s measured, {concurrency} concurrent sessions, replies of 7 events",
            f"{rates['sdk'][0]:.0f} turns/s",
            f"{turn_rate:.0f} turns/s",
            f"{turn_rate / rates['sdk'][0]:.1f}x",
            _verdict(turn_rate >= 500, ">= 500 turns/s"),
        ),
        (
            "CPU per engine turn (this process)",
            f"{rates['sdk'][1]:.2f} ms",
            f"{rates['parsed'][1]:.2f} ms",
            f"{rates['sdk'][1] / rates['parsed'][1]:.1f}x",
            "",
        ),
        (
            "turns/s one process can carry (1 s / its CPU per turn)",
            f"{1000 / rates['sdk'][1]:.0f} turns/s",
            f"{1000 / rates['parsed'][1]:.0f} turns/s",
            f"{rates['sdk'][1] / rates['parsed'][1]:.1f}x",
            _verdict(1000 / rates["parsed"][1] >= 500, ">= 500 turns/s"),
        ),
        (
            "CPU per turn in the fake server's process (not ours)",
            f"{rates['sdk'][2]:.2f} ms",
            f"{rates['parsed'][2]:.2f} ms",
            "",
            "",
        ),
    ]
    return Section(
        title="Real HTTP path: the openai client against the instant fake model in another process (target 1)",
        header=HEADER,
        rows=rows,
        notes=[
            "Path: real HTTP (aiohttp fake server in its own process, openai client in this one); window 8,192 "
            "tokens. Both columns send the request through the same client.post; only the stream parsing "
            "differs. CPU is this process's (time.process_time); turns/s also depends on the fake server's "
            "process sharing the machine's cores."
            + " Parsing is the first row; the marginal row also holds what both columns share per chunk: "
            "h11 reading one HTTP chunk per event through httpx2, and the stall time limit's asyncio.timeout "
            "(about 3.6 µs) around each read."
            + (f" Quick mode: {replies} replies per size, {turns_each} turns per session." if quick else ""),
        ],
    )
