"""Calls to an OpenAI-compatible chat model, with the server's faults translated into :mod:`core.errors`.

The openai client retries 408/409/429/5xx itself with backoff, honouring ``Retry-After`` (up to two
minutes); what still fails after that reaches the engine as :class:`ModelUnavailable`. Usage is asked for
with ``stream_options``; a server that rejects the option is asked again without it, and remembered.
The client sends every request; a streamed body is parsed by :mod:`core.chat_stream`, not into the SDK's
chunk objects (issue 19: they were most of a turn's CPU).

Tools (issue 18): a stream may carry ``tool_calls`` pieces, joined here by index into
:class:`core.tools.ToolCall` (``ReplyStream.tool_calls``). A server or model that refuses the ``tools``
field (llama-server without ``--jinja``: a 500 "tools param requires --jinja flag"; Ollama: a 400 "... does
not support tools"; vLLM without ``--enable-auto-tool-choice``) is asked again without it, and remembered
per model with one warning: :meth:`OpenAIChatModel.accepts_tools` then says no.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from core.bot_profile import ModelParams
from core.chat_stream import ChunkStream, StreamChunk
from core.errors import (
    ContextTooLong,
    ModelError,
    ModelRejected,
    ModelTimeout,
    ModelUnavailable,
    StreamIncomplete,
)
from core.model_limits import CallLimit
from core.model_servers import ServerWindow, overflow_from
from core.tools import ToolCall

log = logging.getLogger(__name__)

ChatMessage = dict[str, Any]
"""A chat message: ``role`` and ``content``, a string, or a list of content parts for a message with
images (:meth:`core.attachments.ImagePart.content_part`); ``tool_calls`` / ``tool_call_id`` in a tool
exchange."""


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


class ReplyStream(Protocol):
    """Text deltas of one reply; ``usage`` is set once the stream ends, if the server reported it.

    ``finish_reason`` is the server's (``stop``, ``length``, ``content_filter``, ...) once the stream ended
    well; a stream that ends without one raises :class:`core.errors.StreamIncomplete` instead.
    """

    usage: Usage | None
    finish_reason: str | None

    def __aiter__(self) -> AsyncIterator[str]: ...


class ChatModel(Protocol):
    """What the engine needs of a model: a streamed reply, and a whole one for summaries."""

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        params: ModelParams,
        *,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> ReplyStream: ...

    async def complete(
        self, model: str, messages: Sequence[ChatMessage], params: ModelParams
    ) -> tuple[str, Usage | None]: ...


def translate_error(exc: Exception, base_url: str) -> ModelError:
    """One of our errors for an openai exception, with a message fit for a log line."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeout(f"the model server at {base_url} timed out", phase="request", limit=0.0)
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailable(f"cannot reach the model server at {base_url}")
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        overflow = context_error(exc)
        if overflow is not None:
            return overflow
        return ModelRejected(f"the model server refused the request: {server_message(exc)}")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelRejected("the model server rejected the API key (check OPENAI_API_KEY)")
    if isinstance(exc, openai.NotFoundError):
        return ModelRejected(f"the model server does not know this model or path ({exc.message})")
    if isinstance(exc, openai.RateLimitError):
        return ModelUnavailable("the model server is rate limiting us")
    if isinstance(exc, openai.APIStatusError):
        overflow = context_error(exc)  # LM Studio and some proxies answer an overflow with a 5xx
        if overflow is not None:
            return overflow
        return ModelUnavailable(f"the model server answered HTTP {exc.status_code}")
    if isinstance(exc, openai.APIError):
        overflow = context_error(exc)
        if overflow is not None:
            return overflow
        return ModelUnavailable(f"the model server failed: {exc.message}")
    return ModelUnavailable(f"the model call failed: {type(exc).__name__}")


def server_message(exc: openai.APIError) -> str:
    """The server's own words: openai's message, plus the body when it is a bare string (LM Studio sends
    ``{"error": "..."}``, which openai leaves out of the message)."""
    message = str(exc.message)
    if isinstance(exc.body, str) and exc.body and exc.body not in message:
        message = f"{message} - {exc.body}"
    return message


def context_error(exc: openai.APIError) -> ContextTooLong | None:
    """The overflow this error reports, with the server's numbers, or ``None``."""
    return overflow_from(server_message(exc), exc.body, getattr(exc, "code", None))


_TOOLS_REFUSED = re.compile(
    r"support|requires?|jinja|not allowed|no endpoints|unsupported|unrecognized|unknown|not enabled", re.I
)


