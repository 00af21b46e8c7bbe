"""The Discord runner: a discord.py client that turns messages and slash commands into streamed replies.

``start`` connects in the background and returns once the gateway says READY; ``stop`` drains replies in
flight and disconnects. Messages are mapped by :mod:`adapters.discord.sessions`, replies go through
:class:`adapters.discord.target.DiscordTarget` and the shared streaming core.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
from discord import app_commands

from adapters.base import ReplyDispatcher
from adapters.discord import endpoints
from adapters.discord.feedback import discord_feedback
from adapters.discord.files import attachments_of
from adapters.discord.sessions import (
    Access,
    Action,
    FollowedThreads,
    Seen,
    decide,
    might_follow_up,
    opens_thread,
    seen_from_interaction,
    seen_from_message,
    thread_name,
)
from adapters.discord.settings import DiscordSettings
from adapters.discord.sharding import Sharding, sharding_from
from adapters.discord.target import DiscordTarget, translated
from core.conversation import ConversationEngine
from core.errors import ConfigError, PlatformError
from core.incoming import IncomingMessage
from core.pacing import RateGates
from core.shared_state import shared_gate
from core.streaming import PlatformLimits

log = logging.getLogger(__name__)

MAX_CHARS = 2000
REFUSED = "Sorry, I'm not set up to answer you here."
# seconds between two shards' IDENTIFYs in one process: Discord allows max_concurrency of them (1 for most
# bots) per 5 seconds (docs: "Session Start Limit"); discord.py's default hook waits the same
IDENTIFY_INTERVAL = 5.0


@dataclass(frozen=True, slots=True)
class DiscordOptions:
    """Tunables of the runner. ``from_settings`` reads the ones that have settings."""

    edit_interval: float = 1.0  # at most one edit per message per this many seconds
    typing_interval: float = 8.0  # Discord's indicator lasts about 10 s
    channel_rate: int = 5  # creates + edits ...
    channel_per: float = 5.0  # ... per this many seconds, per channel, across concurrent replies
    max_ratelimit_timeout: float = 30.0  # longer 429 waits are raised (discord.py's minimum is 30)
    guild_ready_timeout: float = 2.0  # how long READY waits for more GUILD_CREATEs
    ready_timeout: float = 60.0  # how long ``start`` waits for the gateway
    drain_grace: float = 30.0  # how long ``stop`` lets replies in flight finish
    command_answer_wait: float = 2.0  # after this, slash commands defer and answer in a follow-up
    # The message content intent is privileged: switch it on in the Developer Portal (Bot -> Privileged
    # Gateway Intents) before DISCORD_MESSAGE_CONTENT, or Discord refuses the connection.
    message_content: bool = False
    sync_commands: bool = True
    followed_threads: int = 10_000  # threads remembered as answered in; older ones are looked up in the store
    sharding: Sharding | None = None  # None: one plain gateway connection (adapters/discord/sharding.py)

    @classmethod
    def from_settings(cls, settings: DiscordSettings) -> DiscordOptions:
        return cls(
            edit_interval=settings.discord_edit_interval,
            guild_ready_timeout=settings.discord_guild_ready_timeout,
            message_content=settings.discord_message_content,
            sharding=sharding_from(settings),
        )


def intents_for(options: DiscordOptions) -> discord.Intents:
    """Guilds, guild messages and DMs; message content only when asked for; no typing or presence noise."""
    intents = discord.Intents.default()  # no privileged intents (members, presences, message content)
    intents.typing = False
    intents.message_content = options.message_content
    return intents


def command_tree(client: discord.Client, runner: DiscordRunner) -> app_commands.CommandTree[discord.Client]:
    """Every command in the engine's registry as a slash command, answered by the engine like its text form."""
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    for command in runner.engine.commands:
        tree.add_command(
            app_commands.Command(
                name=command.name,
                description=command.description,
                callback=_slash_callback(runner, command.name),
            )
        )
    return tree


def _slash_callback(
    runner: DiscordRunner, name: str
) -> Callable[[discord.Interaction[discord.Client]], Awaitable[None]]:
    async def answer(interaction: discord.Interaction[discord.Client]) -> None:
        await runner.on_command(interaction, f"/{name}")

    return answer


class ChatClient(discord.Client):
    """discord.py's client, handing its events to the runner."""

    def __init__(self, runner: DiscordRunner, options: DiscordOptions, **sharding: Any) -> None:
        super().__init__(
            intents=intents_for(options),
            allowed_mentions=discord.AllowedMentions.none(),  # model output must never ping anyone
            max_ratelimit_timeout=options.max_ratelimit_timeout,
            guild_ready_timeout=options.guild_ready_timeout,
            **sharding,
        )
        self.runner = runner
        self.tree = command_tree(self, runner)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:  # a later shard of this process: keep Discord's identify pace
            await asyncio.sleep(IDENTIFY_INTERVAL)

    async def setup_hook(self) -> None:
        if self.runner.options.sync_commands:
            await self.runner.sync_commands(self.tree)

    async def on_ready(self) -> None:
        self.runner.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        await self.runner.on_message(message)

    async def on_interaction(self, interaction: discord.Interaction[discord.Client]) -> None:
        feedback = self.runner.feedback
        if feedback is not None:  # a 👍 / 👎 click; any other interaction is left alone there
            await feedback.on_click(interaction)


