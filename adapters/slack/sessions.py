"""Where Slack events are mapped: which conversation an event joins, and whether the bot should answer.

Everything here is pure (no I/O) so it can be tested against literal event payloads:

- :func:`place_for` gives the session id and where replies go. A thread is a conversation:
  ``slack:<team>:<channel>:<thread root ts>``; an unthreaded DM is one conversation per DM channel,
  ``slack:<team>:<channel>``, answered at the top level.
- :func:`decide` says what to do with an event: answer it (text and files alike), consider it as a
  follow-up in a thread, or ignore it (the bot's own messages, other bots, edits, joins, ...).
- :func:`prompt_text` is the text the model sees: the bot's mention removed, Slack's escaping undone.
- :func:`dedup_keys` and :class:`Recent` make redeliveries and the ``app_mention`` + ``message`` double
  delivery of one mention produce one answer.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

Event = Mapping[str, Any]

# Message subtypes that are still a person writing to the bot. Everything else (message_changed,
# message_deleted, bot_message, channel_join, ...) is ignored.
USER_SUBTYPES = frozenset({"file_share", "thread_broadcast"})
DM_CHANNEL_TYPES = frozenset({"im"})
# Slack's client takes "/reset" for a slash command, so "!reset" works as well, for every command the engine
# answers (its registry, :mod:`core.commands`).
ALIAS_PREFIX = "!"

_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


@dataclass(frozen=True, slots=True)
class Place:
    """The conversation an event belongs to and where the reply goes.

    ``thread_ts`` is the thread to reply in, ``None`` for a top-level reply (an unthreaded DM).
    """

    session_id: str
    team: str
    channel: str
    thread_ts: str | None

    @property
    def thread_key(self) -> str:
        """The key under which the bot remembers threads it has answered in."""
        return self.session_id


def is_dm(event: Event) -> bool:
    return event.get("channel_type") in DM_CHANNEL_TYPES or str(event.get("channel", "")).startswith("D")


def place_for(team: str, event: Event) -> Place:
    """The session and reply location of a message or ``app_mention`` event in workspace ``team``."""
    channel = str(event.get("channel", ""))
    thread_ts = event.get("thread_ts")
    if is_dm(event) and not thread_ts:
        return Place(f"slack:{team}:{channel}", team, channel, None)
    root = str(thread_ts or event.get("ts", ""))
    return Place(f"slack:{team}:{channel}:{root}", team, channel, root)


def team_of(body: Event, event: Event) -> str:
    """The workspace an event came from (the envelope's ``team_id`` wins over the event's ``team``)."""
    return str(body.get("team_id") or event.get("team") or event.get("user_team") or "T?")


class Action(Enum):
    IGNORE = "ignore"
    ANSWER = "answer"
    FOLLOWUP = "followup"  # a thread message without a mention: answer if the bot is in that thread


def mentions(text: str) -> set[str]:
    return set(_USER_MENTION.findall(text))


def decide(event_type: str, event: Event, bot_user_id: str | None) -> Action:
    """What to do with one ``app_mention`` or ``message`` event, before access checks and deduplication."""
    subtype = event.get("subtype")
    if subtype is not None and subtype not in USER_SUBTYPES:
        return Action.IGNORE
    user = event.get("user")
    if not user or event.get("bot_id") or event.get("bot_profile") or (bot_user_id and user == bot_user_id):
        return Action.IGNORE
    if event_type not in ("app_mention", "message"):
        return Action.IGNORE
    text = str(event.get("text") or "")
    addressed = (
        event_type == "app_mention" or is_dm(event) or (bool(bot_user_id) and bot_user_id in mentions(text))
    )
    if not addressed:
        thread_ts = event.get("thread_ts")
        in_thread = bool(thread_ts) and thread_ts != event.get("ts")
        talking_to_others = bool(mentions(text) - {bot_user_id})
        return Action.FOLLOWUP if in_thread and not talking_to_others else Action.IGNORE
    return Action.ANSWER


def has_files(event: Event) -> bool:
    """Files, images, snippets, audio clips: read as attachments (:mod:`adapters.slack.files`)."""
    return bool(event.get("files")) or event.get("subtype") == "file_share"


def prompt_text(event: Event, bot_user_id: str | None, commands: Collection[str] = frozenset()) -> str:
    """The user's text for the model: the bot's mention removed and Slack's ``&amp; &lt; &gt;`` undone.

    ``!name`` becomes ``/name`` for each command name (without ``/``) in ``commands``.
    """
    text = str(event.get("text") or "")
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    first, _, rest = text.partition(" ")
    name = first.lower().removeprefix(ALIAS_PREFIX)
    if first.startswith(ALIAS_PREFIX) and name in commands:
        return f"/{name} {rest}".strip()
    return text


def allowed(event: Event, channels: frozenset[str], users: frozenset[str]) -> bool:
    """Whether the allowlists let this event through; empty lists allow everyone.

    The channel list does not apply to DMs: who may DM the bot is decided by the user list.
    """
    if users and str(event.get("user", "")) not in users:
        return False
    return not (channels and not is_dm(event) and str(event.get("channel", "")) not in channels)


def dedup_keys(body: Event, event: Event) -> tuple[str | None, str]:
    """The delivery key (the envelope's ``event_id``) and the message key (``channel`` + ``ts``).

    A redelivery repeats the ``event_id``; a mention the app also reads as a channel message arrives twice
    with different event ids but the same channel and ts.
    """
    event_id = body.get("event_id")
    return (f"event:{event_id}" if event_id else None), f"msg:{event.get('channel')}:{event.get('ts')}"


class Recent:
    """A bounded set of recently seen keys; the oldest are forgotten first."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: str) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def take(self, key: str) -> bool:
        """Forget ``key``; ``True`` if it was there."""
        if key not in self._keys:
            return False
        del self._keys[key]
        return True

    def first_time(self, key: str) -> bool:
        """Record ``key``; ``True`` if it was not seen before (check and mark in one step)."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self.add(key)
        return True

    def __len__(self) -> int:
        return len(self._keys)
