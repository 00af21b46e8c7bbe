"""Native streaming in private chats: ``sendMessageDraft`` previews, finished with one real message.

Bot API 9.3 added ``sendMessageDraft`` and 9.5 opened it to every bot; python-telegram-bot has
``Bot.send_message_draft`` from 22.6 ("22.7: Now all bots can use this method", see ``telegram/_bot.py``
of the installed 22.8). Its docstring: "the streamed draft is ephemeral and acts as a temporary 30-second
preview - once the output is finalized, you must call send_message with the complete message". Drafts
are for private chats only (https://core.telegram.org/bots/api#sendmessagedraft); groups and topics keep
streaming by edits.

A refusal switches drafts off where it happened, and the text goes out the ordinary way instead (see
:class:`adapters.telegram.target.TelegramTarget`): an unknown method (an older or self-hosted Bot API
server answers 404, which PTB raises as ``InvalidToken``) switches them off for the whole bot; a
``Bad Request`` only for that chat.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass

log = logging.getLogger(__name__)

DRAFT_REFRESH = 20.0  # seconds: show an unchanged draft again well before its ~30 s expiry


@dataclass(frozen=True, slots=True)
class DraftRef:
    """A reply's draft preview in a private chat. It is never a message: the final text is sent anew."""

    chat_id: int
    draft_id: int


class DraftSupport:
    """Whether drafts may be tried: remembers refusals, for the bot and per chat (the newest ``size``)."""

    def __init__(self, *, enabled: bool = True, size: int = 10_000) -> None:
        self.enabled = enabled
        self._size = size
        self._refused_chats: OrderedDict[int, None] = OrderedDict()

    def usable_in(self, chat_id: int) -> bool:
        return self.enabled and chat_id not in self._refused_chats

    @staticmethod
    def new_id() -> int:
        """A non-zero draft id (the Bot API requires non-zero; changes with one id are animated)."""
        return secrets.randbelow(2**31 - 2) + 1

    def refused_everywhere(self, reason: str) -> None:
        if self.enabled:
            log.info("telegram: drafts are not available (%s); streaming by edits from now on", reason)
        self.enabled = False

    def refused_in(self, chat_id: int, reason: str) -> None:
        log.info("telegram: chat %s refused a draft (%s); streaming by edits there", chat_id, reason)
        self._refused_chats[chat_id] = None
        while len(self._refused_chats) > self._size:
            self._refused_chats.popitem(last=False)
