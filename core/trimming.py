"""Where history is trimmed to fit the context window.

The prompt is ``system (+ summary) + history + new message`` and must stay within
``min(threshold * window, window - max_tokens)`` tokens, each stored count scaled by the counter's
correction and safety margin. History is read newest-first in pages, so a turn's cost depends on how much
fits, not on how long the conversation is. Strategies:

- ``sliding``: keep the newest messages that fit; the oldest drop out (always the system prompt kept).
- ``turns``: the same, and at most ``max_turns`` user/assistant exchanges.
- ``summary``: messages that no longer fit are folded into a running summary (see :mod:`core.summary`).

A message that alone exceeds the room left is cut with a visible marker.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from operator import attrgetter, mul

from core.bot_profile import BotProfile
from core.store import ConversationStore, StoredMessage
from core.tokens import REPLY_PRIMING, TokenCounter

PAGE = 64
MIN_MESSAGE_ROOM = 32
_TOKENS = attrgetter("tokens")
CUT_MARKER = "\n\n[… message cut here: {n} more characters did not fit …]"


def prompt_budget(bot: BotProfile, *, harder: bool = False) -> int:
    """Tokens the prompt may use: the article's 80% of the window, leaving room for the reply."""
    window = bot.window
    budget = min(int(window * bot.trim.threshold), window - bot.params.max_tokens) - REPLY_PRIMING
    if harder:
        budget = budget // 2
    return max(budget, MIN_MESSAGE_ROOM * 4)


def view_for_prompt(content: str, max_chars: int) -> str:
    """The form of a stored message the model sees: whole, or cut at ``max_chars`` with a marker."""
    if len(content) <= max_chars:
        return content
    return content[:max_chars] + CUT_MARKER.format(n=len(content) - max_chars)


def cut_to_tokens(text: str, tokens: int, counter: TokenCounter) -> str:
    """``text`` shortened, with a marker, so it costs at most ``tokens`` as a message."""
    limit = max(MIN_MESSAGE_ROOM, tokens)
    cost = counter.budgeted(counter.message_tokens(text))  # of ``text[:keep]``, counted once per ``keep``
    if cost <= limit:
        return text
    marker_cost = counter.budgeted(counter.count(CUT_MARKER.format(n=len(text))))
    keep = len(text)
    for attempt in range(24):
        if cost + marker_cost <= limit:
            break
        ratio = limit / max(1, cost + marker_cost)
        keep = max(0, min(keep - 1, math.floor(keep * ratio * 0.97)))
        if attempt < 23:  # the last cut is taken as it is, as before
            cost = counter.budgeted(counter.message_tokens(text[:keep]))
    return text[:keep] + CUT_MARKER.format(n=len(text) - keep)


@dataclass
class HistoryPlan:
    """The history that fits, oldest first, and what was left out."""

    messages: list[StoredMessage] = field(default_factory=list)
    tokens: int = 0
    dropped: bool = False
    oldest_kept_id: int | None = None  # messages older than this (and newer than the summary) were left out


async def fit_history(
    store: ConversationStore,
    session_id: str,
    counter: TokenCounter,
    *,
    room: int,
    before_id: int,
    after_id: int = 0,
    max_messages: int | None = None,
) -> HistoryPlan:
    """The newest complete messages of a session that fit in ``room`` tokens."""
    plan = HistoryPlan()
    kept: list[StoredMessage] = []
    upper = before_id
    limit = max_messages if max_messages is not None else 1 << 30
    scale = counter.correction * (1.0 + counter.safety_margin)  # counter.budgeted, inlined: the hot loop
    used = 0
    page_size = max(PAGE // 4, min(room // 32, 512))  # enough rows for the room at ~32 tokens a message
    while True:
        page = await store.recent_messages(session_id, after_id=after_id, before_id=upper, limit=page_size)
        # the newest messages whose running cost fits, summed and searched at C speed (costs are >= 0)
        running = list(accumulate(map(math.ceil, map(mul, map(_TOKENS, page), repeat(scale)))))
        fits = min(bisect_right(running, room - used), limit - len(kept))
        kept += page[:fits]
        if fits:
            used += running[fits - 1]
        if fits < len(page):
            plan.dropped = True
        if plan.dropped or len(page) < page_size:
            break
        upper = page[-1].id
        page_size = min(page_size * 4, 1024)  # a long history that fits (a big window): fewer round trips
    plan.tokens = used
    kept.reverse()
    while kept and kept[0].role == "assistant":  # never start on a reply whose question fell out
        plan.tokens -= counter.budgeted(kept[0].tokens)
        kept.pop(0)
        plan.dropped = True
    plan.messages = kept
    if plan.dropped:
        plan.oldest_kept_id = kept[0].id if kept else before_id
    return plan
