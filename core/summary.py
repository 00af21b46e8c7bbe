"""The running summary: messages that no longer fit are folded into it by a separate model call.

Incremental: each call sees the previous summary and only the messages dropped since, never the whole
conversation again. Messages are folded oldest first, in batches, and the summary's mark (``summary_upto``)
only moves past what a call actually folded: a failed, empty or partial fold leaves the rest to be folded on
a later turn, so history is summarised late at worst, never lost. The summary is stored with the session
and injected into the system message.
"""

from __future__ import annotations

import logging

from core.bot_profile import BotProfile, ModelParams
from core.errors import ModelError
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


MAX_FOLDS_PER_TURN = 3  # summary calls one turn may make; what is left is folded on the next turns
FOLD_PAGE = 64


def summary_token_cap(budget: int) -> int:
    return max(64, min(600, budget // 6))


async def _oldest_unfolded(
    store: ConversationStore, session_id: str, after_id: int, before_id: int, cap: int
) -> list[StoredMessage]:
    """The oldest complete messages after ``after_id`` (and before ``before_id``) that fit in ``cap`` tokens
    (at least one), oldest first: folding always continues exactly where the summary ends."""
    picked: list[StoredMessage] = []
    used = 0
    lower = after_id
    while True:
        page = await store.messages_between(session_id, after_id=lower, before_id=before_id, limit=FOLD_PAGE)
        for message in page:
            if used + message.tokens > cap and picked:
                return picked
            picked.append(message)
            used += message.tokens
        if len(page) < FOLD_PAGE:
            return picked
        lower = page[-1].id


async def _fold_once(
    model: ChatModel,
    store: ConversationStore,
    counter: TokenCounter,
    bot: BotProfile,
    session_id: str,
    state: SessionState,
    to_fold: list[StoredMessage],
    cap: int,
) -> SessionState | None:
    """``state`` with ``to_fold`` merged into its summary (and stored), or ``None`` if the model gave nothing."""
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
        return None
    tokens = counter.message_tokens(SUMMARY_HEADING + "\n" + text)
    upto = to_fold[-1].id
    await store.set_summary(session_id, text, upto, tokens)
    return SessionState(
        summary=text, summary_upto=upto, summary_tokens=tokens, trim_notified=state.trim_notified
    )


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
    """Fold messages older than ``before_id`` (and newer than the summary) into the summary, oldest first.

    At most ``MAX_FOLDS_PER_TURN`` calls, each folding the oldest messages not yet folded; the summary's
    mark (``summary_upto``) only ever moves past messages a call actually folded. A call that fails after
    others succeeded keeps their work; if the first one fails, its ``ModelError`` propagates. Messages not
    yet folded stay in the store and are folded on a later turn: never skipped.
    """
    cap = summary_token_cap(budget)
    input_cap = max(cap * 4, budget // 2)
    for call in range(MAX_FOLDS_PER_TURN):
        to_fold = await _oldest_unfolded(store, session_id, state.summary_upto, before_id, input_cap)
        if not to_fold:
            break
        try:
            folded = await _fold_once(model, store, counter, bot, session_id, state, to_fold, cap)
        except ModelError as exc:
            if call == 0:
                raise
            log.warning("summary call for %s failed (%s); the rest is folded later", session_id, exc)
            break
        if folded is None:
            log.warning("summary call for %s returned nothing; the rest is folded later", session_id)
            break
        state = folded
    return state
