"""A streamed chat completion read straight off its SSE body, keeping only the fields the engine uses.

The openai client still sends the request (auth, retries, status errors become its exceptions); only the
body of a 200 stream is parsed here. The SDK's own stream builds a typed object for every chunk
(``openai/_models.py:construct_type``), which was three quarters of a turn's CPU through real HTTP
(issue 19); this reads each ``data:`` payload with one ``json.loads`` and picks out text, finish_reason
and usage, and the pieces of ``delta.tool_calls`` (assembled by the model client).

Framing follows the WHATWG event-stream rules, as the SDK's ``SSEDecoder`` does
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation): lines end
in CR, LF or CRLF (also split across reads), a line starting with ``:`` is a comment (keep-alive), the
``data:`` lines of one event join with ``\\n``, an event is dispatched at a blank line, and an event left
unterminated when the body ends is dropped. ``[DONE]`` ends the stream; an ``error`` payload raises
:class:`openai.APIError` as the SDK does, and a payload that is not JSON raises one too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncStream
from openai import _httpx2 as sdk_transport  # the SDK's own transport-error mapping (openai/_streaming.py)

_DRAIN_SECONDS = 0.1  # as the SDK: read what follows [DONE] briefly so HTTP/1.1 can reuse the connection


@dataclass(slots=True)
class StreamChunk:
    """What one chunk carries for the engine: a text delta, the finish_reason, usage (prompt, completion)."""

    text: str | None
    finish_reason: str | None
    usage: tuple[int, int] | None
    tool_calls: list[dict[str, Any]] | None = None  # pieces of calls, by ``index``; arguments in parts


class LineSplitter:
    """Splits a byte stream into lines ending in CR, LF or CRLF, a CRLF split across reads included."""

    def __init__(self) -> None:
        self._tail = b""
        self._skip_lf = False

    def feed(self, block: bytes) -> list[bytes]:
        if self._skip_lf and block[:1] == b"\n":
            block = block[1:]
        if not block:
            return []
        self._skip_lf = block[-1:] == b"\r"
        if self._tail:
            block = self._tail + block
        lines = block.splitlines()
        if block[-1:] in (b"\n", b"\r"):
            self._tail = b""
        else:
            self._tail = lines.pop()
        return lines


def read_chunk(payload: bytes, request: Any) -> StreamChunk:
    """The fields we use from one ``data:`` payload; an error payload raises as the SDK's stream does."""
    try:
        data = json.loads(payload)
    except ValueError:
        raise openai.APIError(
            message=f"the model server sent a chunk that is not JSON: {payload[:80]!r}",
            request=request,
            body=None,
        ) from None
    if not isinstance(data, dict):
        return StreamChunk(None, None, None)
    error = data.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        raise openai.APIError(message=message, request=request, body=error)
    usage: tuple[int, int] | None = None
    reported = data.get("usage")
    if isinstance(reported, dict):
        usage = (int(reported.get("prompt_tokens") or 0), int(reported.get("completion_tokens") or 0))
    choices = data.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return StreamChunk(None, None, usage)
    choice = choices[0]
    finish = choice.get("finish_reason")
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return StreamChunk(None, str(finish) if finish else None, usage)
    text = delta.get("content")
    calls = delta.get("tool_calls")
    return StreamChunk(
        text if isinstance(text, str) else None,
        str(finish) if finish else None,
        usage,
        calls if isinstance(calls, list) and calls else None,
    )


def events(lines: list[bytes], pending: list[bytes]) -> Iterator[bytes]:
    """The payloads of the events these lines complete; ``pending`` holds the ``data:`` lines of an
    event still open (it carries over to the next read)."""
    for line in lines:
        if line:
            if line[:5] == b"data:":
                value = line[5:]
                pending.append(value[1:] if value[:1] == b" " else value)
            elif line == b"data":
                pending.append(b"")
            continue  # comments (':'), event, id, retry and unknown fields: nothing we use
        if pending:
            payload = pending[0] if len(pending) == 1 else b"\n".join(pending)
            pending.clear()
            if payload:
                yield payload


class ChunkStream(AsyncStream[StreamChunk]):
    """The SDK's stream class for ``client.post(..., stream_cls=ChunkStream)``, parsing the body itself."""

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self._iterator

    async def __stream__(self) -> AsyncIterator[StreamChunk]:
        response = self.response
        request = response.request
        splitter = LineSplitter()
        pending: list[bytes] = []
        # without a content encoding the decoded bytes are the raw ones: skip the decoder's generator layer
        encoded = response.headers.get("content-encoding", "identity") != "identity"
        raw = response.aiter_bytes() if encoded else response.aiter_raw()
        try:
            try:
                async for block in raw:
                    for payload in events(splitter.feed(block), pending):
                        if payload.startswith(b"[DONE]"):
                            if response.http_version == "HTTP/1.1":
                                await _drain(raw)
                            return
                        yield read_chunk(payload, request)
            except sdk_transport.timeout_exceptions() as exc:
                raise openai.APITimeoutError(request=request) from exc
            except sdk_transport.request_exceptions() as exc:
                raise openai.APIConnectionError(request=request) from exc
        finally:
            await raw.aclose()  # the byte generator's own cleanup, not left to the garbage collector
            await response.aclose()


async def _drain(raw: AsyncIterator[bytes]) -> None:
    errors: tuple[type[BaseException], ...] = (
        TimeoutError,
        *sdk_transport.request_exceptions(),
        *sdk_transport.stream_consumed_exceptions(),
    )
    with contextlib.suppress(*errors):
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in raw:
                pass
