"""A reply in one Slack conversation: ``chat.postMessage`` then ``chat.update``, errors translated.

This is the boundary where ``slack_sdk`` errors become the core's: HTTP 429 (``Retry-After``) and
``ratelimited`` -> :class:`core.errors.RateLimited`; ``msg_too_long`` -> :class:`core.errors.MessageTooLong`;
anything else -> :class:`core.errors.PlatformError`. Pacing, splitting and retries are the core's job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.mrkdwn import escape, to_mrkdwn
from core.clock import Clock
from core.errors import MessageTooLong, PlatformError, RateLimited
from core.pacing import Gate, RateGate
from core.streaming import PlatformLimits

DEFAULT_RETRY_AFTER = 1.0
TOO_LONG_ERRORS = frozenset({"msg_too_long", "msg_blocks_too_long"})


def render(text: str, *, final: bool) -> str:
    """What Slack is sent: previews escaped as plain text, the final text converted to mrkdwn."""
    return to_mrkdwn(text) if final else escape(text)


def translate(method: str, exc: Exception) -> PlatformError:
    """A ``slack_sdk`` or transport failure as one of the core's platform errors (never with the token)."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        error = str(response.get("error", "")) if isinstance(response.data, dict) else ""
        if response.status_code == 429 or error == "ratelimited":
            return RateLimited(_retry_after(response.headers), f"slack {method}: rate limited")
        if error in TOO_LONG_ERRORS:
            return MessageTooLong(f"slack {method}: {error}")
        return PlatformError(f"slack {method}: {error or f'HTTP {response.status_code}'}")
    return PlatformError(f"slack {method}: {type(exc).__name__}: {exc}")


def _retry_after(headers: Any) -> float:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == "retry-after":
            try:
                return float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError):
                break
    return DEFAULT_RETRY_AFTER


class WorkspaceGate(RateGate):
    """The workspace's chat.update budget (Tier 3), shared by every reply in that workspace.

    ``delay`` is capped at ``max_delay``: a preview the gate turned down is simply tried again soon (a
    cheap, local check), instead of postponing the reply for up to a whole window, which would also hold
    back its final edit while the reserve kept for final edits is free.
    """

    def __init__(self, rate: int, per: float, clock: Clock, *, max_delay: float = 1.0) -> None:
        super().__init__(rate, per, clock)
        self.max_delay = max_delay

    def delay(self) -> float:
        return min(super().delay(), self.max_delay)


@dataclass(slots=True)
class SlackReplyTarget:
    """Where one reply goes: a channel and, usually, a thread. ``send`` returns the message's ``ts``."""

    client: AsyncWebClient
    channel: str
    thread_ts: str | None
    limits: PlatformLimits
    gate: Gate | None = None
    team: str = ""

    @property
    def address(self) -> dict[str, str | None]:
        """Where this reply goes, as JSON (kept while the reply is in flight, for crash recovery)."""
        return {"team": self.team, "channel": self.channel, "thread_ts": self.thread_ts}

    def ref_address(self, ref: object) -> str:
        return str(ref)  # a message's ``ts``

    def ref_from(self, address: Any) -> str:
        return str(address)

    async def send(self, text: str, *, final: bool) -> object:
        kwargs: dict[str, Any] = {
            "channel": self.channel,
            "text": render(text, final=final),
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if self.thread_ts:
            kwargs["thread_ts"] = self.thread_ts
        response = await _call("chat.postMessage", lambda: self.client.chat_postMessage(**kwargs))
        return str(response["ts"])

    async def edit(self, ref: object, text: str, *, final: bool) -> None:
        await _call(
            "chat.update",
            lambda: self.client.chat_update(
                channel=self.channel, ts=str(ref), text=render(text, final=final)
            ),
        )

    async def typing(self) -> None:
        """Slack has no typing indicator for bots outside assistant threads; the first preview comes fast."""


async def _call(method: str, call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except (TimeoutError, SlackApiError, aiohttp.ClientError) as exc:
        raise translate(method, exc) from exc
