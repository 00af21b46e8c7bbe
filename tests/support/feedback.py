"""What the feedback-button tests of every platform (tests/test_feedback_*.py) read back: the votes in the
store and ``chatbot stats``'s feedback row."""

from __future__ import annotations

from pathlib import Path

from core.conversation import ConversationEngine
from core.store import feedback_of
from tests.support.cli import run_chatbot


async def votes_of(engine: ConversationEngine) -> list[tuple[str, str, int, int]]:
    """(bot, platform, 👍, 👎) for every bot and platform with votes."""
    feedback = feedback_of(engine.store)
    assert feedback is not None
    return [(c.bot, c.platform, c.up, c.down) for c in await feedback.vote_counts(0, 2**40)]


async def stats_row(platform: str, cwd: Path, env: dict[str, str]) -> list[str]:
    """``chatbot stats``'s feedback row for the default bot on ``platform``: 👍, 👎, votes, positive share."""
    code, out, err = await run_chatbot(["stats"], b"", cwd, env)
    assert code == 0, out + err
    line = next(row for row in out.splitlines() if row.startswith(f"default on {platform}"))
    return line.split()[-4:]
