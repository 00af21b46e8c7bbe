"""The pure side of the Discord adapter: session ids, whether to answer, allowlists, and the facts read off
discord.py messages: literal MESSAGE_CREATE payloads sent through the loopback gateway
(tests/fakes/discord_api.py) to a plain discord.py client, which parses them as it parses Discord's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from adapters.discord import endpoints
from adapters.discord.runner import DiscordOptions, command_tree, intents_for
from adapters.discord.sessions import (
    Access,
    Action,
    FollowedThreads,
    Seen,
    decide,
    might_follow_up,
    seen_from_message,
    session_id,
)
from core.commands import Command, Commands
from core.incoming import IncomingMessage
from tests.fakes.discord_api import (
    BOT_ID,
    BOT_ROLE_ID,
    GENERAL_ID,
    GUILD_ID,
    MEMBER_ROLE_ID,
    THREAD_ID,
    FakeDiscord,
)

BOT = BOT_ID
GUILD = GUILD_ID
GENERAL = GENERAL_ID
THREAD = THREAD_ID  # a thread in #general
BOT_ROLE = BOT_ROLE_ID
MEMBER_ROLE = MEMBER_ROLE_ID  # defined by the server; role ids a server does not define are dropped


def decide_for(
    seen: Seen, access: Access | None = None, *, followups: bool = True, answered: bool = False
) -> Action:
    return decide(
        seen, bot_id=BOT, access=access or Access(), thread_followups=followups, answered_here=answered
    )


def test_session_ids() -> None:
    assert session_id(None, 555) == "discord:dm:555"
    assert session_id(1, 20) == "discord:1:20"
    assert session_id(1, 21) != session_id(1, 20) != session_id(2, 20)
    assert Seen(guild_id=None, channel_id=7, author_id=5).session_id == "discord:dm:7"
    assert (
        Seen(guild_id=1, channel_id=30, author_id=5, in_thread=True, parent_id=20).session_id
        == "discord:1:30"
    )


@pytest.mark.parametrize(
    ("seen", "action"),
    [
        (Seen(guild_id=None, channel_id=7, author_id=5, text="hi"), Action.ANSWER),
        (Seen(guild_id=None, channel_id=7, author_id=5, text=""), Action.ANSWER),  # the engine says "empty"
        (Seen(guild_id=1, channel_id=20, author_id=5, text="hi"), Action.IGNORE),
        (Seen(guild_id=1, channel_id=20, author_id=5, text="hi", mentions_bot=True), Action.ANSWER),
        (Seen(guild_id=1, channel_id=20, author_id=5, text="", mentions_bot=True), Action.ANSWER),
        (Seen(guild_id=1, channel_id=20, author_id=5, text="hi", replies_to_bot=True), Action.ANSWER),
        (
            Seen(guild_id=1, channel_id=20, author_id=5, text="", replies_to_bot=True),
            Action.IGNORE,
        ),  # hidden
        (Seen(guild_id=None, channel_id=7, author_id=5, has_attachments=True), Action.ANSWER),
        (
            Seen(guild_id=1, channel_id=20, author_id=5, mentions_bot=True, has_attachments=True),
            Action.ANSWER,
        ),
        (Seen(guild_id=1, channel_id=20, author_id=5, has_attachments=True), Action.IGNORE),
        (Seen(guild_id=None, channel_id=7, author_id=BOT, text="my own"), Action.IGNORE),
        (Seen(guild_id=None, channel_id=7, author_id=6, text="hi", author_is_bot=True), Action.IGNORE),
        (
            Seen(guild_id=1, channel_id=20, author_id=6, author_is_bot=True, text="hi", mentions_bot=True),
            Action.IGNORE,
        ),
        (
            Seen(guild_id=1, channel_id=20, author_id=5, text="pinned", mentions_bot=True, is_chat=False),
            Action.IGNORE,
        ),
    ],
)
def test_who_is_answered(seen: Seen, action: Action) -> None:
    assert decide_for(seen) is action


def test_thread_follow_ups() -> None:
    follow_up = Seen(guild_id=1, channel_id=30, author_id=5, text="and then?", in_thread=True, parent_id=20)
    assert might_follow_up(follow_up, thread_followups=True)
    assert not might_follow_up(follow_up, thread_followups=False)
    assert decide_for(follow_up, answered=True) is Action.ANSWER
    assert decide_for(follow_up, answered=False) is Action.IGNORE
    assert decide_for(follow_up, answered=True, followups=False) is Action.IGNORE
    hidden = Seen(guild_id=1, channel_id=30, author_id=5, text="", in_thread=True, parent_id=20)
    assert decide_for(hidden, answered=True) is Action.IGNORE  # no content intent: nothing to answer
    in_channel = Seen(guild_id=1, channel_id=20, author_id=5, text="and then?")
    assert not might_follow_up(in_channel, thread_followups=True)
    assert decide_for(in_channel, answered=True) is Action.IGNORE  # follow-ups are for threads only
    mention = Seen(guild_id=1, channel_id=30, author_id=5, text="hi", in_thread=True, mentions_bot=True)
    assert not might_follow_up(mention, thread_followups=True)  # answered anyway: no look-up needed


def test_allowlists() -> None:
    access = Access(
        guilds=frozenset({"1"}), channels=frozenset({"20"}), users=frozenset({"5"}), roles=frozenset({"77"})
    )
    alice = Seen(guild_id=1, channel_id=20, author_id=5, text="hi", mentions_bot=True)
    assert decide_for(alice, access) is Action.ANSWER
    in_thread = Seen(
        guild_id=1, channel_id=30, parent_id=20, in_thread=True, author_id=5, text="hi", mentions_bot=True
    )
    assert decide_for(in_thread, access) is Action.ANSWER  # a thread counts as its channel
    other_channel = Seen(guild_id=1, channel_id=21, author_id=5, text="hi", mentions_bot=True)
    assert decide_for(other_channel, access) is Action.IGNORE  # silent where the bot is not meant to be
    other_guild = Seen(guild_id=2, channel_id=20, author_id=5, text="hi", mentions_bot=True)
    assert decide_for(other_guild, access) is Action.IGNORE
    bob = Seen(guild_id=1, channel_id=20, author_id=6, text="hi", mentions_bot=True)
    assert decide_for(bob, access) is Action.REFUSE
    bob_with_role = Seen(
        guild_id=1, channel_id=20, author_id=6, role_ids=frozenset({77}), text="hi", mentions_bot=True
    )
    assert decide_for(bob_with_role, access) is Action.ANSWER
    assert decide_for(Seen(guild_id=None, channel_id=7, author_id=5, text="hi"), access) is Action.ANSWER
    assert decide_for(Seen(guild_id=None, channel_id=8, author_id=6, text="hi"), access) is Action.REFUSE
    roles_only = Access(roles=frozenset({"77"}))
    assert decide_for(Seen(guild_id=None, channel_id=8, author_id=6, text="hi"), roles_only) is Action.REFUSE
    assert decide_for(Seen(guild_id=None, channel_id=8, author_id=6, text="hi")) is Action.ANSWER  # no lists


# -- facts read off real discord.py messages, parsed from literal gateway payloads --------------------------

USER = {"id": "5", "username": "alice", "discriminator": "0", "global_name": "Alice", "avatar": None}
BOB = {"id": "6", "username": "bob", "discriminator": "0", "global_name": "Bob", "avatar": None}
BOT_USER = {
    "id": str(BOT),
    "username": "chatbot",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
}
MEMBER = {
    "roles": [str(MEMBER_ROLE)],
    "joined_at": "2024-01-01T00:00:00+00:00",
    "deaf": False,
    "mute": False,
    "flags": 0,
}


def payload(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "1000",
        "channel_id": "7",
        "author": USER,
        "content": "",
        "timestamp": "2024-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
    }
    return base | fields


class Listener(discord.Client):
    """A bare discord.py client that keeps every message it is given (its public ``on_message`` event)."""

    def __init__(self) -> None:
        super().__init__(intents=intents_for(DiscordOptions()), guild_ready_timeout=0.02)
        self.received: asyncio.Queue[discord.Message] = asyncio.Queue()

    async def on_message(self, message: discord.Message) -> None:
        await self.received.put(message)


Parse = Callable[[dict[str, Any]], Awaitable[discord.Message]]


@pytest.fixture
async def parse() -> AsyncIterator[Parse]:
    """Send a payload as a MESSAGE_CREATE through the fake gateway; get the ``discord.Message`` it became."""
    fake = FakeDiscord()
    await fake.start()
    endpoints.use(endpoints.Endpoints(fake.api_url, fake.gateway_url))
    client = Listener()
    running = asyncio.create_task(client.start("discord-test-token"))
    try:
        await asyncio.wait_for(client.wait_until_ready(), timeout=30)

        async def message(data: dict[str, Any]) -> discord.Message:
            await fake.dispatch("MESSAGE_CREATE", data)
            return await asyncio.wait_for(client.received.get(), timeout=30)

        yield message
    finally:
        await client.close()
        await asyncio.gather(running, return_exceptions=True)
        endpoints.release()
        await fake.stop()


async def test_dm_payload(parse: Parse) -> None:
    seen = seen_from_message(await parse(payload(content="  hello there ")), BOT)
    assert seen == Seen(guild_id=None, channel_id=7, author_id=5, text="hello there")
    assert seen.session_id == "discord:dm:7" and decide_for(seen) is Action.ANSWER


async def test_mention_payload_loses_the_mention_and_keeps_others_readable(parse: Parse) -> None:
    data = payload(
        channel_id=str(GENERAL),
        guild_id=str(GUILD),
        member=MEMBER,
        content=f"<@!{BOT}> ask <@6> about it",
        mentions=[BOT_USER, BOB],
    )
    seen = seen_from_message(await parse(data), BOT)
    assert seen.text == "ask @Bob about it"
    assert seen.mentions_bot and not seen.in_thread and seen.parent_id is None
    assert seen.role_ids == {GUILD, MEMBER_ROLE} and seen.session_id == f"discord:{GUILD}:{GENERAL}"
    assert decide_for(seen) is Action.ANSWER


async def test_mention_of_the_bots_role_counts(parse: Parse) -> None:
    data = payload(
        channel_id=str(GENERAL), guild_id=str(GUILD), member=MEMBER, content=f"<@&{BOT_ROLE}> hi",
        mention_roles=[str(BOT_ROLE)],
    )  # fmt: skip
    seen = seen_from_message(await parse(data), BOT)
    assert seen.mentions_bot and seen.text == "hi"


async def test_thread_payload(parse: Parse) -> None:
    data = payload(channel_id=str(THREAD), guild_id=str(GUILD), member=MEMBER, content="follow-up")
    seen = seen_from_message(await parse(data), BOT)
    assert seen.in_thread and seen.parent_id == GENERAL and not seen.addressed
    assert seen.session_id == f"discord:{GUILD}:{THREAD}"
    assert decide_for(seen, answered=True) is Action.ANSWER


async def test_reply_payload(parse: Parse) -> None:
    bot_message = payload(
        id="999", channel_id=str(GENERAL), guild_id=str(GUILD), author=BOT_USER, content="earlier"
    )
    reply = payload(
        channel_id=str(GENERAL),
        guild_id=str(GUILD),
        member=MEMBER,
        content="and more",
        type=19,
        message_reference={"message_id": "999", "channel_id": str(GENERAL), "guild_id": str(GUILD)},
        referenced_message=bot_message,
    )
    seen = seen_from_message(await parse(reply), BOT)
    assert seen.replies_to_bot and not seen.mentions_bot and seen.is_chat
    assert decide_for(seen) is Action.ANSWER


async def test_attachment_and_system_payloads(parse: Parse) -> None:
    attachment = {
        "id": "1",
        "filename": "a.png",
        "size": 1,
        "url": "https://x.invalid/a",
        "proxy_url": "https://x.invalid/a",
    }
    seen = seen_from_message(await parse(payload(attachments=[attachment])), BOT)
    assert seen.has_attachments and decide_for(seen) is Action.ANSWER
    pinned = payload(channel_id=str(GENERAL), guild_id=str(GUILD), member=MEMBER, type=6, mentions=[BOT_USER])
    assert decide_for(seen_from_message(await parse(pinned), BOT)) is Action.IGNORE


async def test_webhook_payload_counts_as_a_bot(parse: Parse) -> None:
    data = payload(
        channel_id=str(GENERAL), guild_id=str(GUILD), webhook_id="4242", content=f"<@{BOT}> deploy done",
        mentions=[BOT_USER],
    )  # fmt: skip
    seen = seen_from_message(await parse(data), BOT)
    assert seen.author_is_bot and decide_for(seen) is Action.IGNORE


def test_intents_and_commands() -> None:
    intents = intents_for(DiscordOptions())
    assert not intents.message_content and intents.guild_messages and intents.dm_messages and intents.guilds
    assert intents_for(DiscordOptions(message_content=True)).message_content
    client = discord.Client(intents=intents)
    registry = Commands(
        [Command("reset", "Forget this conversation", _unused), Command("x_1", "Dummy", _unused)]
    )
    runner = SimpleNamespace(engine=SimpleNamespace(commands=registry))
    tree = command_tree(client, runner=runner)  # type: ignore[arg-type]
    commands = [c for c in tree.get_commands() if isinstance(c, discord.app_commands.Command)]
    assert {c.name: c.description for c in commands} == {c.name: c.description for c in registry}


async def _unused(message: IncomingMessage) -> str:
    return ""


def test_followed_threads_are_bounded_and_the_least_recently_used_go_first() -> None:
    followed = FollowedThreads(size=3)
    for thread in ("a", "b", "c"):
        followed.add(thread)
    assert "a" in followed  # used again: now the newest
    followed.add("d")
    assert len(followed) == 3
    assert "b" not in followed and all(t in followed for t in ("a", "c", "d"))
    many = FollowedThreads()
    for number in range(10_001):
        many.add(f"discord:1:{number}")
    assert len(many) == 10_000 and "discord:1:0" not in many