def refuses_tools(exc: openai.APIError) -> bool:
    """Whether an error says the server or model cannot take ``tools`` at all (see the module docstring);
    a bare 400 is not enough, it is as often a malformed request."""
    text = server_message(exc)
    return "tool" in text.lower() and _TOOLS_REFUSED.search(text) is not None


def _mentions_stream_options(exc: openai.APIError) -> bool:
    text = str(exc.message).lower()
    return "stream_options" in text or "include_usage" in text


@dataclass(frozen=True, slots=True)
class ReplyLimits:
    """How long a reply may take, in seconds (issue 11 item 9).

    ``first_token`` covers connecting, the client's own retries and waiting for the first content delta;
    ``stall`` is the longest silence between chunks once text flows; ``total`` bounds the whole reply
    (and the wait for a free model slot).
    """

    first_token: float = 15.0
    stall: float = 20.0
    total: float = 180.0


class _OpenAIStream:
    def __init__(
        self,
        owner: OpenAIChatModel,
        model: str,
        messages: Sequence[ChatMessage],
        params: ModelParams,
        tools: Sequence[dict[str, Any]] | None = None,
    ):
        self._owner = owner
        self._model = model
        self._messages = list(messages)
        self._params = params
        self._tools = list(tools) if tools and owner.accepts_tools(model) else []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.tool_calls: list[ToolCall] = []

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    def _body(self, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": self._messages,
            "stream": stream,
            **_param_kwargs(self._params),
        }
        if stream and self._owner.stream_usage:
            body["stream_options"] = {"include_usage": True}
        if self._tools:
            body["tools"] = self._tools
        return body

    async def _open(self) -> Any:
        owner = self._owner
        body = self._body(stream=True)
        try:
            return await owner.post_chat(body, stream=True)
        except openai.BadRequestError as exc:
            if owner.stream_usage and _mentions_stream_options(exc):
                log.warning("the model server rejects stream_options; streaming without usage reports")
                owner.stream_usage = False
                body.pop("stream_options")
                return await self._open_without_tools_if_refused(body)
            if not (self._tools and refuses_tools(exc)):
                raise
            self._refused(exc)
        except openai.APIStatusError as exc:
            if not (self._tools and refuses_tools(exc)):
                raise
            self._refused(exc)
        body.pop("tools", None)
        return await owner.post_chat(body, stream=True)

    async def _open_without_tools_if_refused(self, body: dict[str, Any]) -> Any:
        try:
            return await self._owner.post_chat(body, stream=True)
        except openai.APIStatusError as exc:
            if not (self._tools and refuses_tools(exc)):
                raise
            self._refused(exc)
        body.pop("tools", None)
        return await self._owner.post_chat(body, stream=True)

    def _refused(self, exc: openai.APIError) -> None:
        """Remember that this model takes no tools (one warning), and send this request without them."""
        self._owner.no_tools.add(self._model)
        self._tools = []
        log.warning(
            "the model server refuses tools for %s (%s); answering without tools from now on",
            self._model,
            server_message(exc)[:200],
        )

    async def _run(self) -> AsyncIterator[str]:
        owner = self._owner
        limits = owner.limits
        try:
            async with asyncio.timeout(limits.total):
                await owner.call_limit.acquire()
        except TimeoutError:
            raise ModelTimeout(
                f"no model slot became free within {limits.total:g} s", phase="total", limit=limits.total
            ) from None
        try:
            async with aclosing(self._attempts()) as pieces:
                async for piece in pieces:
                    yield piece
        finally:
            owner.call_limit.release()

    async def _attempts(self) -> AsyncGenerator[str]:
        """One streamed try, and one more when the first ended wrong before any text (safe to repeat).

        The retry after an empty stream is a non-streamed request: llama-cpp-python answers a streamed
        overflow with an empty 200 stream but a non-streamed one with a 400 that carries the numbers, and
        any other server simply gives the whole reply.
        """
        limits = self._owner.limits
        loop = asyncio.get_running_loop()
        start = loop.time()
        total_deadline = start + limits.total
        first_deadline = start + limits.first_token
        yielded = False
        try:
            async with aclosing(self._once(first_deadline, total_deadline)) as pieces:
                async for piece in pieces:
                    yielded = True
                    yield piece
            return
        except StreamIncomplete as exc:
            if yielded:
                raise
            log.warning("%s; asking once more", exc)
            empty = exc.empty
        retry_deadline = max(first_deadline, loop.time() + limits.first_token / 3)
        if empty:
            text = await self._probe(min(retry_deadline, total_deadline))
            if text:
                yield text
            return
        async with aclosing(self._once(retry_deadline, total_deadline)) as pieces:
            async for piece in pieces:
                yield piece

    def _timeout(self, phase: str) -> ModelTimeout:
        limits = self._owner.limits
        if phase == "first_token":
            return ModelTimeout(
                f"the model server did not start answering within {limits.first_token:g} s",
                phase=phase,
                limit=limits.first_token,
            )
        if phase == "stall":
            return ModelTimeout(
                f"the model server stopped sending for {limits.stall:g} s in the middle of a reply",
                phase=phase,
                limit=limits.stall,
            )
        return ModelTimeout(
            f"the reply took longer than {limits.total:g} s", phase="total", limit=limits.total
        )

    async def _once(self, first_deadline: float, total_deadline: float) -> AsyncGenerator[str]:
        owner = self._owner
        loop = asyncio.get_running_loop()
        self.finish_reason = None
        deadline = min(first_deadline, total_deadline)
        try:
            async with asyncio.timeout_at(deadline):
                stream = await self._open()
        except TimeoutError:
            raise self._timeout("first_token" if deadline < total_deadline else "total") from None
        except Exception as exc:
            raise translate_error(exc, owner.base_url) from exc
        chunks = 0
        text_length = 0  # text and tool-call arguments received: the stall clock runs once either flows
        calls: dict[int, list[str]] = {}  # index -> [id, name, arguments so far]
        self.tool_calls = []
        iterator: AsyncIterator[StreamChunk] = aiter(stream)
        try:
            while True:
                if text_length:
                    deadline, phase = loop.time() + owner.limits.stall, "stall"
                else:
                    deadline, phase = first_deadline, "first_token"
                if deadline >= total_deadline:
                    deadline, phase = total_deadline, "total"
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    if self.finish_reason is not None:
                        log.debug("the stream went quiet after its finish_reason; the reply is complete")
                        break
                    raise self._timeout(phase) from None
                chunks += 1
                if chunk.usage is not None:
                    self.usage = Usage(*chunk.usage)
                if chunk.finish_reason:
                    self.finish_reason = chunk.finish_reason
                if chunk.tool_calls is not None:
                    text_length += _join_call_pieces(calls, chunk.tool_calls)
                text = chunk.text
                if text:
                    text_length += len(text)
                    yield text
        except ModelError:
            raise
        except openai.APIConnectionError as exc:
            if self.finish_reason is None:
                raise translate_error(exc, owner.base_url) from exc
            log.debug("the stream broke after its finish_reason; the reply is complete")
        except openai.APIStatusError as exc:
            raise translate_error(exc, owner.base_url) from exc
        except openai.APIError as exc:
            # An error event inside a 200 stream (llama-server with shared slots, a crashed backend).
            overflow = overflow_from(str(exc.message), exc.body, getattr(exc, "code", None))
            if overflow is not None:
                raise overflow from exc
            raise StreamIncomplete(
                f"the model server sent an error inside the stream: {exc.message}"
            ) from exc
        except Exception as exc:
            raise translate_error(exc, owner.base_url) from exc
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.debug("closing the model stream failed", exc_info=True)
        self.tool_calls = _assembled(calls)
        if chunks == 0:
            raise StreamIncomplete("the model server sent an empty stream", empty=True)
        if self.finish_reason is None:
            raise StreamIncomplete(
                f"the model stream ended without a finish_reason after {text_length} characters"
            )

    async def _probe(self, deadline: float) -> str:
        """The same request, not streamed: tells an overflow (a 400 with numbers) from a broken stream."""
        owner = self._owner
        try:
            async with asyncio.timeout_at(deadline):
                response = await owner.post_chat(self._body(stream=False), stream=False)
        except TimeoutError:
            raise self._timeout("first_token") from None
        except Exception as exc:
            raise translate_error(exc, owner.base_url) from exc
        choice = response.choices[0] if response.choices else None
        self.finish_reason = (
            (str(choice.finish_reason) if choice.finish_reason else "stop") if choice else None
        )
        if response.usage is not None:
            self.usage = Usage(response.usage.prompt_tokens, response.usage.completion_tokens)
        if choice is not None and choice.message.tool_calls:
            self.tool_calls = [
                ToolCall(call.id, call.function.name, call.function.arguments or "")
                for call in choice.message.tool_calls
                if getattr(call, "function", None) is not None
            ]
        return (choice.message.content or "") if choice else ""