class ShardedChatClient(ChatClient, discord.AutoShardedClient):
    """The same client over several gateway shards in one process (discord.py's ``AutoShardedClient``)."""


def make_client(runner: DiscordRunner, options: DiscordOptions) -> ChatClient:
    """A plain client, or a sharded one when the options ask for shards."""
    if options.sharding is None:
        return ChatClient(runner, options)
    return ShardedChatClient(runner, options, **options.sharding.client_options())


class DiscordRunner:
    """Runs the bot on Discord: DMs, mentions, replies and thread follow-ups, streamed by editing."""

    name = "discord"

    def __init__(
        self, settings: DiscordSettings, engine: ConversationEngine, options: DiscordOptions | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.options = options or DiscordOptions.from_settings(settings)
        self.access = Access.from_settings(settings)
        self.dispatcher = ReplyDispatcher(engine, engine.clock)
        self.gates = RateGates(self.options.channel_rate, self.options.channel_per, engine.clock)
        self.limits = PlatformLimits(
            max_chars=MAX_CHARS,
            min_edit_interval=self.options.edit_interval,
            typing_interval=self.options.typing_interval,
        )
        self.client: ChatClient | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._endpoints = endpoints.Endpoints(settings.discord_api_base_url, settings.discord_gateway_url)
        self._uses_endpoints = False  # whether ``stop`` must release them
        self._order = asyncio.Lock()
        self._followed = FollowedThreads(self.options.followed_threads)  # threads it answered in lately
        # 👍 / 👎 under final replies; clicks arrive as component interactions (ChatClient.on_interaction)
        self.feedback = discord_feedback(engine, self.dispatcher, enabled=settings.discord_feedback_buttons)
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        token = self.settings.discord_bot_token
        if token is None or not token.get_secret_value().strip():
            raise ConfigError("DISCORD_BOT_TOKEN is not set: put the bot token in .env (see docs/discord.md)")
        if not self._uses_endpoints:
            self._uses_endpoints = endpoints.use(self._endpoints)
        self._closing = False
        self.ready.clear()
        self.client = client = make_client(self, self.options)
        self._task = asyncio.create_task(client.start(token.get_secret_value()), name="discord-client")
        ready = asyncio.create_task(self.ready.wait())
        await asyncio.wait(
            {self._task, ready}, timeout=self.options.ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready.done():
            self._task.add_done_callback(self._client_ended)
            # replies a crash left half-written on Discord: finish them (in the background)
            self.dispatcher.finish_interrupted(self.name, self.restore_target)
            return
        ready.cancel()
        error = self._task.exception() if self._task.done() else None
        await self._close_client()
        raise self._start_error(error) from error

    @staticmethod
    def _start_error(error: BaseException | None) -> Exception:
        if isinstance(error, discord.LoginFailure):
            return ConfigError(
                "Discord rejected DISCORD_BOT_TOKEN: copy the token again from the Developer Portal"
            )
        if isinstance(error, discord.PrivilegedIntentsRequired):
            return ConfigError(
                "the message content intent is on in the bot but not in the Developer Portal "
                "(Bot -> Privileged Gateway Intents); see docs/discord.md"
            )
        if error is None:
            return PlatformError("could not connect to Discord: no READY from the gateway in time")
        return PlatformError(f"could not connect to Discord: {type(error).__name__}: {error}")

    def _client_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not self._closing:
            log.error("the Discord connection ended: %s", task.exception())

    async def stop(self) -> None:
        self._closing = True
        await self.dispatcher.drain(self.options.drain_grace)
        await self._close_client()

    async def _close_client(self) -> None:
        try:
            if self.client is not None:
                await self.client.close()
            if self._task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(self._task, timeout=10.0)
        finally:
            self.client = None
            self._task = None
            if self._uses_endpoints:
                self._uses_endpoints = False
                endpoints.release()

    async def sync_commands(self, tree: app_commands.CommandTree[discord.Client]) -> None:
        """Register the slash commands when Discord's list differs from ours (a sync is rate limited)."""
        try:
            current = await tree.fetch_commands()
            ours = {(c.name, c.description) for c in self.engine.commands}
            if {(c.name, c.description) for c in current} != ours:
                await tree.sync()
                log.info("registered the slash commands %s", ", ".join(f"/{n}" for n, _ in sorted(ours)))
        except (discord.DiscordException, aiohttp.ClientError, OSError) as exc:
            log.warning("could not register the slash commands (the text forms still work): %s", exc)

    # -- events ------------------------------------------------------------------------------------------

    def _target(
        self, channel: discord.abc.Messageable, channel_id: int, reply_to: discord.Message | None
    ) -> DiscordTarget:
        gate = shared_gate(
            self.engine.shared, f"discord:channel:{channel_id}", self.gates.get(str(channel_id))
        )
        return DiscordTarget(channel, limits=self.limits, gate=gate, reply_to=reply_to)

    def restore_target(self, address: Any) -> DiscordTarget:
        """The target a reply in flight had, from its stored address (to finish it after a restart)."""
        if self.client is None:
            raise PlatformError("Discord is not connected")
        channel_id = int(address["channel_id"])
        channel = self.client.get_channel(channel_id) or self.client.get_partial_messageable(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            raise PlatformError(f"Discord channel {channel_id} cannot take messages")
        return self._target(channel, channel_id, None)

    async def on_message(self, message: discord.Message) -> None:
        client = self.client
        if self._closing or client is None or client.user is None:
            return
        bot_id = client.user.id
        if message.author.id == bot_id or message.author.bot:
            return
        async with self._order:  # decide in arrival order, so replies are submitted in arrival order
            seen = seen_from_message(message, bot_id)
            followups = self.settings.discord_thread_followups
            answered = might_follow_up(seen, thread_followups=followups) and await self._answered_in(seen)
            action = decide(
                seen, bot_id=bot_id, access=self.access, thread_followups=followups, answered_here=answered
            )
            if action is Action.IGNORE:
                return
            target = self._target(message.channel, seen.channel_id, message)
            if action is Action.ANSWER and opens_thread(
                seen, thread_replies=self.settings.discord_thread_replies
            ):
                self.dispatcher.background(self._answer_in_new_thread(seen, message), name="thread")
                return
            if action is Action.ANSWER:
                if seen.in_thread:
                    self._followed.add(seen.session_id)
                self.dispatcher.submit(self._incoming(seen, message), target)
                return
        self._notice(target, REFUSED)

    async def _answer_in_new_thread(self, seen: Seen, message: discord.Message) -> None:
        """Open a thread on the question, named after it, and answer there; the thread is its conversation.

        If Discord will not open one (no permission, a channel type without threads), the answer goes in the
        channel as it would without the option."""
        try:
            with translated():
                thread = await message.create_thread(name=thread_name(seen.text))
        except PlatformError as exc:
            log.warning("could not open a thread in channel %s (%s); answering there", seen.channel_id, exc)
            self.dispatcher.submit(
                self._incoming(seen, message), self._target(message.channel, seen.channel_id, message)
            )
            return
        in_thread = dataclasses.replace(seen, channel_id=thread.id, parent_id=seen.channel_id, in_thread=True)
        self._followed.add(in_thread.session_id)  # later messages there continue it without a mention
        self.dispatcher.submit(self._incoming(in_thread, message), self._target(thread, thread.id, None))

    async def _answered_in(self, seen: Seen) -> bool:
        if seen.session_id in self._followed:
            return True
        if await self.engine.store.count_messages(self.engine.session_key(seen.session_id)) > 0:
            self._followed.add(seen.session_id)
            return True
        return False

    def _incoming(self, seen: Seen, message: discord.Message) -> IncomingMessage:
        return IncomingMessage(
            session_id=self.engine.session_key(seen.session_id),
            text=seen.text,
            user_id=f"discord:{seen.author_id}",
            platform="discord",
            extras={"message_id": message.id, "channel_id": seen.channel_id, "guild_id": seen.guild_id},
            attachments=attachments_of(message),
        )

    def _notice(self, target: DiscordTarget, text: str) -> None:
        self.dispatcher.notify(target, text)

    async def on_command(self, interaction: discord.Interaction[discord.Client], command: str) -> None:
        """Answer a slash command; it defers (and answers in a follow-up) if the engine is busy."""
        seen = seen_from_interaction(interaction, command)
        if not self.access.allows(seen):
            await interaction.response.send_message(REFUSED, ephemeral=True)
            return
        ephemeral = command != "/reset"  # a reset concerns everyone in the channel; help and forget only you
        message = IncomingMessage(
            session_id=self.engine.session_key(seen.session_id),
            text=command,
            user_id=f"discord:{seen.author_id}",
            platform="discord",
        )
        answer = asyncio.create_task(self.engine.reply_text(message))
        done, _ = await asyncio.wait({answer}, timeout=self.options.command_answer_wait)
        try:
            if done:
                await interaction.response.send_message(answer.result()[:MAX_CHARS], ephemeral=ephemeral)
            else:
                await interaction.response.defer(ephemeral=ephemeral, thinking=True)
                await interaction.followup.send((await answer)[:MAX_CHARS], ephemeral=ephemeral)
        except discord.DiscordException as exc:
            log.warning("%s: could not answer %s: %s", message.session_id, command, exc)


def create_runner(settings: DiscordSettings, engine: ConversationEngine) -> DiscordRunner:
    """The runner ``chatbot run --platform discord`` starts."""
    return DiscordRunner(settings, engine)
