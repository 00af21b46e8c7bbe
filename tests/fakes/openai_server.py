"""A fake OpenAI-compatible server on 127.0.0.1 for the real openai client.

Serves ``POST /v1/chat/completions`` (streaming SSE with the usage chunk, or one JSON answer),
``POST /v1/embeddings`` (deterministic hashed-word vectors, see :func:`embed`) and ``GET /v1/models``. Replies are scripted with :class:`Reply` (text, chunking, pace, errors); without a
script it answers ``You said: <last user message>``. Every request body is recorded, so tests can assert
what the model was sent. ``context_limit`` makes it answer ``context_length_exceeded`` like OpenAI does
when a prompt's (estimated) tokens exceed it.

``dialect`` makes it behave like one real server family (issue 13; facts measured on real servers are in
PLATFORMS.md "Real model servers seen here"); each behaviour below names its source:

- ``openai``: today's behaviour (the default).
- ``vllm``: overflow is a 400 whose body is the error itself, not wrapped in ``"error"``
  (vllm/entrypoints/openai/serving_engine.py ``create_error_response``, ErrorResponse in protocol.py) with
  "This model's maximum context length is N tokens. However, you requested M tokens (P in the messages, C in
  the completion)..." (serving_engine.py ``_validate_input``); ``GET /v1/models`` lists ``max_model_len``
  (protocol.py ModelCard); ``POST /tokenize`` answers ``count``, ``max_model_len``, ``tokens``.
- ``llamacpp-python``: a streamed overflow is a 200 with an empty event stream (no data, no ``[DONE]``), a
  non-streamed one a 400 "Requested tokens (M) exceed context window of N" (llama_cpp/llama.py); no
  ``usage`` in streams; ``Reply.interrupt_after`` ends a stream with ``[DONE]`` and no ``finish_reason``
  (what it does when another request arrives); embeddings on a chat model are a 500 "Llama model must be
  created with embedding=True to call this method" (all measured, PLATFORMS.md).
- ``llama-server``: overflow is a 400 ``{"error":{"code":400,"message":"request (M tokens) exceeds the
  available context size (N tokens), try increasing it","type":"exceed_context_size_error",
  "n_prompt_tokens":M,"n_ctx":N}}`` (tools/server/utils.hpp, measured); with ``slot_overflow`` (several slots
  sharing one cache) an error event inside a 200 stream, ``{"error":{"code":500,"message":"Context size has
  been exceeded.","type":"server_error"}}`` (measured); ``GET /props`` answers ``n_ctx``,
  ``default_generation_settings.n_ctx`` and ``total_slots``; ``POST /tokenize`` answers ``tokens``
  (tools/server/README.md); without ``--embeddings``, ``/v1/embeddings`` is a 501 ``not_supported_error``.
- ``ollama``: never reports an overflow, it truncates the prompt silently (docs/context-length.mdx, docs
  faq.md); ``POST /api/show`` answers ``model_info`` (``<arch>.context_length``, the trained maximum) and
  ``parameters`` (``num_ctx N`` when the Modelfile sets it); ``GET /api/ps`` the loaded ``context_length``
  (docs/api.md).
- ``lmstudio``: overflow is a 400 whose ``error`` is a plain string, "The number of tokens to keep from
  the initial prompt is greater than the context length (n_keep: M>= n_ctx: N). Try to load the model with a
  larger context length, or provide a shorter input." (lmstudio-bug-tracker issues 546, 2205);
  ``GET /api/v0/models`` lists ``max_context_length`` and ``loaded_context_length``
  (lmstudio.ai/docs/app/api/endpoints/rest).

Tool calls (issue 18): ``Reply.tool_calls`` (see :func:`tool_call`) streams the reply's text, then each call
the way OpenAI streams them (https://platform.openai.com/docs/guides/function-calling, "Streaming"): a first
``delta.tool_calls`` piece with ``index``, ``id``, ``type`` and the function name, then the arguments in
pieces, and ``finish_reason: "tool_calls"``. ``reject_tools`` refuses requests carrying ``tools`` as a
real server that cannot take them does: ``llama-server`` started without ``--jinja`` answers a 500
``{"error":{"code":500,"message":"tools param requires --jinja flag","type":"server_error"}}``
(tools/server/utils.hpp ``oaicompat_chat_params_parse``), ``ollama`` with a model that has no tool template
a 400 ``{"error":"registry.ollama.ai/library/<model> does not support tools"}`` (ollama server/routes.go).
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

from tests.fakes.model_images import text_of
from tests.fakes.transcription_server import FakeTranscriptions


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
    # end the stream with [DONE] after this many content chunks, without a finish_reason
    interrupt_after: int | None = None
    finish_reason: str = "stop"
    # wait ``pause`` seconds before content chunk number ``pause_at`` (a server that stalls mid-reply)
    pause_at: int | None = None
    pause: float = 0.0
    # after the finish_reason chunk, wait this long before the usage chunk and [DONE]
    hang_at_end: float = 0.0
    hold: asyncio.Event | None = None
    # a streamed body written verbatim, one write per piece with a pause between (so pieces usually arrive
    # as separate reads): the framings servers really send, per the WHATWG event-stream rules
    # (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
    # CRLF or CR line ends, ':' comment / keep-alive lines, event/id/retry fields, multi-line data
    raw_sse: list[bytes] | None = None
    # calls the model asks for after its text (see tool_call); finish_reason becomes "tool_calls"
    tool_calls: list[dict[str, Any]] | None = None


def tool_call(name: str, arguments: dict[str, Any] | str | None = None, call_id: str = "") -> dict[str, Any]:
    """One scripted call; ``arguments`` as a dict (sent as JSON) or as raw text (to send broken JSON)."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return {"id": call_id or f"call_{name}_{abs(hash(raw)) % 10_000}", "name": name, "arguments": raw}


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
    dialect: str = "openai"
    slots: int = 1
    slot_overflow: bool = False
    serves_embeddings: bool = True
    embedding_token_limit: int | None = None
    ollama_num_ctx: int | None = None
    ollama_loaded_context: int | None = None
    trained_context: int = 131072
    reject_stream_options: bool = False
    reject_tools: str | None = None  # "llama-server" or "ollama": refuse a request with tools, as they do
    usage_factor: float = 1.0
    embedding_failures: int = 0
    # called with (request body, chunk index, is last) just before each streamed content chunk is written
    on_chunk: Callable[[dict[str, Any], int, bool], None] | None = None
    default: Callable[[dict[str, Any]], str | Reply] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    embedding_keys: list[str] = field(default_factory=list)  # the bearer key of each embeddings request
    request_times: list[tuple[float, float]] = field(default_factory=list)
    script: deque[Reply] = field(default_factory=deque)
    transcriptions: FakeTranscriptions = field(default_factory=FakeTranscriptions)  # /v1/audio/transcriptions
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
        app.router.add_post("/v1/audio/transcriptions", self.transcriptions.handle)
        if self.dialect == "llama-server":
            app.router.add_get("/props", self._props)
        if self.dialect in ("llama-server", "vllm"):
            app.router.add_post("/tokenize", self._tokenize)
        if self.dialect == "ollama":
            app.router.add_post("/api/show", self._ollama_show)
            app.router.add_get("/api/ps", self._ollama_ps)
        if self.dialect == "lmstudio":
            app.router.add_get("/api/v0/models", self._lmstudio_models)
        # handlers still sleeping (a scripted hang) must not hold up a test's teardown for a minute
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
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
        self.embedding_keys.append(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if self.embedding_failures:
            self.embedding_failures -= 1
            return self._error(500, "embedding backend hiccup")
        if not self.serves_embeddings:
            if self.dialect == "llama-server":
                return web.json_response(
                    {
                        "error": {
                            "code": 501,
                            "message": "This server does not support embeddings. Start it with `--embeddings`",
                            "type": "not_supported_error",
                        }
                    },
                    status=501,
                )
            return self._error(500, "Llama model must be created with embedding=True to call this method")
        if self.embedding_token_limit is not None:
            longest = max(
                len(str(t)) // 4
                for t in (body["input"] if isinstance(body["input"], list) else [body["input"]])
            )
            if longest > self.embedding_token_limit:
                # llama-server: tools/server/server.cpp, "input is too large to process. increase the
                # physical batch size"
                return self._error(500, "input is too large to process. increase the physical batch size")
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

    @property
    def window(self) -> int:
        """The context size the server reports about itself."""
        return self.context_limit or 4096

    async def _models(self, request: web.Request) -> web.Response:
        entry: dict[str, Any] = {"id": "fake-model", "object": "model"}
        if self.dialect == "vllm":
            entry["max_model_len"] = self.window
        return web.json_response({"object": "list", "data": [entry]})

    async def _props(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "default_generation_settings": {"n_ctx": self.window, "params": {}},
                "n_ctx": self.window,
                "total_slots": self.slots,
                "model_path": "/models/fake.gguf",
            }
        )

    async def _tokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        text = str(body.get("content", body.get("prompt", "")))
        tokens = list(range(max(0, len(text) // 4)))
        if self.dialect == "vllm":
            return web.json_response({"count": len(tokens), "max_model_len": self.window, "tokens": tokens})
        return web.json_response({"tokens": tokens})

    async def _ollama_show(self, request: web.Request) -> web.Response:
        body = await request.json()
        parameters = 'stop                           "<|eot_id|>"'
        if self.ollama_num_ctx is not None:
            parameters += f"\nnum_ctx                        {self.ollama_num_ctx}"
        return web.json_response(
            {
                "modelfile": "FROM /models/fake",
                "parameters": parameters,
                "details": {"family": "llama", "parameter_size": "8.0B"},
                "model_info": {"general.architecture": "llama", "llama.context_length": self.trained_context},
                "model": body.get("model"),
            }
        )

    async def _ollama_ps(self, request: web.Request) -> web.Response:
        models = []
        if self.ollama_loaded_context is not None:
            models.append(
                {
                    "name": "fake-model:latest",
                    "model": "fake-model:latest",
                    "context_length": self.ollama_loaded_context,
                }
            )
        return web.json_response({"models": models})

    async def _lmstudio_models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": "fake-model",
                        "object": "model",
                        "type": "llm",
                        "state": "loaded",
                        "max_context_length": self.trained_context,
                        "loaded_context_length": self.window,
                    }
                ],
            }
        )

    def _overflow(self, body: dict[str, Any], prompt_tokens: int) -> web.StreamResponse | None:
        """The dialect's answer to a prompt over ``context_limit``; ``None``: answer normally."""
        limit = self.window
        completion = int(body.get("max_tokens") or 0)
        requested = prompt_tokens + completion
        if self.dialect == "vllm":
            message = (
                f"This model's maximum context length is {limit} tokens. However, you requested {requested} "
                f"tokens ({prompt_tokens} in the messages, {completion} in the completion). Please reduce the "
                "length of the messages or completion."
            )
            payload = {
                "object": "error",
                "message": message,
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
            return web.json_response(payload, status=400)
        if self.dialect == "llamacpp-python":
            if body.get("stream"):
                return None  # answered by _answer as an empty stream
            return self._error(400, f"Requested tokens ({requested}) exceed context window of {limit}")
        if self.dialect == "llama-server":
            if self.slot_overflow and body.get("stream"):
                return None  # answered by _answer as an error event inside the stream
            error = {
                "code": 400,
                "message": f"request ({prompt_tokens} tokens) exceeds the available context size ({limit} "
                "tokens), try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": prompt_tokens,
                "n_ctx": limit,
            }
            return web.json_response({"error": error}, status=400)
        if self.dialect == "lmstudio":
            message = (
                "The number of tokens to keep from the initial prompt is greater than the context length "
                f"(n_keep: {prompt_tokens}>= n_ctx: {limit}). Try to load the model with a larger context "
                "length, or provide a shorter input."
            )
            return web.json_response({"error": message}, status=400)
        if self.dialect == "ollama":
            return None  # truncates silently
        return self._error(
            400,
            f"This model's maximum context length is {limit} tokens. However, your messages "
            f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
            code="context_length_exceeded",
        )

    async def _broken_stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """llama-cpp-python: an empty 200 stream; llama-server (shared slots): an error event in a 200."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if self.dialect == "llama-server":
            error = {"code": 500, "message": "Context size has been exceeded.", "type": "server_error"}
            await response.write(f"data: {json.dumps({'error': error})}\n\n".encode())
        await response.write_eof()
        return response

    def _reply_for(self, body: dict[str, Any]) -> Reply:
        if self.script:
            return self.script.popleft()
        if self.default is not None:
            answer = self.default(body)
            return answer if isinstance(answer, Reply) else Reply(text=answer)
        user = [m for m in body["messages"] if m.get("role") == "user"]
        return Reply(text=f"You said: {text_of(user[-1]['content']) if user else ''}")

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
        if self.reject_tools and body.get("tools"):
            return self._refuse_tools(body)
        prompt_tokens = estimate_prompt_tokens(body["messages"])
        overflowing = (
            self.context_limit is not None
            and prompt_tokens + int(body.get("max_tokens") or 0) > self.context_limit
        )
        if overflowing:
            answer = self._overflow(body, prompt_tokens)
            if answer is not None:
                return answer
            if self.dialect in ("llamacpp-python", "llama-server"):
                return await self._broken_stream(request, body)
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
                            "message": _message_of(reply),
                            "finish_reason": "tool_calls" if reply.tool_calls else reply.finish_reason,
                        }
                    ],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if reply.raw_sse is not None:
            for piece in reply.raw_sse:
                await response.write(piece)
                await asyncio.sleep(0.005)
            await response.write_eof()
            return response

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
            if reply.interrupt_after is not None and index >= reply.interrupt_after:
                await response.write(b"data: [DONE]\n\n")
                await response.write_eof()
                return response
            if reply.delay and index:
                await asyncio.sleep(reply.delay)
            if reply.pause_at == index:
                await asyncio.sleep(reply.pause)
            if self.on_chunk is not None:
                self.on_chunk(body, index, index == len(pieces) - 1)
            await send(chunk({"content": piece}))
        if reply.tool_calls:
            for payload in _tool_call_pieces(reply):
                await send(chunk(payload))
                if reply.delay:
                    await asyncio.sleep(reply.delay)
        await send(chunk({}, "tool_calls" if reply.tool_calls else reply.finish_reason))
        if reply.hang_at_end:
            await asyncio.sleep(reply.hang_at_end)
        streams_usage = self.dialect != "llamacpp-python"  # it never reports usage in streams
        if reply.usage and streams_usage and (body.get("stream_options") or {}).get("include_usage"):
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

    def _refuse_tools(self, body: dict[str, Any]) -> web.Response:
        """What a server that cannot take ``tools`` answers (see the module docstring)."""
        if self.reject_tools == "ollama":
            model = body.get("model", "fake")
            return web.json_response(
                {"error": f"registry.ollama.ai/library/{model} does not support tools"}, status=400
            )
        error = {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}
        return web.json_response({"error": error}, status=500)


def _message_of(reply: Reply) -> dict[str, Any]:
    """A non-streamed answer's message, with its tool calls."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in reply.tool_calls
        ]
    return message


def _tool_call_pieces(reply: Reply) -> list[dict[str, Any]]:
    """The deltas of a reply's calls: per call, its id and name first, then its arguments in pieces."""
    deltas: list[dict[str, Any]] = []
    size = max(1, reply.chunk_size)
    for index, call in enumerate(reply.tool_calls or []):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        deltas.append({"tool_calls": [head]})
        raw = call["arguments"]
        for start in range(0, len(raw), size):
            deltas.append(
                {"tool_calls": [{"index": index, "function": {"arguments": raw[start : start + size]}}]}
            )
    return deltas