def _join_call_pieces(calls: dict[int, list[str]], pieces: list[dict[str, Any]]) -> int:
    """Add one chunk's ``tool_calls`` pieces to ``calls`` (the id and name come first, the arguments in
    parts, all keyed by ``index``); return how many characters arrived."""
    received = 0
    for piece in pieces:
        if not isinstance(piece, dict):
            continue
        index = piece.get("index")
        key = index if isinstance(index, int) else len(calls)
        call = calls.setdefault(key, ["", "", ""])
        if isinstance(piece.get("id"), str) and piece["id"]:
            call[0] = piece["id"]
        function = piece.get("function")
        if isinstance(function, dict):
            name, arguments = function.get("name"), function.get("arguments")
            if isinstance(name, str) and name:
                call[1] = name
            if isinstance(arguments, str):
                call[2] += arguments
                received += len(arguments)
    return received + 1


def _assembled(calls: dict[int, list[str]]) -> list[ToolCall]:
    """The stream's calls in index order; a call the server sent without an id gets one."""
    return [
        ToolCall(call_id or f"call_{index}", name, arguments)
        for index, (call_id, name, arguments) in sorted(calls.items())
    ]


def _param_kwargs(params: ModelParams) -> dict[str, Any]:
    return {
        "temperature": params.temperature,
        "max_tokens": params.max_tokens,
        "top_p": params.top_p,
        "frequency_penalty": params.frequency_penalty,
    }


