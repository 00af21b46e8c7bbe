"""The one small error tree of the bot.

    ChatbotError
    ├── ConfigError            a setting is missing or wrong; the message says which and how to fix it
    ├── ModelError             the model server failed us
    │   ├── ModelUnavailable   unreachable, timed out, 5xx or 429 after the client's retries
    │   ├── ModelRejected      the server refused the request (auth, bad model name, ...)
    │   └── ContextTooLong     the prompt did not fit the model's context window
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


class ModelRejected(ModelError):
    """The server refused the request for a reason retrying will not fix."""


class ContextTooLong(ModelError):
    """The server said the prompt exceeds the model's context window."""


class PlatformError(ChatbotError):
    """A chat platform call failed."""


class RateLimited(PlatformError):
    """The platform asked us to wait ``retry_after`` seconds before the next call."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"rate limited; retry after {retry_after:g}s")
        self.retry_after = max(0.0, float(retry_after))


class MessageTooLong(PlatformError):
    """The platform refused a message as too long."""
