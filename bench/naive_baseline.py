"""The article's naive loop, for side-by-side figures: the whole history every turn, every message
tokenised every turn, and an edit of the platform message on every delta."""

from __future__ import annotations

from collections.abc import AsyncIterator

from core.bot_profile import BotProfile
from core.errors import PlatformError
from core.model_client import ChatMessage, ChatModel
from core.sqlite_store import SQLiteStore
from core.streaming import ReplyTarget
from core.tokens import TokenCounter


class NaiveBot:
    """Stores messages in the same SQLite store, but reads and re-counts all of them on every turn."""

    def __init__(self, bot: BotProfile, store: SQLiteStore, model: ChatModel, counter: TokenCounter) -> None:
        self.bot = bot
        self.store = store
        self.model = model
        self.counter = counter

    async def history(self, session: str) -> list[ChatMessage]:
        rows = await self.store.recent_messages(session, limit=1_000_000)
        return [{"role": m.role, "content": m.content} for m in reversed(rows)]

    async def reply(self, session: str, text: str) -> AsyncIterator[str]:
        await self.store.add_message(session, "user", text, 0)
        messages: list[ChatMessage] = [{"role": "system", "content": self.bot.system_prompt}]
        messages += await self.history(session)
        total = sum(self.counter.count(m["content"]) for m in messages)  # "check the 80%" every turn
        del total
        parts: list[str] = []
        async for delta in self.model.stream(self.bot.model_name, messages, self.bot.params):
            parts.append(delta)
            yield delta
        await self.store.add_message(session, "assistant", "".join(parts), 0)

    async def reply_text(self, session: str, text: str) -> str:
        return "".join([d async for d in self.reply(session, text)])


async def naive_stream(chunks: AsyncIterator[str], target: ReplyTarget, *, keep_going: bool = False) -> int:
    """Edit on every delta, as the article's streaming example prints every chunk. Returns calls made.

    With ``keep_going`` a refused call (a rate limit, any platform error) is ignored and the loop goes on
    with the next delta, like a bot that logs errors and carries on; refused calls are counted too.
    """
    text = ""
    ref: object | None = None
    calls = 0
    async for chunk in chunks:
        text += chunk
        if not text.strip():
            continue
        try:
            if ref is None:
                ref = await target.send(text[: target.limits.max_chars], final=False)
            else:
                await target.edit(ref, text[: target.limits.max_chars], final=False)
        except PlatformError:
            if not keep_going:
                raise
        calls += 1
    return calls
