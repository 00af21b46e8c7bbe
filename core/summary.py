"""The running summary: messages that no longer fit are folded into it by a separate model call.

Incremental: each call sees the previous summary and only the messages dropped since, never the whole
conversation again. The summary is stored with the session and injected into the system message.
"""

from __future__ import annotations

import logging

from core.bot_profile import BotProfile, ModelParams
from core.model_client import ChatModel
from core.store import ConversationStore, SessionState, StoredMessage
from core.tokens import TokenCounter

log = logging.getLogger(__name__)

SUMMARY_INSTRUCTIONS = (
    "You maintain a running summary of a chat between a user and an assistant. Merge the new messages into "
    "the summary so far. Keep facts, names, numbers, decisions, open questions and the user's preferences; "
    "drop greetings and filler. Write plain, dense prose of at most {words} words. Output only the summary."
)
SUMMARY_HEADING = "Summary of the earlier conversation (older messages are no longer shown):"


def summary_token_cap(budget: int) -> int:
    return max(64, min(600, budget // 6))


async def _messages_to_fold(
    store: ConversationStore, session_id: str, counter: TokenCounter, after_id: int, before_id: int, cap: int
) -> list[StoredMessage]:
    picked: list[StoredMessage] = []
    used = 0
    upper = before_id
    while True:
        page = await store.recent_messages(session_id, after_id=after_id, before_id=upper, limit=64)
        for message in page:
            if used + message.tokens > cap and picked:
                picked.reverse()
                return picked
            picked.append(message)
            used += message.tokens
        if len(page) < 64:
            picked.reverse()
            return picked
        upper = page[-1].id


async def fold_into_summary(
    model: ChatModel,
    store: ConversationStore,
    counter: TokenCounter,
    bot: BotProfile,
    session_id: str,
    state: SessionState,
    before_id: int,
    budget: int,
) -> SessionState:
    """Fold messages older than ``before_id`` (and newer than the summary) into the summary."""
    cap = summary_token_cap(budget)
    input_cap = max(cap * 4, budget // 2)
    to_fold = await _messages_to_fold(store, session_id, counter, state.summary_upto, before_id, input_cap)
    if not to_fold:
        return state
    transcript = "\n".join(
        f"{'User' if m.role == 'user' else 'Assistant'}: {m.content[:4000]}" for m in to_fold
    )
    words = max(40, int(cap * 0.7))
    request = [
        {"role": "system", "content": SUMMARY_INSTRUCTIONS.format(words=words)},
        {
            "role": "user",
            "content": f"Summary so far:\n{state.summary or '(none)'}\n\nNew messages:\n{transcript}",
        },
    ]
    params = ModelParams(temperature=0.2, max_tokens=cap, top_p=1.0, frequency_penalty=0.0)
    text, _usage = await model.complete(bot.summary_model or bot.model_name, request, params)
    text = text.strip()
    if not text:
        log.warning("summary call for %s returned nothing; history will be dropped instead", session_id)
        return state
    tokens = counter.message_tokens(SUMMARY_HEADING + "\n" + text)
    upto = to_fold[-1].id
    await store.set_summary(session_id, text, upto, tokens)
    return SessionState(
        summary=text, summary_upto=upto, summary_tokens=tokens, trim_notified=state.trim_notified
    )
