"""Where Telegram updates are mapped: which session a message joins, and whether the bot should answer.

Everything here is pure: it reads an update as the Bot API sends it (a JSON object, ``Update.to_dict()``)
and returns plain values, so it is tested against literal payloads.

- Private chat: ``telegram:<chat_id>``, every message is answered.
- Group or supergroup: ``telegram:<chat_id>``, or ``telegram:<chat_id>:<thread_id>`` inside a forum topic,
  with ``:u<user_id>`` appended when sessions are per user. Answered only when addressed: a ``@botname``
  mention, a reply to one of the bot's messages, or a command meant for this bot.
- Commands: ``/reset@thisbot`` reaches the engine as ``/reset``; ``/reset@otherbot`` is left as it is, and
  the engine takes it for plain text (it is another bot's command), in private chats and groups alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.telegram.attachments import UNREADABLE_CONTENT, TelegramFile, files_of

GROUP_TYPES = frozenset({"group", "supergroup"})
# Message fields that carry user content besides text: files the bot reads (photo, document, voice, audio)
# and content it does not (:data:`adapters.telegram.attachments.UNREADABLE_CONTENT`). Anything else without
# text is a service message (someone joined, a title changed, a topic was created) and gets no answer.
NON_TEXT_CONTENT = ("photo", "document", "voice", "audio", *UNREADABLE_CONTENT)

Json = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the bot is, from ``getMe``: its user id and ``@username`` (without the ``@``)."""

    id: int
    username: str


@dataclass(frozen=True, slots=True)
class Route:
    """A message the bot should answer, and where the answer goes.

    ``text`` is what the engine gets (the bot's own mention removed): the text, or a file's caption ("" for
    none). ``files`` are the message's files (:mod:`adapters.telegram.attachments`). ``thread_id`` is the
    forum topic to answer in; ``reply_to`` the message to reply to (in groups, so it is clear whom the bot
    answers).
    """

    session_id: str
    chat_id: int
    chat_type: str
    user_id: int
    message_id: int
    text: str
    thread_id: int | None = None
    reply_to: int | None = None
    files: tuple[TelegramFile, ...] = ()
    media_group_id: str | None = None  # an album's parts share it (adapters.telegram.albums)

    @property
    def in_group(self) -> bool:
        return self.chat_type in GROUP_TYPES


def _message(update: Json) -> Json | None:
    """The new message an update carries; edits, channel posts and callbacks start no conversation."""
    message = update.get("message")
    return message if isinstance(message, Mapping) else None


def topic_id(message: Json) -> int | None:
    """The forum topic a message was sent in (``None`` in a chat's main thread or General topic).

    Only ``is_topic_message`` marks a topic: in ordinary supergroups a reply thread also has a
    ``message_thread_id``, which must neither split the session nor be sent back.
    """
    thread = message.get("message_thread_id")
    if message.get("is_topic_message") and isinstance(thread, int):
        return thread
    return None


def session_id(update: Json, *, per_user: bool = False) -> str | None:
    """The session a message joins, or ``None`` when the update holds no conversation message."""
    message = _message(update)
    if message is None:
        return None
    chat = message.get("chat") or {}
    chat_id = chat.get("id")
    if not isinstance(chat_id, int):
        return None
    parts = ["telegram", str(chat_id)]
    thread = topic_id(message)
    if thread is not None:
        parts.append(str(thread))
    user_id = (message.get("from") or {}).get("id")
    if per_user and chat.get("type") != "private" and isinstance(user_id, int):
        parts.append(f"u{user_id}")
    return ":".join(parts)


def _utf16_slice(text: str, offset: int, length: int) -> str:
    """``text[offset:offset+length]`` in UTF-16 code units, the way Telegram counts entity offsets."""
    encoded = text.encode("utf-16-le")
    return encoded[offset * 2 : (offset + length) * 2].decode("utf-16-le", errors="replace")


def _utf16_cut(text: str, offset: int, length: int) -> tuple[str, str]:
    """The text before and after the UTF-16 range ``[offset, offset+length)``."""
    encoded = text.encode("utf-16-le")
    before = encoded[: offset * 2].decode("utf-16-le", errors="replace")
    after = encoded[(offset + length) * 2 :].decode("utf-16-le", errors="replace")
    return before, after


def _entities(message: Json) -> tuple[str, Sequence[Json]]:
    if message.get("text") is not None:
        return str(message["text"]), message.get("entities") or ()
    return str(message.get("caption") or ""), message.get("caption_entities") or ()


