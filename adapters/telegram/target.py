"""Where a reply meets the Bot API: send, edit and typing in one chat (or forum topic).

Telegram's errors are translated here, at the boundary:

- ``RetryAfter`` -> :class:`core.errors.RateLimited` (the streaming engine waits and merges);
- "message is too long" -> :class:`core.errors.MessageTooLong`;
- "message is not modified" on an edit -> success (the user already sees that text);
- "can't parse entities" (or too long once formatted) on a final text -> the same text again, plain;
- an edit of a message someone deleted -> the text is posted as a new message;
- anything else -> :class:`core.errors.PlatformError`.

In private chats previews are drafts (:mod:`adapters.telegram.drafts`) when the bot has a
:class:`DraftSupport`: the first preview opens a draft, later ones update it, the final text is one real
message, whose reference then replaces the draft's. A refused draft falls back to the ordinary path with
the same text, so nothing is lost or shown twice.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from telegram import Bot, Message, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, InvalidToken, RetryAfter, TelegramError

from adapters.telegram.drafts import DraftRef, DraftSupport
from adapters.telegram.formatting import render_final
from core.errors import MessageTooLong, PlatformError, RateLimited
from core.pacing import Gate
from core.streaming import PlatformLimits

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class SentMessage:
    """The reference ``send`` hands to the streaming engine: which Telegram message to edit."""

    chat_id: int
    message_id: int


def _says(exc: TelegramError, *phrases: str) -> bool:
    text = exc.message.lower()
    return any(phrase in text for phrase in phrases)


def is_not_modified(exc: TelegramError) -> bool:
    return isinstance(exc, BadRequest) and _says(exc, "message is not modified")


def is_markup_rejected(exc: TelegramError) -> bool:
    return isinstance(exc, BadRequest) and _says(exc, "can't parse entities", "can't find end", "too long")


def is_gone(exc: TelegramError) -> bool:
    return isinstance(exc, BadRequest) and _says(exc, "message to edit not found", "message can't be edited")


def retry_seconds(exc: RetryAfter) -> float:
    """Seconds to wait, read without the deprecation warning PTB 22 gives for the int form."""
    value = getattr(exc, "_retry_after", None)
    if value is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def translate(exc: TelegramError) -> PlatformError:
    """The core's error for a Telegram error (raise it ``from exc``)."""
    if isinstance(exc, RetryAfter):
        return RateLimited(retry_seconds(exc))
    if isinstance(exc, BadRequest) and _says(exc, "message is too long", "text is too long"):
        return MessageTooLong(f"Telegram: {exc.message}")
    return PlatformError(f"Telegram: {exc.message}")


