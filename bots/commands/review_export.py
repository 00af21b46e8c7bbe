"""``chatbot review --export FILE``: the turns users voted 👎, as evaluation cases ``chatbot eval`` runs.

Each flagged turn becomes one case: its turns are the user's messages of the conversation up to the rated
question (the ones a model saw: complete, plus the question itself), and its expectation is a ``judge``
rubric that names the reply the user rejected, so the case passes when a new reply does better. The
rejected reply is kept in the case's ``notes`` too. The file's format is features/evaluation/evaluator.py's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.store import DOWNVOTE_PHRASE, ContextMessage, ReviewFlag, ReviewStore

EXPORT_LIMIT = 10_000  # flags read for one export
REPLY_CHARS = 1_500  # of the rejected reply, what the rubric quotes


def rubric(rejected: str) -> str:
    """The judge's rubric for a case made from a 👎 vote."""
    quoted = " ".join(rejected.split())
    if len(quoted) > REPLY_CHARS:
        quoted = quoted[: REPLY_CHARS - 1] + "…"
    if not quoted:
        return "The reply answers the user's last message correctly and helpfully."
    return (
        "The user rated an earlier reply to this same conversation as unhelpful (thumbs down). That reply "
        f'was: "{quoted}". Pass only if the new reply answers the user\'s last message correctly and '
        "helpfully and does not repeat what was wrong with the rejected reply."
    )


def case_from(flag: ReviewFlag, messages: list[ContextMessage]) -> dict[str, Any] | None:
    """One evaluation case for a flagged turn; ``None`` when nothing of the question is left."""
    turns: list[str] = []
    rejected = ""
    after = False
    for message in messages:
        if message.flagged:
            turns.append(message.content)
            after = True
        elif after and message.role == "assistant":
            rejected = message.content
            break
        elif not after and message.role == "user" and message.complete:
            turns.append(message.content)
    if not after:  # the conversation is gone: the question kept with the flag is all there is
        turns = [flag.user_text] if flag.user_text.strip() else []
    if not turns:
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(flag.turn_started_at))
    return {
        "name": f"feedback-{flag.id}",
        "turns": turns,
        "expect": {"judge": rubric(rejected)},
        "notes": f"thumbs down by {flag.user_id or '?'} on {flag.platform or '?'}, {when}. "
        f"Rejected reply: {rejected or '(no longer stored)'}",
    }


async def exported_cases(
    review: ReviewStore,
    *,
    bot: str | None,
    include_resolved: bool = False,
    context: int = 6,
) -> dict[str, Any] | None:
    """The 👎 flags as a cases file's JSON; ``None`` when there are none."""
    flags = [
        flag
        for flag in await review.flags(bot=bot, include_resolved=include_resolved, limit=EXPORT_LIMIT)
        if flag.phrase == DOWNVOTE_PHRASE
    ]
    bots = sorted({flag.bot for flag in flags})
    if len(bots) > 1:
        raise ConfigError(
            f"the thumbs-down flags are of several bots ({', '.join(bots)}): choose one with --bot"
        )
    cases = []
    for flag in reversed(flags):  # oldest first
        case = case_from(flag, await review.context(flag, before=context))
        if case is not None:
            cases.append(case)
    if not cases:
        return None
    return {
        "bot": bot or bots[0],
        "description": "Turns users rated thumbs down, exported by chatbot review --export on "
        + time.strftime("%Y-%m-%d %H:%M"),
        "cases": cases,
    }


def write_cases(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
