"""The fake model server with a stopwatch: when each streamed reply's first and last token left the server.

:class:`TimedFakeOpenAI` is :class:`tests.fakes.openai_server.FakeOpenAI` (same knobs, same script) whose
streaming answers also record, per request, ``time.monotonic()`` just before the first and the last
content chunk is written to the socket. The benchmarks run the bot and the platform fakes in the same
process, so these times compare directly with the arrival times the platform fakes record.
Non-streaming requests and scripted errors are answered by the original server unchanged.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.openai_server import FakeOpenAI, estimate_prompt_tokens


@dataclass
class StreamTiming:
    """One streamed reply as the model server sent it. ``key`` is the prompt's last user message."""

    key: str
    requested: float
    first_token: float = 0.0
    last_token: float = 0.0
    chunks: int = 0
    done: bool = False

    @property
    def duration(self) -> float:
        return self.last_token - self.first_token


@dataclass
class TimedFakeOpenAI(FakeOpenAI):
    """A :class:`FakeOpenAI` that timestamps the first and last token of every streamed reply."""

    timings: dict[str, StreamTiming] = field(default_factory=dict)

    def timing(self, key: str) -> StreamTiming | None:
        """The timing of the (latest) streamed reply to a prompt whose last user message is ``key``."""
        return self.timings.get(key)

    async def _answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if not body.get("stream") or self.context_limit is not None or self.reject_stream_options:
            return await super()._answer(request, body)
        reply = self._reply_for(body)
        if reply.status != 200 or reply.fail_after is not None:
            self.script.appendleft(reply)  # the original server answers errors and failures as scripted
            return await super()._answer(request, body)
        users = [m for m in body["messages"] if m.get("role") == "user"]
        timing = StreamTiming(key=str(users[-1]["content"]) if users else "", requested=time.monotonic())
        self.timings[timing.key] = timing
        model = body.get("model", "fake-model")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        async def send(payload: dict[str, Any]) -> None:
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        await send(chunk({"role": "assistant", "content": ""}))
        if reply.first_delay:
            await asyncio.sleep(reply.first_delay)
        pieces = [reply.text[i : i + reply.chunk_size] for i in range(0, len(reply.text), reply.chunk_size)]
        for index, piece in enumerate(pieces):
            if reply.delay and index:
                await asyncio.sleep(reply.delay)
            now = time.monotonic()
            if index == 0:
                timing.first_token = now
            timing.last_token = now
            timing.chunks += 1
            await send(chunk({"content": piece}))
        await send(chunk({}, "stop"))
        if reply.usage and (body.get("stream_options") or {}).get("include_usage"):
            prompt = estimate_prompt_tokens(body["messages"])
            completion = max(1, len(reply.text) // 4)
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            await send({**chunk({}), "choices": [], "usage": usage})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        timing.done = True
        return response
