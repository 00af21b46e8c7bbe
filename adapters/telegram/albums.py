"""Telegram albums as one message: photos and files sent together arrive as separate updates that share a
``media_group_id`` (https://core.telegram.org/bots/api#message), the caption on one of them only. They are
collected until no part has come for ``wait`` seconds, then handed on as one message with every file and
the caption, so the user gets one answer about all of them rather than one per photo.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from core.clock import Clock
from core.incoming import IncomingMessage

T = TypeVar("T")
ALBUM_WAIT = 1.0  # Telegram delivers an album's parts within a fraction of a second of each other


@dataclass
class _Album(Generic[T]):
    message: IncomingMessage
    target: T
    last: float


class Albums(Generic[T]):
    """Collects album parts per chat and album; ``submit`` gets the whole album once it is complete."""

    def __init__(
        self, clock: Clock, submit: Callable[[IncomingMessage, T], object], wait: float = ALBUM_WAIT
    ):
        self.clock, self.submit, self.wait = clock, submit, wait
        self._pending: dict[str, _Album[T]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def add(self, key: str, message: IncomingMessage, target: T) -> None:
        album = self._pending.get(key)
        if album is None:
            self._pending[key] = _Album(message, target, self.clock.now())
            self._tasks[key] = asyncio.create_task(self._flush_later(key), name=f"telegram-album-{key}")
            return
        first = album.message
        album.message = replace(
            first,
            text=first.text or message.text,  # the caption rides on one part, not always the first
            attachments=first.attachments + message.attachments,
        )
        album.last = self.clock.now()

    async def _flush_later(self, key: str) -> None:
        while True:
            album = self._pending[key]
            left = album.last + self.wait - self.clock.now()
            if left <= 0:
                break
            await self.clock.sleep(left)
        self._flush(key)

    def _flush(self, key: str) -> None:
        album = self._pending.pop(key)
        self._tasks.pop(key, None)
        self.submit(album.message, album.target)

    async def close(self) -> None:
        """Hand on every album still being collected (at stop), without waiting for more parts."""
        for key, task in list(self._tasks.items()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if key in self._pending:
                self._flush(key)

    def __len__(self) -> int:
        return len(self._pending)
