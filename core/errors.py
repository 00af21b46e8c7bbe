"""The one small error tree of the bot.

    ChatbotError
    ├── ConfigError            a setting is missing or wrong; the message says which and how to fix it
    ├── ModelError             the model server failed us
    │   ├── ModelUnavailable   unreachable, timed out, 5xx or 429 after the client's retries
    │   │   └── ModelTimeout   no first token, a stalled stream, or a reply over the total time limit
    │   ├── ModelRejected      the server refused the request (auth, bad model name, ...)
    │   ├── ContextTooLong     the prompt did not fit the model's context window (``window``, ``requested``)
    │   └── StreamIncomplete   the stream ended wrong: empty, an error event, or no ``finish_reason``
    └── PlatformError          a chat platform failed us
        ├── RateLimited        slow down: ``retry_after`` seconds
        └── MessageTooLong     the platform refused the text as too long

Adapters translate their SDK's exceptions into these at their boundary (``raise ... from exc``), so the
core never sees a platform SDK's types.
"""

from __future__ import annotations


class ChatbotError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(ChatbotError):
    """A setting is missing or invalid. The message is one actionable line."""


class ModelError(ChatbotError):
    """The model server could not give us a reply."""


class ModelUnavailable(ModelError):
    """The server could not be reached or kept failing after retries."""


class ModelTimeout(ModelUnavailable):
    """The server did not answer in time: ``phase`` is ``first_token``, ``stall`` or ``total``."""

    def __init__(self, message: str, *, phase: str, limit: float) -> None:
        super().__init__(message)
        self.phase = phase
        self.limit = limit


class ModelRejected(ModelError):
    """The server refused the request for a reason retrying will not fix."""


class ContextTooLong(ModelError):
    """The server said the prompt exceeds the model's context window.

    ``window`` (the server's context size) and ``requested`` (the tokens the request needed: prompt plus
    completion where the server counts both) are set when the server's message carries them, so the engine
    can learn the real window; ``prompt_tokens`` when the server reports the prompt alone.
    """

    def __init__(
        self,
        message: str,
        *,
        window: int | None = None,
        requested: int | None = None,
        prompt_tokens: int | None = None,
    ) -> None:
        super().__init__(message)
        self.window = window
        self.requested = requested
        self.prompt_tokens = prompt_tokens


class StreamIncomplete(ModelError):
    """A streamed reply ended without the server saying it was complete.

    An empty stream, an error event inside a 200 stream, or a stream that stops without a ``finish_reason``
    (llama-cpp-python ends an interrupted stream with ``[DONE]``). Never a complete reply. ``empty``: the
    stream carried no data at all (llama-cpp-python's answer to a streamed overflow).
    """

    def __init__(self, message: str, *, empty: bool = False) -> None:
        super().__init__(message)
        self.empty = empty


class PlatformError(ChatbotError):
    """A chat platform call failed."""


class RateLimited(PlatformError):
    """The platform asked us to wait ``retry_after`` seconds before the next call."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"rate limited; retry after {retry_after:g}s")
        self.retry_after = max(0.0, float(retry_after))


class MessageTooLong(PlatformError):
    """The platform refused a message as too long."""
