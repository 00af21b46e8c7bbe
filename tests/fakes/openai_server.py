"""A fake OpenAI-compatible server on 127.0.0.1 for the real openai client.

Serves ``POST /v1/chat/completions`` (streaming SSE with the usage chunk, or one JSON answer),
``POST /v1/embeddings`` (deterministic hashed-word vectors, see :func:`embed`) and ``GET /v1/models``. Replies are scripted with :class:`Reply` (text, chunking, pace, errors); without a
script it answers ``You said: <last user message>``. Every request body is recorded, so tests can assert
what the model was sent. ``context_limit`` makes it answer ``context_length_exceeded`` like OpenAI does
when a prompt's (estimated) tokens exceed it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """One scripted answer.

    ``status`` other than 200 answers an error (``retry_after`` sets the header); ``fail_after`` chunks
    ends the stream with an error event; ``delay`` waits before each chunk; ``first_delay`` before the first;
    ``hold``, when given, keeps the first chunk back until the test sets it (a model that is still thinking
    for exactly as long as the test needs, instead of a guessed delay).
    """

    text: str = ""
    chunk_size: int = 8
    delay: float = 0.0
    first_delay: float = 0.0
    status: int = 200
    retry_after: float | None = None
    error_code: str | None = None
    error_message: str = "scripted error"
    fail_after: int | None = None
    usage: bool = True
    hold: asyncio.Event | None = None


EMBED_DIMENSIONS = 256
_WORD = re.compile(r"[a-z0-9]+")


def embed(text: str) -> list[float]:
    """Deterministic embedding: hashed counts of words (lightly stemmed) and word pairs, L2-normalised,
    so texts that share words are close."""
    vector = [0.0] * EMBED_DIMENSIONS
    words = [w[:6] for w in _WORD.findall(text.lower()) if len(w) > 2]
    for feature in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % EMBED_DIMENSIONS
        vector[index] += 1.0 if digest[4] % 2 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The fake's own token estimate: 4 characters a token plus 4 a message."""
    return sum(len(str(m.get("content", ""))) // 4 + 4 for m in messages) + 3


@dataclass
class FakeOpenAI:
    """The server and its knobs. ``await start()`` returns the base URL to give the client."""

    context_limit: int | None = None
    reject_stream_options: bool = False
    usage_factor: float = 1.0
    embedding_failures: int = 0
    # called with (request body, chunk index, is last) just before each streamed content chunk is written
    on_chunk: Callable[[dict[str, Any], int, bool], None] | None = None
    default: Callable[[dict[str, Any]], str | Reply] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    request_times: list[tuple[float, float]] = field(default_factory=list)
    script: deque[Reply] = field(default_factory=deque)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    def queue(self, *replies: Reply | str) -> None:
        for reply in replies:
            self.script.append(Reply(text=reply) if isinstance(reply, str) else reply)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "messages" in r]

    def last_messages(self) -> list[dict[str, Any]]:
        return list(self.chat_requests[-1]["messages"])

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.embedding_failures:
            self.embedding_failures -= 1
            return self._error(500, "embedding backend hiccup")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": embed(str(text))}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(str(t)) // 4 for t in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "fake-embed"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    def _reply_for(self, body: dict[str, Any]) -> Reply:
        if self.script:
            return self.script.popleft()
        if self.default is not None:
            answer = self.default(body)
            return answer if isinstance(answer, Reply) else Reply(text=answer)
        user = [m for m in body["messages"] if m.get("role") == "user"]
        return Reply(text=f"You said: {user[-1]['content'] if user else ''}")

    @staticmethod
    def _error(
        status: int, message: str, code: str | None = None, retry_after: float | None = None
    ) -> web.Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
        return web.json_response(body, status=status, headers=headers)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        body = await request.json()
        self.requests.append(body)
        try:
            return await self._answer(request, body)
        finally:
            self.request_times.append((started, time.monotonic()))

    async def _answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if self.reject_stream_options and "stream_options" in body:
            return self._error(400, "Unrecognized request argument supplied: stream_options")
        prompt_tokens = estimate_prompt_tokens(body["messages"])
        if (
            self.context_limit is not None
            and prompt_tokens + int(body.get("max_tokens") or 0) > self.context_limit
        ):
            return self._error(
                400,
                f"This model's maximum context length is {self.context_limit} tokens. However, your messages "
                f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
                code="context_length_exceeded",
            )
        reply = self._reply_for(body)
        if reply.status != 200:
            return self._error(reply.status, reply.error_message, reply.error_code, reply.retry_after)
        usage = {
            "prompt_tokens": int(prompt_tokens * self.usage_factor),
            "completion_tokens": max(1, len(reply.text) // 4),
            "total_tokens": int(prompt_tokens * self.usage_factor) + max(1, len(reply.text) // 4),
        }
        model = body.get("model", "fake-model")
        if not body.get("stream"):
            if reply.first_delay:
                await asyncio.sleep(reply.first_delay)
            if reply.hold is not None:
                await reply.hold.wait()
            return web.json_response(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
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
        if reply.hold is not None:
            await reply.hold.wait()
        pieces = [reply.text[i : i + reply.chunk_size] for i in range(0, len(reply.text), reply.chunk_size)]
        for index, piece in enumerate(pieces):
            if reply.fail_after is not None and index >= reply.fail_after:
                await send(
                    {"error": {"message": "upstream model crashed", "type": "server_error", "code": None}}
                )
                await response.write_eof()
                return response
            if reply.delay and index:
                await asyncio.sleep(reply.delay)
            if self.on_chunk is not None:
                self.on_chunk(body, index, index == len(pieces) - 1)
            await send(chunk({"content": piece}))
        await send(chunk({}, "stop"))
        if reply.usage and (body.get("stream_options") or {}).get("include_usage"):
            await send(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
