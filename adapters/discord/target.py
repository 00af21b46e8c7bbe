"""Where a reply lands on Discord: send, edit and typing on a channel, with discord.py's errors translated.

discord.py waits out short rate limits itself (up to five tries); a wait longer than the client's
``max_ratelimit_timeout`` raises ``discord.RateLimited`` instead. Both that and a 429 it gave up on become
:class:`core.errors.RateLimited`, so the streaming core merges the text into a later edit and retries final
text until it lands.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import discord

from core.errors import MessageTooLong, PlatformError, RateLimited
from core.pacing import Gate
from core.streaming import PlatformLimits

INVALID_FORM_BODY = 50035


def retry_after_of(exc: discord.HTTPException) -> float:
    """Seconds to wait after a 429 discord.py gave up on (its ``Retry-After`` header, else one second)."""
    try:
        return float(exc.response.headers.get("Retry-After", 1.0))
    except (AttributeError, TypeError, ValueError):
        return 1.0


def translate(exc: Exception) -> PlatformError:
    """discord.py's exception as the core's: rate limits, too-long text, and everything else."""
    if isinstance(exc, discord.RateLimited):
        return RateLimited(exc.retry_after, "Discord asked for a long pause")
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429:
            return RateLimited(retry_after_of(exc), "Discord kept answering 429")
        if exc.code == INVALID_FORM_BODY and "length" in exc.text.lower():
            return MessageTooLong(f"Discord refused the text as too long ({exc.text})")
        return PlatformError(f"Discord answered {exc.status} (code {exc.code}): {exc.text}")
    return PlatformError(f"could not reach Discord: {type(exc).__name__}: {exc}")


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise discord.py and connection errors as :mod:`core.errors` types."""
    try:
        yield
    except (discord.DiscordException, aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise translate(exc) from exc


class DiscordTarget:
    """One reply in a channel, DM or thread; the first message answers the user's as a reply."""

    def __init__(
        self,
        channel: discord.abc.Messageable,
        *,
        limits: PlatformLimits,
        gate: Gate | None = None,
        reply_to: discord.Message | None = None,
    ) -> None:
        self.channel = channel
        self._limits = limits
        self._gate = gate
        self._reply_to = reply_to

    @property
    def limits(self) -> PlatformLimits:
        return self._limits

    @property
    def gate(self) -> Gate | None:
        return self._gate

    @property
    def address(self) -> dict[str, int | None]:
        """Where this reply goes, as JSON (kept while the reply is in flight, for crash recovery)."""
        return {"channel_id": getattr(self.channel, "id", None)}

    def ref_address(self, ref: object) -> dict[str, int]:
        if not isinstance(ref, discord.Message | discord.PartialMessage):
            raise TypeError(f"not a Discord message: {ref!r}")
        return {"channel_id": ref.channel.id, "message_id": ref.id}

    def ref_from(self, address: Any) -> discord.PartialMessage:
        get = getattr(self.channel, "get_partial_message", None)
        if get is None:
            raise PlatformError(f"cannot address messages in {self.channel!r}")
        message: discord.PartialMessage = get(int(address["message_id"]))
        return message

    async def send(self, text: str, *, final: bool) -> discord.Message:
        reference = self._reply_to.to_reference(fail_if_not_exists=False) if self._reply_to else None
        with translated():
            if reference is None:
                message = await self.channel.send(text)
            else:
                message = await self.channel.send(text, reference=reference)
        self._reply_to = None  # continuations follow as plain messages
        return message

    async def edit(self, ref: object, text: str, *, final: bool) -> None:
        if not isinstance(ref, discord.Message | discord.PartialMessage):
            raise TypeError(f"not a Discord message: {ref!r}")
        with translated():
            await ref.edit(content=text)

    async def typing(self) -> None:
        with translated():
            await self.channel.typing()
