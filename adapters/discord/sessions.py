"""Where Discord messages are mapped: which conversation a message joins, and whether the bot answers it.

``seen_from_message`` reads the few facts that matter off a discord.py ``Message`` into a plain :class:`Seen`;
everything after that (``session_id``, :func:`decide`, :class:`Access`) is pure and tested on literal values.

Sessions: a DM is ``discord:dm:<channel_id>``; in a server every channel and every thread is its own
conversation, ``discord:<guild_id>:<channel_or_thread_id>`` (a message in a thread carries the thread's id as
its channel id).
"""

from __future__ import annotations

import enum
import re
from collections import OrderedDict
from dataclasses import dataclass

import discord

from adapters.discord.settings import DiscordSettings
from core.config import id_list
from core.headlines import headline

CHAT_TYPES = (discord.MessageType.default, discord.MessageType.reply)


def session_id(guild_id: int | None, channel_id: int) -> str:
    """The conversation a message in ``channel_id`` (a thread's id inside a thread) belongs to."""
    if guild_id is None:
        return f"discord:dm:{channel_id}"
    return f"discord:{guild_id}:{channel_id}"


@dataclass(frozen=True, slots=True)
class Seen:
    """What the adapter needs to know about one incoming Discord message (or slash command)."""

    guild_id: int | None
    channel_id: int
    author_id: int
    text: str = ""  # with the bot's own mention taken out
    author_is_bot: bool = False
    role_ids: frozenset[int] = frozenset()
    parent_id: int | None = None  # the channel a thread hangs off
    in_thread: bool = False
    mentions_bot: bool = False
    replies_to_bot: bool = False
    has_attachments: bool = False
    is_chat: bool = True  # a user's message, not a system notice (pins, joins, thread starts)

    @property
    def session_id(self) -> str:
        return session_id(self.guild_id, self.channel_id)

    @property
    def is_dm(self) -> bool:
        return self.guild_id is None

    @property
    def addressed(self) -> bool:
        """Whether the user spoke to the bot: a DM, a mention or a reply to one of its messages."""
        return self.is_dm or self.mentions_bot or self.replies_to_bot


class Action(enum.Enum):
    """What to do with a message."""

    IGNORE = "ignore"
    ANSWER = "answer"
    REFUSE = "refuse"  # addressed by someone the allowlist leaves out


@dataclass(frozen=True, slots=True)
class Access:
    """The optional allowlists; an empty list admits everyone.

    In a server the guild and channel lists decide where the bot answers (a thread counts as its parent
    channel), and the user and role lists decide whom it answers (either admits). In DMs, once any list is
    set, only the users on the user list are answered.
    """

    guilds: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: DiscordSettings) -> Access:
        return cls(
            guilds=id_list(settings.discord_allowed_guilds),
            channels=id_list(settings.discord_allowed_channels),
            users=id_list(settings.discord_allowed_users),
            roles=id_list(settings.discord_allowed_roles),
        )

    @property
    def open(self) -> bool:
        return not (self.guilds or self.channels or self.users or self.roles)

    def place_allowed(self, seen: Seen) -> bool:
        """Whether the bot may speak where the message was written."""
        if seen.is_dm:
            return True
        if self.guilds and str(seen.guild_id) not in self.guilds:
            return False
        places = {str(seen.channel_id), str(seen.parent_id)}
        return not self.channels or bool(places & self.channels)

    def person_allowed(self, seen: Seen) -> bool:
        """Whether the bot may answer the message's author."""
        if seen.is_dm:
            return self.open or str(seen.author_id) in self.users
        if not (self.users or self.roles):
            return True
        return str(seen.author_id) in self.users or bool({str(r) for r in seen.role_ids} & self.roles)

    def allows(self, seen: Seen) -> bool:
        return self.place_allowed(seen) and self.person_allowed(seen)


def might_follow_up(seen: Seen, *, thread_followups: bool) -> bool:
    """Whether the answer depends on the bot having talked in this thread before (worth a look-up)."""
    return (
        thread_followups and seen.in_thread and not seen.addressed and seen.is_chat and not seen.author_is_bot
    )