class TelegramTarget:
    """One reply's place in a chat: the chat, its forum topic, and the message it answers."""

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        *,
        limits: PlatformLimits,
        thread_id: int | None = None,
        reply_to: int | None = None,
        gate: Gate | None = None,
        in_group: bool = False,
        drafts: DraftSupport | None = None,
    ) -> None:
        self._bot = bot
        self._drafts = None if in_group else drafts
        self.chat_id = chat_id
        self.thread_id = thread_id
        self.in_group = in_group
        self._reply_to = reply_to
        self._limits = limits
        self._gate = gate

    @property
    def bot(self) -> Bot:
        """The bot this reply is sent with (for calls beyond the text: feedback buttons)."""
        return self._bot

    @property
    def limits(self) -> PlatformLimits:
        return self._limits

    @property
    def gate(self) -> Gate | None:
        return self._gate

    @property
    def address(self) -> dict[str, Any]:
        """Where this reply goes, as JSON (kept while the reply is in flight, for crash recovery)."""
        return {"chat_id": self.chat_id, "thread_id": self.thread_id, "in_group": self.in_group}

    def ref_address(self, ref: object) -> dict[str, int] | None:
        if isinstance(ref, DraftRef):
            return None  # a draft outlives no restart: recovery sends the text shown as a new message
        if not isinstance(ref, SentMessage):
            raise TypeError(f"not a Telegram message reference: {ref!r}")
        return {"chat_id": ref.chat_id, "message_id": ref.message_id}

    def ref_from(self, address: Any) -> SentMessage:
        return SentMessage(int(address["chat_id"]), int(address["message_id"]))

    async def send(self, text: str, *, final: bool) -> SentMessage | DraftRef:
        if not final and self._drafts is not None and self._drafts.usable_in(self.chat_id):
            draft = DraftRef(self.chat_id, self._drafts.new_id())
            if await self._show_draft(draft, text):
                return draft
        return await self._send_message(text, final=final)

    async def _send_message(self, text: str, *, final: bool) -> SentMessage:
        reply = (
            ReplyParameters(self._reply_to, allow_sending_without_reply=True)
            if self._reply_to is not None
            else None
        )

        async def post(body: str, parse_mode: str | None) -> Message:
            return await self._bot.send_message(
                self.chat_id,
                body,
                parse_mode=parse_mode,
                message_thread_id=self.thread_id,
                reply_parameters=reply,
            )

        message = await self._deliver(post, text, final=final)
        if message is None:  # only edits answer "not modified"
            raise PlatformError("Telegram: sendMessage returned no message")
        self._reply_to = None  # only a reply's first message answers the user's message
        return SentMessage(self.chat_id, message.message_id)

    async def edit(self, ref: object, text: str, *, final: bool) -> SentMessage | None:
        if isinstance(ref, DraftRef):
            if not final and await self._show_draft(ref, text):
                return None
            # the final text (or a preview whose draft was refused) as a real message, edited from now on
            return await self._send_message(text, final=final)
        if not isinstance(ref, SentMessage):
            raise TypeError(f"not a Telegram message reference: {ref!r}")

        async def change(body: str, parse_mode: str | None) -> object:
            return await self._bot.edit_message_text(
                body, chat_id=ref.chat_id, message_id=ref.message_id, parse_mode=parse_mode
            )

        try:
            await self._deliver(change, text, final=final, editing=True)
        except _Gone:
            log.info("chat %s: message %s is gone; posting the text anew", self.chat_id, ref.message_id)
            sent = await self._send_message(text, final=final)
            ref.message_id = sent.message_id
        return None

    async def _show_draft(self, draft: DraftRef, text: str) -> bool:
        """Show ``text`` (plain, like every preview) in the draft; ``False`` if Telegram refused drafts."""
        assert self._drafts is not None
        try:
            await self._bot.send_message_draft(
                draft.chat_id, draft.draft_id, text, message_thread_id=self.thread_id
            )
        except InvalidToken as exc:  # 404: this Bot API server has no sendMessageDraft (the token works)
            self._drafts.refused_everywhere(exc.message)
            return False
        except BadRequest as exc:
            self._drafts.refused_in(self.chat_id, exc.message)
            return False
        except TelegramError as exc:
            raise translate(exc) from exc
        return True

    async def typing(self) -> None:
        try:
            await self._bot.send_chat_action(
                self.chat_id, ChatAction.TYPING, message_thread_id=self.thread_id
            )
        except TelegramError as exc:
            raise translate(exc) from exc

    async def _deliver(
        self,
        call: Callable[[str, str | None], Awaitable[T]],
        text: str,
        *,
        final: bool,
        editing: bool = False,
    ) -> T | None:
        """``call`` with the formatted text when final (plain text if Telegram refuses it), else plain."""
        if final:
            markup = render_final(text, self._limits.max_chars, self._limits.measure)
            if markup is not None:
                try:
                    return await self._call(call, markup, ParseMode.HTML, editing=editing)
                except _MarkupRejected as exc:
                    log.info("chat %s: formatting refused (%s); sending plain text", self.chat_id, exc)
        return await self._call(call, text, None, editing=editing)

    async def _call(
        self,
        call: Callable[[str, str | None], Awaitable[T]],
        body: str,
        parse_mode: str | None,
        *,
        editing: bool,
    ) -> T | None:
        try:
            return await call(body, parse_mode)
        except TelegramError as exc:
            if editing and is_not_modified(exc):
                return None
            if editing and is_gone(exc):
                raise _Gone(exc.message) from exc
            if parse_mode is not None and is_markup_rejected(exc):
                raise _MarkupRejected(exc.message) from exc
            raise translate(exc) from exc


class _MarkupRejected(Exception):
    """Telegram refused the formatted text; the plain text goes instead."""


class _Gone(Exception):
    """The message to edit no longer exists."""
