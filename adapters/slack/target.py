"""A reply in one Slack conversation: a native stream or ``chat.postMessage`` + ``chat.update``.

In a thread, with a known recipient and a workspace that allows it, previews go into a native stream
(:mod:`adapters.slack.native`: ``chat.startStream`` / ``appendStream`` / ``stopStream``) and the final
edit stops it, handing the core the message's ``ts`` as every other path does. A refused stream call
switches that workspace to the ``chat.update`` path, on the same message, with the same text; so does a
text that no longer extends what was appended (a guard's retraction, a rollover cut before the end of
what was shown): ``chat.update`` works on a streamed message (the SDK's ``AsyncChatStream.ts`` says so).
While the model has not written, the thread shows the status line, cleared by the first message.

This is the boundary where ``slack_sdk`` errors become the core's: HTTP 429 (``Retry-After``) and
``ratelimited`` -> :class:`core.errors.RateLimited`; ``msg_too_long`` -> :class:`core.errors.MessageTooLong`;
anything else -> :class:`core.errors.PlatformError`. Pacing, splitting and retries are the core's job.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.mrkdwn import escape, to_mrkdwn
from adapters.slack.native import THINKING, NativeFeatures, StreamRef, refusal, stream_over
from core.clock import Clock
from core.errors import MessageTooLong, PlatformError, RateLimited
from core.pacing import Gate, RateGate
from core.streaming import PlatformLimits

log = logging.getLogger(__name__)

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
    native: NativeFeatures | None = None  # None: no status line, no native streams (a restored target)
    recipient: str | None = None  # the user asking: native streams in channels need it
    status_shown: bool = False

    @property
    def address(self) -> dict[str, str | None]:
        """Where this reply goes, as JSON (kept while the reply is in flight, for crash recovery)."""
        return {"team": self.team, "channel": self.channel, "thread_ts": self.thread_ts}

    def ref_address(self, ref: object) -> str:
        return ref.ts if isinstance(ref, StreamRef) else str(ref)  # a message's ``ts``

    def ref_from(self, address: Any) -> str:
        return str(address)

    async def send(self, text: str, *, final: bool) -> object:
        try:
            if not final and self._streams_usable():
                stream = await self._start_stream(text)
                if stream is not None:
                    return stream
            return await self._post(text, final=final)
        finally:
            await self._clear_status()

    async def _post(self, text: str, *, final: bool) -> str:
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

    async def edit(self, ref: object, text: str, *, final: bool) -> str | None:
        if isinstance(ref, StreamRef):
            return await self._edit_stream(ref, text, final=final)
        await _call(
            "chat.update",
            lambda: self.client.chat_update(
                channel=self.channel, ts=str(ref), text=render(text, final=final)
            ),
        )
        return None

    async def typing(self) -> None:
        """The thread's status line ("is thinking…") where the workspace allows it; else nothing."""
        native = self.native
        if native is None or not self.thread_ts or not native.status_in(self.team):
            return
        thread_ts = self.thread_ts
        try:
            await _native(
                "assistant.threads.setStatus",
                lambda: self.client.assistant_threads_setStatus(
                    channel_id=self.channel, thread_ts=thread_ts, status=THINKING
                ),
            )
        except _Refused as exc:
            native.refuse_status(self.team, exc.error)
            return
        self.status_shown = True

    async def _clear_status(self) -> None:
        """Take the status line away (an empty status clears it); never fails the reply."""
        if not self.status_shown or not self.thread_ts:
            return
        self.status_shown = False
        thread_ts = self.thread_ts
        try:
            await _native(
                "assistant.threads.setStatus",
                lambda: self.client.assistant_threads_setStatus(
                    channel_id=self.channel, thread_ts=thread_ts, status=""
                ),
            )
        except (_Refused, PlatformError) as exc:
            log.debug("slack: could not clear the status line: %s", exc)

    # ----- native streams

    def _streams_usable(self) -> bool:
        native = self.native
        return (
            native is not None
            and bool(self.thread_ts)
            and bool(self.recipient)
            and native.streams_in(self.team)
        )

    def _stream_text(self, text: str, *, final: bool) -> str:
        """What a stream is sent: the Markdown without the writing marker (a stream only grows, and Slack
        shows its own indicator), with Slack's control characters escaped, so model text can never become
        a mention (``<!channel>``) or a link Slack would resolve. The escape is per character: the
        escaped text of a longer preview still extends what was appended."""
        return escape(text if final else text.removesuffix(self.limits.writing_marker))

    async def _start_stream(self, text: str) -> StreamRef | None:
        assert self.native is not None and self.thread_ts is not None
        body, thread_ts = self._stream_text(text, final=False), self.thread_ts
        try:
            response = await _native(
                "chat.startStream",
                lambda: self.client.chat_startStream(
                    channel=self.channel,
                    thread_ts=thread_ts,
                    recipient_team_id=self.team or None,
                    recipient_user_id=self.recipient,
                    markdown_text=body,
                ),
            )
        except _Refused as exc:
            self.native.refuse_streams(self.team, exc.error)
            return None
        return StreamRef(str(response["ts"]), body)

    async def _edit_stream(self, ref: StreamRef, text: str, *, final: bool) -> str | None:
        """Append what is new (stop the stream on the final text); else go on by ``chat.update``.

        Returns the message's ``ts`` once the stream is over, which the core edits from then on."""
        body = self._stream_text(text, final=final)
        if ref.open and body.startswith(ref.appended):
            delta = body[len(ref.appended) :]
            try:
                if final:
                    await _native(
                        "chat.stopStream",
                        lambda: self.client.chat_stopStream(
                            channel=self.channel, ts=ref.ts, markdown_text=delta or None
                        ),
                    )
                    ref.open, ref.appended = False, body
                    return ref.ts
                if delta:
                    await _native(
                        "chat.appendStream",
                        lambda: self.client.chat_appendStream(
                            channel=self.channel, ts=ref.ts, markdown_text=delta
                        ),
                    )
                    ref.appended = body
                return None
            except _Refused as exc:
                assert self.native is not None
                if not stream_over(exc.error):  # a refusal, not just the end of this one stream
                    self.native.refuse_streams(self.team, exc.error)
        if ref.open:  # end the stream (best effort) and go on editing the same message
            ref.open = False
            with contextlib.suppress(_Refused, PlatformError):
                await _native(
                    "chat.stopStream", lambda: self.client.chat_stopStream(channel=self.channel, ts=ref.ts)
                )
        await self.edit(ref.ts, text, final=final)
        return ref.ts


class _Refused(Exception):
    """The workspace refused a native feature (:data:`adapters.slack.native.REFUSALS`), or a stream is
    over (:data:`adapters.slack.native.STREAM_OVER`)."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"slack {method}: {error}")
        self.error = error


async def _native(method: str, call: Callable[[], Awaitable[Any]]) -> Any:
    """A native-feature call: a refusal is :class:`_Refused`, anything else as :func:`_call` gives it."""
    try:
        return await call()
    except SlackApiError as exc:
        error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        if isinstance(error, str) and (refusal(error) or stream_over(error)):
            raise _Refused(method, error) from exc
        raise translate(method, exc) from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise translate(method, exc) from exc


async def _call(method: str, call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except (TimeoutError, SlackApiError, aiohttp.ClientError) as exc:
        raise translate(method, exc) from exc