def decide(
    seen: Seen, *, bot_id: int, access: Access, thread_followups: bool, answered_here: bool = False
) -> Action:
    """Whether to answer ``seen``.

    DMs are always answered; in a server the bot answers mentions and replies to its messages, and, with
    ``thread_followups``, every message in a thread where it has answered before (``answered_here``). It
    never answers itself, other bots or system notices. A message whose text is empty without attachments is
    left alone unless it was clearly meant for the bot: Discord hides the text of unmentioned server
    messages from bots without the message content intent. Attachments (files, voice messages, stickers)
    are answered: the engine reads them, or says what it can read.
    """
    if seen.author_id == bot_id or seen.author_is_bot or not seen.is_chat:
        return Action.IGNORE
    follow_up = thread_followups and seen.in_thread and answered_here
    if not (seen.addressed or follow_up) or not access.place_allowed(seen):
        return Action.IGNORE
    if not access.person_allowed(seen):
        return Action.REFUSE if seen.addressed else Action.IGNORE
    if not seen.text.strip() and not seen.has_attachments and not (seen.is_dm or seen.mentions_bot):
        return Action.IGNORE
    return Action.ANSWER


THREAD_NAME_CHARS = 100  # Discord's limit on a thread's name
UNTITLED_THREAD = "Conversation"


def thread_name(question: str, limit: int = THREAD_NAME_CHARS) -> str:
    """A thread's name from the question that opens it: its first line, cut at a word, with "…" if cut."""
    return headline(question, limit, default=UNTITLED_THREAD)


def opens_thread(seen: Seen, *, thread_replies: bool) -> bool:
    """Whether the answer to ``seen`` goes into a new thread: a mention in a server channel, when asked for."""
    return thread_replies and not seen.is_dm and not seen.in_thread and seen.mentions_bot


class FollowedThreads:
    """The threads the bot has answered in, most recently used last, at most ``size`` of them.

    Forgetting the oldest costs nothing but a look-up: a thread with stored messages is followed again.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._threads: OrderedDict[str, None] = OrderedDict()

    def add(self, session: str) -> None:
        self._threads[session] = None
        self._threads.move_to_end(session)
        while len(self._threads) > self._size:
            self._threads.popitem(last=False)

    def __contains__(self, session: object) -> bool:
        if session not in self._threads:
            return False
        self._threads.move_to_end(str(session))
        return True

    def __len__(self) -> int:
        return len(self._threads)


def _strip_mentions(message: discord.Message, bot_id: int, own_role_id: int | None) -> str:
    text = re.sub(rf"<@!?{bot_id}>", "", message.content)
    if own_role_id is not None:
        text = text.replace(f"<@&{own_role_id}>", "")
    for user in message.mentions:
        if user.id != bot_id:
            text = re.sub(rf"<@!?{user.id}>", f"@{user.display_name}", text)
    return text.strip()


def seen_from_message(message: discord.Message, bot_id: int) -> Seen:
    """The facts about a discord.py message that the pure functions above need."""
    channel = message.channel
    guild = message.guild
    in_thread = isinstance(channel, discord.Thread)
    own_role = guild.self_role if guild is not None else None
    author = message.author
    roles = getattr(author, "roles", None) or ()
    reference = message.reference
    replied = reference.resolved if reference is not None else None
    if replied is None and reference is not None:
        replied = reference.cached_message
    return Seen(
        guild_id=guild.id if guild is not None else getattr(channel, "guild_id", None),
        channel_id=channel.id,
        author_id=author.id,
        text=_strip_mentions(message, bot_id, own_role.id if own_role is not None else None),
        author_is_bot=author.bot or message.webhook_id is not None,
        role_ids=frozenset(role.id for role in roles),
        parent_id=channel.parent_id if isinstance(channel, discord.Thread) else None,
        in_thread=in_thread,
        mentions_bot=any(user.id == bot_id for user in message.mentions)
        or bot_id in message.raw_mentions
        or (own_role is not None and own_role.id in message.raw_role_mentions),
        replies_to_bot=isinstance(replied, discord.Message) and replied.author.id == bot_id,
        has_attachments=bool(message.attachments or message.stickers),
        is_chat=message.type in CHAT_TYPES,
    )


def seen_from_interaction(interaction: discord.Interaction[discord.Client], command: str) -> Seen:
    """A slash command as a message addressed to the bot, for the same access rules."""
    channel = interaction.channel
    user = interaction.user
    roles = getattr(user, "roles", None) or ()
    return Seen(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id or 0,
        author_id=user.id,
        text=command,
        author_is_bot=user.bot,
        role_ids=frozenset(role.id for role in roles),
        parent_id=channel.parent_id if isinstance(channel, discord.Thread) else None,
        in_thread=isinstance(channel, discord.Thread),
        mentions_bot=True,
    )
