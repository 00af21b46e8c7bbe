"""A model that answers at once, in process: what is left of a turn's time is the bot's own overhead."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from core.bot_profile import ModelParams
from core.model_client import ChatMessage, Usage


class _Stream:
    def __init__(self, text: str, chunks: int) -> None:
        self.text = text
        self.chunks = chunks
        self.usage: Usage | None = None
        self.finish_reason: str | None = None  # "stop" once the whole text is out, as a real server says

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    async def _run(self) -> AsyncIterator[str]:
        size = max(1, len(self.text) // self.chunks)
        for start in range(0, len(self.text), size):
            yield self.text[start : start + size]
        self.usage = Usage(prompt_tokens=0, completion_tokens=len(self.text) // 4)
        self.finish_reason = "stop"


class InstantModel:
    """Replies with a fixed text split into ``chunks`` deltas; records the size of each prompt."""

    def __init__(self, text: str = "An instant answer of about twenty words, " * 3, chunks: int = 20) -> None:
        self.text = text
        self.chunks = chunks
        self.prompt_messages: list[int] = []

    def stream(self, model: str, messages: Sequence[ChatMessage], params: ModelParams) -> _Stream:
        self.prompt_messages.append(len(messages))
        return _Stream(self.text, self.chunks)

    async def complete(
        self, model: str, messages: Sequence[ChatMessage], params: ModelParams
    ) -> tuple[str, Usage | None]:
        return "a summary", None