def _is_own_mention(text: str, entity: Json, me: BotIdentity) -> bool:
    if entity.get("type") == "mention":
        mention = _utf16_slice(text, int(entity.get("offset", 0)), int(entity.get("length", 0)))
        return mention.lower() == f"@{me.username}".lower()
    if entity.get("type") == "text_mention":
        return (entity.get("user") or {}).get("id") == me.id
    return False


def _command_for_us(
    text: str, entities: Sequence[Json], me: BotIdentity, commands: frozenset[str] = frozenset()
) -> bool:
    """A leading ``/command`` addressed to this bot: ``/cmd@thisbot``, or one of ours without ``@``."""
    for entity in entities:
        if entity.get("type") == "bot_command" and entity.get("offset") == 0:
            command = _utf16_slice(text, 0, int(entity.get("length", 0)))[1:]
            name, _, target = command.partition("@")
            if target:
                return target.lower() == me.username.lower()
            return name.lower() in commands
    return False


def strip_own_command_target(text: str, me: BotIdentity) -> str:
    """``/reset@thisbot now`` -> ``/reset now``; a command for another bot (or none) is left as it is."""
    return re.sub(rf"^(\s*/\w+)@{re.escape(me.username)}(?=\s|$)", r"\1", text, count=1, flags=re.IGNORECASE)


def _replies_to_bot(message: Json, me: BotIdentity) -> bool:
    replied = message.get("reply_to_message")
    if not isinstance(replied, Mapping):
        return False
    if replied.get("forum_topic_created"):
        return False  # every message in a topic "replies" to the topic's creation message
    return (replied.get("from") or {}).get("id") == me.id


def addressed(message: Json, me: BotIdentity, commands: frozenset[str] = frozenset()) -> bool:
    """Whether a group message is meant for the bot: mention, reply to it, or a command for it."""
    text, entities = _entities(message)
    if _command_for_us(text, entities, me, commands):
        return True
    if any(_is_own_mention(text, entity, me) for entity in entities):
        return True
    return _replies_to_bot(message, me)


def strip_mentions(text: str, entities: Sequence[Json], me: BotIdentity) -> str:
    """The text without the bot's own ``@username`` mentions (offsets are UTF-16), tidied up."""
    ours = sorted(
        (e for e in entities if e.get("type") == "mention" and _is_own_mention(text, e, me)),
        key=lambda e: int(e.get("offset", 0)),
        reverse=True,
    )
    for entity in ours:
        before, after = _utf16_cut(text, int(entity.get("offset", 0)), int(entity.get("length", 0)))
        before, after = before.rstrip(" \t"), after.lstrip(" \t")
        if not before.strip():  # "@bot, what is ..." -> "what is ..."
            text = after.lstrip(",:;").lstrip(" \t")
        elif not after or before.endswith("\n") or after[0] in "\n,.;:!?":
            text = before + after
        else:  # "hey @bot what ..." -> "hey what ..."
            text = f"{before} {after}"
    return text.strip()


def _has_content(message: Json) -> bool:
    return any(message.get(key) for key in NON_TEXT_CONTENT)


def route(
    update: Json, me: BotIdentity, *, per_user: bool = False, commands: frozenset[str] = frozenset()
) -> Route | None:
    """Where to answer an update, or ``None`` when the bot should stay silent (and call no model).

    ``commands`` are the command names (without ``/``) that are ours in a group even without ``@botname``:
    the runner passes the engine's registry (:mod:`core.commands`).
    """
    message = _message(update)
    if message is None:
        return None
    chat = message.get("chat") or {}
    chat_id, chat_type = chat.get("id"), chat.get("type")
    sender = message.get("from") or {}
    user_id = sender.get("id")
    if (
        not isinstance(chat_id, int)
        or not isinstance(user_id, int)
        or chat_type not in {"private", *GROUP_TYPES}
    ):
        return None
    if sender.get("is_bot"):
        return None
    has_text = message.get("text") is not None
    if not has_text and not _has_content(message):
        return None  # a service message
    in_group = chat_type in GROUP_TYPES
    if in_group and not addressed(message, me, commands):
        return None
    sid = session_id(update, per_user=per_user)
    if sid is None:
        return None
    raw, entities = _entities(message)  # the text, or a file's caption
    text = strip_own_command_target(strip_mentions(raw, entities, me) if in_group else raw, me)
    message_id = int(message.get("message_id", 0))
    return Route(
        session_id=sid,
        chat_id=chat_id,
        chat_type=str(chat_type),
        user_id=user_id,
        message_id=message_id,
        text=text,
        thread_id=topic_id(message),
        reply_to=message_id if in_group else None,
        files=() if has_text else files_of(message),
        media_group_id=str(message["media_group_id"]) if message.get("media_group_id") else None,
    )
