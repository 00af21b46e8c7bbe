"""👍 / 👎 under Telegram replies: an inline keyboard added to the reply's last message once its final text
landed (``editMessageReplyMarkup``, a separate call, so the text is never touched), and the
``callback_query`` a click sends (polling or webhook alike).

The voter's acknowledgement is ``answerCallbackQuery`` (a toast only they see, which also stops the
button's spinner); after a vote the keyboard is removed. The rule for votes is in :mod:`adapters.feedback`.
Button data is ``fb:<turn>:up|down``, well inside the 64 bytes Telegram allows for ``callback_data``
(https://core.telegram.org/bots/api#inlinekeyboardbutton).
"""

from __future__ import annotations

import logging

from telegram import Bot, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError

from adapters.base import ReplyDispatcher
from adapters.feedback import DOWN_LABEL, UP_LABEL, Feedback, add_buttons, payload
from adapters.telegram.target import SentMessage, TelegramTarget, is_not_modified, translate
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from core.store import DOWN, UP
from core.streaming import ReplyTarget, StreamedReply

log = logging.getLogger(__name__)


def keyboard(turn_id: int) -> InlineKeyboardMarkup:
    """The two buttons for a turn, on one row."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(UP_LABEL, callback_data=payload(turn_id, UP)),
                InlineKeyboardButton(DOWN_LABEL, callback_data=payload(turn_id, DOWN)),
            ]
        ]
    )


class TelegramFeedback:
    """Adds the buttons after each final reply and handles the clicks."""

    def __init__(self, feedback: Feedback, dispatcher: ReplyDispatcher) -> None:
        self.feedback = feedback
        self.dispatcher = dispatcher
        dispatcher.after_reply.append(self.after_reply)

    async def after_reply(
        self, message: IncomingMessage, target: ReplyTarget, result: StreamedReply | None
    ) -> None:
        turn_id = await self.feedback.turn_for(message, result)
        if turn_id is None or result is None or not isinstance(target, TelegramTarget):
            return
        last = result.refs[-1]
        if not isinstance(last, SentMessage):
            return
        bot, markup = target.bot, keyboard(turn_id)

        async def add() -> None:
            try:
                await bot.edit_message_reply_markup(
                    chat_id=last.chat_id, message_id=last.message_id, reply_markup=markup
                )
            except TelegramError as exc:
                raise translate(exc) from exc

        await add_buttons(message, target, self.feedback.engine.clock, add)

    def on_click(self, query: CallbackQuery, bot: Bot) -> None:
        """Handle a click in the background (the update handler does no I/O)."""
        self.dispatcher.background(self._on_click(query, bot), name="feedback:telegram")

    async def _on_click(self, query: CallbackQuery, bot: Bot) -> None:
        outcome = await self.feedback.click(query.data, query.from_user.id)
        if outcome is None:
            await _answer(bot, query, None)  # not our button: stop its spinner, say nothing
            return
        await _answer(bot, query, outcome.text)
        shown = query.message
        if outcome.closes and shown is not None:
            try:
                await bot.edit_message_reply_markup(chat_id=shown.chat.id, message_id=shown.message_id)
            except TelegramError as exc:
                if not is_not_modified(exc):  # a second click raced the first: already gone
                    log.warning("telegram: could not remove the feedback buttons: %s", exc.message)


async def _answer(bot: Bot, query: CallbackQuery, text: str | None) -> None:
    try:
        await bot.answer_callback_query(query.id, text=text)
    except TelegramError as exc:  # a click older than Telegram's answer window: the vote still counted
        log.info("telegram: could not answer a button click: %s", exc.message)


def telegram_feedback(
    engine: ConversationEngine, dispatcher: ReplyDispatcher, *, enabled: bool
) -> TelegramFeedback | None:
    """Feedback buttons for the runner, or ``None`` when turned off or the store keeps no votes."""
    feedback = Feedback.create(engine, "telegram", enabled=enabled)
    return TelegramFeedback(feedback, dispatcher) if feedback is not None else None
