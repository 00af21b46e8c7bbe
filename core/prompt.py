"""Where the prompt for a turn is built: system prompt (+ summary, + context), the history that fits, and
the new message, within the budget of :mod:`core.trimming`. With tools, a stored reply's tool calls and
results go back in as they were sent (:func:`core.tools.replay`); its stored token count includes them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from core.attachments import ImagePart
from core.bot_profile import BotProfile
from core.errors import ModelError
from core.hooks import TurnHooks
from core.model_client import ChatMessage, ChatModel
from core.store import ConversationStore, SessionState, StoredMessage
from core.summary import SUMMARY_HEADING, fold_into_summary
from core.tokens import REPLY_PRIMING, TokenCounter
from core.tools import replay
from core.trimming import cut_to_tokens, fit_history, prompt_budget, view_for_prompt

log = logging.getLogger(__name__)

NOTICE_DROPPED = (
    "ℹ️ Our conversation is longer than I can keep in mind; I'm only using its most recent part.\n\n"
)
NOTICE_SUMMARISED = "ℹ️ Earlier parts of our conversation were summarised so that they fit in my memory.\n\n"


@dataclass
class Prompt:
    """The messages to send, their estimated tokens, and a notice for the user (history dropped).

    ``tokens`` is the budgeted estimate (correction and safety margin applied); ``raw_tokens`` is our count
    before either, the one to compare with what the server reports.
    """

    messages: list[ChatMessage]
    tokens: int
    notice: str = ""
    raw_tokens: int = 0


class PromptParts(Protocol):
    """What a prompt is built from, read afresh for every prompt: the engine, whose ``bot`` a caller may
    replace at any time (a changed system prompt or budget applies to the next turn)."""

    bot: BotProfile
    store: ConversationStore
    model: ChatModel
    counter: TokenCounter
    hooks: TurnHooks


class PromptBuilder:
    """Builds each turn's prompt for one engine, folding dropped history into the summary when asked to."""

    def __init__(self, parts: PromptParts) -> None:
        self.parts = parts
        self._system: tuple[str, TokenCounter, int] | None = None  # (prompt, counter, its tokens)

    @property
    def bot(self) -> BotProfile:
        return self.parts.bot

    @property
    def store(self) -> ConversationStore:
        return self.parts.store

    @property
    def model(self) -> ChatModel:
        return self.parts.model

    @property
    def counter(self) -> TokenCounter:
        return self.parts.counter

    @property
    def context_share(self) -> float:
        return self.parts.hooks.context_share

    @property
    def system_tokens(self) -> int:
        """The system prompt's tokens, counted once per prompt text and counter."""
        return self._system_tokens(self.bot)

    def _system_tokens(self, bot: BotProfile) -> int:
        prompt, counter = bot.system_prompt, self.counter
        cached = self._system
        if cached is None or cached[0] != prompt or cached[1] is not counter:
            cached = self._system = (prompt, counter, counter.message_tokens(prompt))
        return cached[2]

    def _fixed_cost(self, bot: BotProfile, context_cost: int, state: SessionState) -> int:
        cost = self.counter.budgeted(self._system_tokens(bot)) + REPLY_PRIMING + context_cost
        if bot.trim.strategy == "summary" and state.summary:
            cost += self.counter.budgeted(state.summary_tokens)
        return cost

    async def build(
        self,
        session: str,
        user_id: int,
        user_text: str,
        user_tokens: int,
        context: str,
        *,
        harder: bool,
        images: Sequence[ImagePart] = (),
        tools: bool = False,
        reserve: int = 0,
        bot: BotProfile | None = None,
    ) -> Prompt:
        """The prompt for the message ``user_id`` (already stored); ``harder`` halves the budget.

        ``images`` go with the new message as content parts; their tokens (:mod:`core.image_tokens`) are
        counted with the message's. ``tools`` replays stored tool calls and results (only for a request
        that offers tools); ``reserve`` tokens are kept free of history (for this turn's tool results).
        ``bot``: the profile the turn started with (default: the engine's current one)."""
        bot, counter = bot or self.bot, self.counter
        budget = prompt_budget(bot, harder=harder)
        state = await self.store.session(session)
        if context and harder:
            context = cut_to_tokens(context, int(budget * self.context_share), counter)
        context_tokens = counter.count(context) if context else 0  # counted once: cost and raw below
        context_cost = counter.budgeted(context_tokens) if context else 0
        image_cost = counter.budgeted(sum(image.tokens for image in images))
        fixed = self._fixed_cost(bot, context_cost, state) + image_cost
        user_cost = counter.budgeted(user_tokens)
        if fixed + user_cost > budget:
            user_text = cut_to_tokens(user_text, budget - fixed, counter)
            user_tokens = counter.message_tokens(user_text)
            user_cost = counter.budgeted(user_tokens)
        room = max(0, budget - fixed - user_cost - reserve)

        notice = ""
        after_id = state.summary_upto if bot.trim.strategy == "summary" else 0
        max_messages = bot.trim.max_turns * 2 if bot.trim.strategy == "turns" else None
        plan = await fit_history(
            self.store,
            session,
            counter,
            room=room,
            before_id=user_id,
            after_id=after_id,
            max_messages=max_messages,
        )
        if plan.dropped and bot.trim.strategy == "summary" and plan.oldest_kept_id is not None:
            target = int(room * bot.trim.summary_target)
            kept = await fit_history(
                self.store, session, counter, room=target, before_id=user_id, after_id=after_id
            )
            fold_before = kept.oldest_kept_id if kept.oldest_kept_id is not None else user_id
            try:
                state = await fold_into_summary(
                    self.model, self.store, counter, bot, session, state, fold_before, budget
                )
            except ModelError as exc:
                log.warning("%s: summarising failed (%s); dropping old history instead", session, exc)
            else:
                fixed = self._fixed_cost(bot, context_cost, state) + image_cost
                room = max(0, budget - fixed - user_cost - reserve)
                plan = await fit_history(
                    self.store, session, counter, room=room, before_id=user_id, after_id=state.summary_upto
                )
                if not state.trim_notified:
                    notice = NOTICE_SUMMARISED
        if plan.dropped and not notice and not state.trim_notified:
            notice = NOTICE_DROPPED
        if notice:
            await self.store.mark_trim_notified(session)

        exchanges = await self._exchanges(session, plan.messages, user_id) if tools else {}
        messages = self._assemble(bot, state, plan.messages, user_text, context, exchanges)
        if images:
            last_message = messages[-1]
            last_message["content"] = [
                {"type": "text", "text": last_message["content"]},
                *(image.content_part() for image in images),
            ]
        raw = (
            self._system_tokens(bot)
            + REPLY_PRIMING
            + context_tokens
            + (state.summary_tokens if bot.trim.strategy == "summary" and state.summary else 0)
            + sum(m.tokens for m in plan.messages)
            + user_tokens
            + sum(image.tokens for image in images)
        )
        return Prompt(
            messages=messages, tokens=fixed + plan.tokens + user_cost, notice=notice, raw_tokens=raw
        )

    async def _exchanges(self, session: str, history: list[StoredMessage], before_id: int) -> dict[int, str]:
        """The stored tool steps of the replies in ``history``, by message id."""
        read = getattr(self.store, "tool_exchanges", None)
        if read is None or not history:
            return {}
        found: dict[int, str] = await read(session, after_id=history[0].id - 1, before_id=before_id)
        return found

    def _assemble(
        self,
        bot: BotProfile,
        state: SessionState,
        history: list[StoredMessage],
        user_text: str,
        context: str,
        exchanges: dict[int, str] | None = None,
    ) -> list[ChatMessage]:
        system = bot.system_prompt
        if bot.trim.strategy == "summary" and state.summary:
            system = f"{system}\n\n{SUMMARY_HEADING}\n{state.summary}"
        if context:
            system = f"{system}\n\n{context}"
        messages: list[ChatMessage] = [{"role": "system", "content": system}]
        max_chars = bot.max_input_chars
        last: ChatMessage | None = None
        for message in history:
            content = message.content
            if exchanges and message.id in exchanges:
                replayed = replay(content, exchanges[message.id])
                messages += replayed
                last = replayed[-1]
                continue
            if len(content) > max_chars:
                content = view_for_prompt(content, max_chars)
            if last is not None and last["role"] == message.role:
                last["content"] += "\n\n" + content  # strict templates want user/assistant to alternate
                continue
            last = {"role": message.role, "content": content}
            messages.append(last)
        if last is not None and last["role"] == "user":
            last["content"] += "\n\n" + user_text
        else:
            messages.append({"role": "user", "content": user_text})
        return messages
