"""Calls to an OpenAI-compatible chat model, with the server's faults translated into :mod:`core.errors`.

The openai client retries 408/409/429/5xx itself with backoff, honouring ``Retry-After`` (up to two
minutes); what still fails after that reaches the engine as :class:`ModelUnavailable`. Usage is asked for
with ``stream_options``; a server that rejects the option is asked again without it, and remembered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import openai
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from core.bot_profile import ModelParams
from core.errors import ContextTooLong, ModelError, ModelRejected, ModelUnavailable

log = logging.getLogger(__name__)

ChatMessage = dict[str, str]

_CONTEXT_WORDS = re.compile(
    r"context[ _]length|context window|maximum context|too many tokens|prompt is too long|"
    r"exceeds? (the )?(model'?s? )?(maximum|max|context)",
    re.IGNORECASE,
)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


class ReplyStream(Protocol):
    """Text deltas of one reply; ``usage`` is set once the stream ends, if the server reported it."""

    usage: Usage | None

    def __aiter__(self) -> AsyncIterator[str]: ...


class ChatModel(Protocol):
    """What the engine needs of a model: a streamed reply, and a whole one for summaries."""

    def stream(self, model: str, messages: Sequence[ChatMessage], params: ModelParams) -> ReplyStream: ...

    async def complete(
        self, model: str, messages: Sequence[ChatMessage], params: ModelParams
    ) -> tuple[str, Usage | None]: ...


def translate_error(exc: Exception, base_url: str) -> ModelError:
    """One of our errors for an openai exception, with a message fit for a log line."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailable(f"the model server at {base_url} timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailable(f"cannot reach the model server at {base_url}")
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        if is_context_error(exc):
            return ContextTooLong(str(exc.message))
        return ModelRejected(f"the model server refused the request: {exc.message}")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelRejected("the model server rejected the API key (check OPENAI_API_KEY)")
    if isinstance(exc, openai.NotFoundError):
        return ModelRejected(f"the model server does not know this model or path ({exc.message})")
    if isinstance(exc, openai.RateLimitError):
        return ModelUnavailable("the model server is rate limiting us")
    if isinstance(exc, openai.APIStatusError):
        return ModelUnavailable(f"the model server answered HTTP {exc.status_code}")
    if isinstance(exc, openai.APIError):
        if is_context_error(exc):
            return ContextTooLong(str(exc.message))
        return ModelUnavailable(f"the model server failed: {exc.message}")
    return ModelUnavailable(f"the model call failed: {type(exc).__name__}")


def is_context_error(exc: openai.APIError) -> bool:
    code = getattr(exc, "code", None)
    if code == "context_length_exceeded":
        return True
    return bool(_CONTEXT_WORDS.search(str(exc.message)))


def _mentions_stream_options(exc: openai.APIError) -> bool:
    text = str(exc.message).lower()
    return "stream_options" in text or "include_usage" in text


class _OpenAIStream:
    def __init__(
        self, owner: OpenAIChatModel, model: str, messages: Sequence[ChatMessage], params: ModelParams
    ):
        self._owner = owner
        self._model = model
        self._messages = list(messages)
        self._params = params
        self.usage: Usage | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    async def _open(self) -> Any:
        owner = self._owner
        body: dict[str, Any] = {
            "model": self._model,
            "messages": self._messages,
            "stream": True,
            **_param_kwargs(self._params),
        }
        if owner.stream_usage:
            body["stream_options"] = {"include_usage": True}
        try:
            return await owner.post_chat(body, stream=True)
        except openai.BadRequestError as exc:
            if owner.stream_usage and _mentions_stream_options(exc):
                log.warning("the model server rejects stream_options; streaming without usage reports")
                owner.stream_usage = False
                body.pop("stream_options")
                return await owner.post_chat(body, stream=True)
            raise

    async def _run(self) -> AsyncIterator[str]:
        base_url = self._owner.base_url
        try:
            stream = await self._open()
        except Exception as exc:
            raise translate_error(exc, base_url) from exc
        try:
            async for chunk in stream:
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    self.usage = Usage(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                text = getattr(delta, "content", None) if delta is not None else None
                if text:
                    yield text
        except Exception as exc:
            raise translate_error(exc, base_url) from exc
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.debug("closing the model stream failed", exc_info=True)


def _param_kwargs(params: ModelParams) -> dict[str, Any]:
    return {
        "temperature": params.temperature,
        "max_tokens": params.max_tokens,
        "top_p": params.top_p,
        "frequency_penalty": params.frequency_penalty,
    }


class OpenAIChatModel:
    """:class:`ChatModel` over openai's AsyncOpenAI, pointed at any OpenAI-compatible base URL."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self.client = client
        self.base_url = str(client.base_url).rstrip("/")
        self.stream_usage = True

    @classmethod
    def connect(
        cls, base_url: str, api_key: str, *, timeout: float = 60.0, max_retries: int = 3
    ) -> OpenAIChatModel:
        return cls(AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries))

    def stream(self, model: str, messages: Sequence[ChatMessage], params: ModelParams) -> ReplyStream:
        return _OpenAIStream(self, model, messages, params)

    async def post_chat(self, body: dict[str, Any], *, stream: bool) -> Any:
        """POST ``/chat/completions`` through the client's own request path (auth, retries, errors, SSE).

        ``chat.completions.create`` would first walk every message through the SDK's TypedDict transform,
        which costs more than the rest of a turn for long histories; our messages are plain JSON already.
        """
        return await self.client.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            stream=stream,
            stream_cls=AsyncStream[ChatCompletionChunk],
            options={"security": {"bearer_auth": True}},
        )

    async def complete(
        self, model: str, messages: Sequence[ChatMessage], params: ModelParams
    ) -> tuple[str, Usage | None]:
        try:
            create: Any = self.client.chat.completions.create
            response = await create(
                model=model, messages=list(messages), stream=False, **_param_kwargs(params)
            )
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