class OpenAIChatModel:
    """:class:`ChatModel` over openai's AsyncOpenAI, pointed at any OpenAI-compatible base URL."""

    def __init__(
        self, client: AsyncOpenAI, *, limits: ReplyLimits | None = None, max_concurrent: int = 0
    ) -> None:
        self.client = client
        self.base_url = str(client.base_url).rstrip("/")
        self.stream_usage = True
        self.limits = limits or ReplyLimits()
        self.call_limit = CallLimit(max_concurrent)
        self.server: ServerWindow | None = None  # what window discovery learned (set at start)
        self.no_tools: set[str] = set()  # models the server refused ``tools`` for (see the module docstring)

    @classmethod
    def connect(
        cls,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        limits: ReplyLimits | None = None,
        max_concurrent: int = 0,
    ) -> OpenAIChatModel:
        """A client whose own retries run inside :attr:`limits` (the outer deadlines cancel them)."""
        client = AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
        return cls(client, limits=limits, max_concurrent=max_concurrent)

    def set_max_concurrent(self, limit: int) -> None:
        """Change the concurrency limit (before any call is made: at start, after window discovery)."""
        self.call_limit = CallLimit(limit)

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        params: ModelParams,
        *,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> ReplyStream:
        return _OpenAIStream(self, model, messages, params, tools)

    def accepts_tools(self, model: str) -> bool:
        """False once the server refused ``tools`` for ``model``."""
        return model not in self.no_tools

    async def post_chat(self, body: dict[str, Any], *, stream: bool) -> Any:
        """POST ``/chat/completions`` through the client's own request path (auth, retries, errors).

        ``chat.completions.create`` would first walk every message through the SDK's TypedDict transform,
        which costs more than the rest of a turn for long histories; our messages are plain JSON already.
        A streamed body is parsed by :class:`core.chat_stream.ChunkStream`, not into the SDK's objects.
        """
        return await self.client.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            stream=stream,
            stream_cls=ChunkStream,
            options={"security": {"bearer_auth": True}},
        )

    async def complete(
        self, model: str, messages: Sequence[ChatMessage], params: ModelParams
    ) -> tuple[str, Usage | None]:
        total = self.limits.total
        try:
            async with asyncio.timeout(total), self.call_limit.slot():
                create: Any = self.client.chat.completions.create
                response = await create(
                    model=model, messages=list(messages), stream=False, **_param_kwargs(params)
                )
        except TimeoutError:
            raise ModelTimeout(
                f"the model server did not answer within {total:g} s", phase="total", limit=total
            ) from None
        except Exception as exc:
            raise translate_error(exc, self.base_url) from exc
        text = (response.choices[0].message.content or "") if response.choices else ""
        usage = response.usage
        return text, Usage(usage.prompt_tokens, usage.completion_tokens) if usage else None

    async def check(self) -> None:
        """Fail fast, with one actionable line, when the server is unreachable or refuses our key."""
        try:
            await self.client.with_options(max_retries=0, timeout=10.0).models.list()
        except (openai.NotFoundError, openai.UnprocessableEntityError, openai.BadRequestError):
            return  # reachable; some servers simply have no /models
        except Exception as exc:
            raise translate_error(exc, self.base_url) from exc

    async def close(self) -> None:
        await self.client.close()
