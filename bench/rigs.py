"""The bot on each platform against its loopback fake, as the platform benchmarks drive it.

A rig starts one platform's fake and the bot the way ``chatbot run`` and the adapter tests do
(:func:`bots.app.open_engine` + :func:`bots.app.running_platforms`), with the adapters' real pacing defaults,
against a shared fake model server. A benchmark asks the bot something in a fresh conversation (a
``place``: its own chat, channel or terminal session), waits until the reply is done, then reads what the
platform fake saw: every send and edit with its arrival time and answer. The terminal rig records each write
to its stdout instead.

Each rig also builds the platform's own reply target (the one the adapter streams through) for a place, so
the naive loop of :mod:`bench.naive_baseline` can run through the same SDK calls as the bot.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from adapters.discord.runner import DiscordRunner
from adapters.discord.target import DiscordTarget
from adapters.slack import SlackRunner
from adapters.slack.target import SlackReplyTarget
from adapters.telegram import TelegramRunner
from adapters.telegram.sessions import Route
from adapters.terminal import TerminalChat
from bench.naive_baseline import NaiveBot, naive_stream
from bench.timed_model import TimedFakeOpenAI
from bots.app import open_engine, running_platforms
from core.conversation import ConversationEngine
from core.pacing import RateGate
from core.sqlite_store import SQLiteStore
from core.streaming import PlatformLimits, ReplyTarget
from tests.fakes import discord_api as discord_fake
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER, SIGNING_SECRET, FakeSlack, mention
from tests.fakes.telegram_api import FakeTelegram
from tests.support.engines import settings_for

# Rows of the platform tables, in order.
PLATFORMS = ("telegram private", "telegram group", "slack", "discord", "terminal")
PACED_PLATFORMS = ("telegram private", "telegram group", "slack", "discord")


@dataclass(frozen=True, slots=True)
class PlatformCall:
    """One send or edit as the platform saw it (the terminal: one write). ``status`` 200 means done."""

    at: float
    kind: str
    status: int

    @property
    def ok(self) -> bool:
        return self.status == 200


class Rig(Protocol):
    """One platform with the bot running on it."""

    name: str
    min_edit_interval: float  # the adapter's own minimum interval between changes of a message
    # Whether one conversation's calls spend a budget other conversations share (Slack's workspace-wide
    # chat.update limit): then a side-by-side run needs its own fake.
    shared_budget: bool
    engine: ConversationEngine

    async def ask(self, place: int, text: str) -> None:
        """Deliver a user's ``text`` to the bot in conversation ``place``; the model sees exactly ``text``."""
        ...

    def busy(self) -> bool:
        """Whether a reply is still being delivered."""
        ...

    def calls(self, place: int) -> list[PlatformCall]:
        """Every send and edit in ``place`` (refused ones too), in arrival order."""
        ...

    def shown(self, place: int) -> str:
        """What the user sees in ``place`` now: the bot's messages, joined by newlines."""
        ...

    def naive_target(self, place: int) -> ReplyTarget:
        """The platform's own reply target in ``place``, for the naive loop."""
        ...

    def pace_allows(self, span: float) -> int:
        """Most sends and edits the platform's pace accepts in one conversation within ``span`` seconds."""
        ...


_databases = itertools.count(1)


def _fresh_db(workdir: Path, platform: str) -> Path:
    """A new SQLite file for each rig: no rig sees another's history or usage counts."""
    return workdir / f"{platform}-{next(_databases)}.db"


def _windows(span: float, rate: int, per: float) -> int:
    """Most calls a sliding window of ``rate`` per ``per`` seconds lets through within ``span`` seconds."""
    return rate * (math.floor(span / per) + 1)


# ----- Telegram


class TelegramRig:
    """The Telegram adapter (python-telegram-bot, long polling) on :class:`FakeTelegram`.

    Every place is its own chat with its own user (the bot limits messages a minute per user).
    """

    shared_budget = False

    def __init__(
        self, fake: FakeTelegram, runner: TelegramRunner, engine: ConversationEngine, group: bool
    ) -> None:
        self.fake, self.runner, self.engine, self.group = fake, runner, engine, group
        self.name = "telegram group" if group else "telegram private"
        tuning = runner.tuning
        self.min_edit_interval = tuning.group_edit_interval if group else tuning.private_edit_interval

    def chat_id(self, place: int) -> int:
        return -(1_000_000 + place) if self.group else 10_000 + place

    async def ask(self, place: int, text: str) -> None:
        chat_id = self.chat_id(place)
        if self.group:
            chat = self.fake.group_chat(chat_id)
            self.fake.user_message(chat, f"@{self.fake.username} {text}", user_id=5_000 + place)
        else:
            self.fake.user_message(self.fake.private_chat(chat_id), text)

    def busy(self) -> bool:
        return self.runner.in_flight > 0

    def calls(self, place: int) -> list[PlatformCall]:
        chat_id = self.chat_id(place)
        return [
            PlatformCall(c.at, "send" if c.method == "sendMessage" else "edit", c.status)
            for c in self.fake.calls
            if c.method in ("sendMessage", "editMessageText") and c.params.get("chat_id") == chat_id
        ]

    def shown(self, place: int) -> str:
        return "\n".join(self.fake.texts(self.chat_id(place)))

    def naive_target(self, place: int) -> ReplyTarget:
        app = self.runner.app
        assert app is not None, "the Telegram runner is not started"
        chat_id = self.chat_id(place)
        route = Route(
            session_id=f"telegram:{chat_id}",
            chat_id=chat_id,
            chat_type="supergroup" if self.group else "private",
            user_id=1001,
            message_id=0,
            text="",
        )
        return self.runner.target_for(route, app.bot)

    def pace_allows(self, span: float) -> int:
        burst = self.fake.chat_burst
        per_chat = burst.burst + math.floor(span / burst.interval) if burst else _windows(span, 1, 1.0)
        return min(per_chat, _windows(span, 20, 60.0)) if self.group else per_chat


@asynccontextmanager
async def telegram_rig(
    model_url: str, workdir: Path, *, group: bool, enforce_pace: bool
) -> AsyncIterator[TelegramRig]:
    fake = FakeTelegram(enforce_pace=enforce_pace)
    await fake.start()
    try:
        settings = settings_for(
            model_url,
            _fresh_db(workdir, "telegram"),
            TELEGRAM_BOT_TOKEN=fake.token,
            TELEGRAM_BASE_URL=fake.root,
            TELEGRAM_DRAFTS=False,  # the edit path, which the naive loop is compared with
        )
        async with (
            open_engine(settings) as engine,
            running_platforms(settings, engine, ["telegram"]) as runners,
        ):
            runner = runners[0]
            assert isinstance(runner, TelegramRunner)
            yield TelegramRig(fake, runner, engine, group)
    finally:
        await fake.stop()


# ----- Slack


class SlackRig:
    """The Slack adapter (slack_bolt in HTTP mode, signed events) on :class:`FakeSlack`.

    Socket Mode hands events over differently but streams replies through the same code. The bot paces
    chat.update per workspace (45 a minute, shared by every reply there); each place is its own workspace,
    so back-to-back benchmark runs do not wait for each other's budget. The fake counts one workspace: with
    pace enforcement, use one reply per fake.
    """

    name = "slack"
    shared_budget = True

    def __init__(self, fake: FakeSlack, runner: SlackRunner, engine: ConversationEngine) -> None:
        self.fake, self.runner, self.engine = fake, runner, engine
        self.min_edit_interval = runner.limits.min_edit_interval

    @staticmethod
    def where(place: int) -> tuple[str, str]:
        return f"C0BENCH{place}", f"{1_000 + place}.000001"

    @staticmethod
    def team(place: int) -> str:
        """Each place is in a workspace of its own, so one reply never waits for another's budget."""
        return f"T0BENCH{place}"

    async def ask(self, place: int, text: str) -> None:
        channel, ts = self.where(place)
        team = self.team(place)
        event = mention(f"<@{BOT_USER}> {text}", channel=channel, ts=ts, user=f"U0BENCH{place}", team=team)
        envelope = self.fake.envelope(event)
        envelope["team_id"] = team
        envelope["authorizations"][0]["team_id"] = team
        status, _ = await self.fake.post_event(envelope, raw=True)
        if status != 200:
            raise RuntimeError(f"the Slack app answered an event with HTTP {status}")

    def busy(self) -> bool:
        return self.runner.dispatcher.pending > 0

    def calls(self, place: int) -> list[PlatformCall]:
        channel, _ = self.where(place)
        return [
            PlatformCall(
                c.at,
                "send" if c.method == "chat.postMessage" else "edit",
                c.status if c.status != 200 or not c.error else 400,
            )
            for c in self.fake.calls
            if c.method in ("chat.postMessage", "chat.update") and c.params.get("channel") == channel
        ]

    def shown(self, place: int) -> str:
        return "\n".join(m.text for m in self.fake.in_thread(*self.where(place)))

    def naive_target(self, place: int) -> ReplyTarget:
        channel, ts = self.where(place)
        return SlackReplyTarget(
            client=self.runner.client, channel=channel, thread_ts=ts, limits=self.runner.limits
        )

    def pace_allows(self, span: float) -> int:
        return _windows(span, 1, 1.0) + _windows(span, 50, 60.0)


@asynccontextmanager
async def slack_rig(model_url: str, workdir: Path, *, enforce_pace: bool) -> AsyncIterator[SlackRig]:
    fake = FakeSlack(enforce_pace=enforce_pace)
    await fake.start()
    try:
        settings = settings_for(
            model_url,
            _fresh_db(workdir, "slack"),
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake.base_url,
            SLACK_PORT=0,
        )
        async with open_engine(settings) as engine, running_platforms(settings, engine, ["slack"]) as runners:
            runner = runners[0]
            assert isinstance(runner, SlackRunner)
            fake.app_url = f"http://127.0.0.1:{runner.port}/slack/events"
            yield SlackRig(fake, runner, engine)
    finally:
        await fake.stop()


# ----- Discord


class DiscordRig:
    """The Discord adapter (discord.py over the fake gateway and REST API) on :class:`FakeDiscord`.

    Every place is a DM channel of its own with a user of its own. discord.py reads its REST base and gateway
    URL from class attributes, so only one Discord rig can run at a time in a process; the naive loop shares
    the rig (Discord's pace is per channel, so it cannot spend the bot's budget).
    """

    name = "discord"
    shared_budget = False

    def __init__(self, fake: FakeDiscord, runner: DiscordRunner, engine: ConversationEngine) -> None:
        self.fake, self.runner, self.engine = fake, runner, engine
        self.min_edit_interval = runner.limits.min_edit_interval

    @staticmethod
    def channel_id(place: int) -> int:
        return 310_000_000_000_000_000 + place

    async def ask(self, place: int, text: str) -> None:
        user = 510_000_000_000_000_000 + place
        discord_fake.USERS.setdefault(user, discord_fake.user_payload(user, f"bench{place}"))
        await self.fake.user_says(text, channel_id=self.channel_id(place), author_id=user)

    def busy(self) -> bool:
        return self.runner.dispatcher.pending > 0

    def calls(self, place: int) -> list[PlatformCall]:
        messages = f"/channels/{self.channel_id(place)}/messages"
        return [
            PlatformCall(c.at, "send" if c.method == "POST" else "edit", c.status)
            for c in self.fake.calls
            if (c.method == "POST" and c.path == messages)
            or (c.method == "PATCH" and c.path.startswith(messages + "/"))
        ]

    def shown(self, place: int) -> str:
        return "\n".join(self.fake.texts(self.channel_id(place)))

    def naive_target(self, place: int) -> ReplyTarget:
        client = self.runner.client
        assert client is not None, "the Discord runner is not started"
        channel = client.get_partial_messageable(self.channel_id(place))
        return DiscordTarget(channel, limits=self.runner.limits)

    def pace_allows(self, span: float) -> int:
        rate, per = self.fake.channel_pace
        return _windows(span, rate, per)


@asynccontextmanager
async def discord_rig(model_url: str, workdir: Path, *, enforce_pace: bool) -> AsyncIterator[DiscordRig]:
    fake = FakeDiscord(enforce_pace=enforce_pace)
    await fake.start()
    try:
        settings = settings_for(
            model_url,
            _fresh_db(workdir, "discord"),
            DISCORD_BOT_TOKEN="discord-bench-token-0123456789",
            DISCORD_API_BASE_URL=fake.api_url,
            DISCORD_GATEWAY_URL=fake.gateway_url,
            DISCORD_GUILD_READY_TIMEOUT=0.02,  # start-up only: the fake has its one guild ready at once
        )
        async with (
            open_engine(settings) as engine,
            running_platforms(settings, engine, ["discord"]) as runners,
        ):
            runner = runners[0]
            assert isinstance(runner, DiscordRunner)
            yield DiscordRig(fake, runner, engine)
    finally:
        await fake.stop()


# ----- the terminal


class _Screen(io.StringIO):
    """A terminal's stdout that remembers when each write happened."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.writes.append((time.monotonic(), text))
        return super().write(text)


class _TerminalTarget:
    """The naive loop's terminal: it can only append, so an "edit" prints what is new."""

    def __init__(self, screen: _Screen) -> None:
        self.screen = screen
        self.printed = ""
        self.limits = PlatformLimits(max_chars=1_000_000, min_edit_interval=0.0)
        self.gate: RateGate | None = None

    async def send(self, text: str, *, final: bool) -> object:
        await self.edit(None, text, final=final)
        return 1

    async def edit(self, ref: object, text: str, *, final: bool) -> None:
        self.screen.write(text[len(self.printed) :])
        self.screen.flush()
        self.printed = text

    async def typing(self) -> None:
        return None


class TerminalRig:
    """The terminal bot (:class:`adapters.terminal.TerminalChat`) printing to an in-memory stdout."""

    name = "terminal"
    min_edit_interval = 0.0
    shared_budget = False

    def __init__(self, engine: ConversationEngine) -> None:
        self.engine = engine
        self.screens: dict[int, _Screen] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def screen(self, place: int) -> _Screen:
        return self.screens.setdefault(place, _Screen())

    async def ask(self, place: int, text: str) -> None:
        chat = TerminalChat(
            self.engine,
            session=f"bench{place}",
            stdin=io.StringIO(),
            stdout=self.screen(place),
            interactive=False,
        )
        self.tasks[place] = asyncio.create_task(chat.answer(text))

    def busy(self) -> bool:
        return any(not task.done() for task in self.tasks.values())

    def calls(self, place: int) -> list[PlatformCall]:
        writes = self.screen(place).writes
        task = self.tasks.get(place)
        if task is not None and task.done() and writes and writes[-1][1] == "\n":
            writes = writes[:-1]  # the line end printed once the turn is stored, after the reply itself
        return [PlatformCall(at, "write", 200) for at, _ in writes]

    def shown(self, place: int) -> str:
        return self.screen(place).getvalue()

    def naive_target(self, place: int) -> ReplyTarget:
        return _TerminalTarget(self.screen(place))

    def pace_allows(self, span: float) -> int:
        return 1_000_000


@asynccontextmanager
async def terminal_rig(model_url: str, workdir: Path) -> AsyncIterator[TerminalRig]:
    settings = settings_for(model_url, _fresh_db(workdir, "terminal"))
    async with open_engine(settings) as engine:
        yield TerminalRig(engine)


@asynccontextmanager
async def open_rig(
    name: str, model_url: str, workdir: Path, *, enforce_pace: bool = False
) -> AsyncIterator[Rig]:
    """The rig for one row of the platform tables (see :data:`PLATFORMS`)."""
    if name == "telegram private" or name == "telegram group":
        async with telegram_rig(
            model_url, workdir, group=name.endswith("group"), enforce_pace=enforce_pace
        ) as tg:
            yield tg
    elif name == "slack":
        async with slack_rig(model_url, workdir, enforce_pace=enforce_pace) as slack:
            yield slack
    elif name == "discord":
        async with discord_rig(model_url, workdir, enforce_pace=enforce_pace) as discord:
            yield discord
    elif name == "terminal":
        async with terminal_rig(model_url, workdir) as terminal:
            yield terminal
    else:
        raise ValueError(f"unknown platform {name!r}: choose from {', '.join(PLATFORMS)}")


# ----- driving a rig


async def settle(rig: Rig, model: TimedFakeOpenAI, key: str, within: float = 120.0) -> None:
    """Wait until the model has streamed the reply to ``key`` and the bot has delivered every reply."""
    deadline = time.monotonic() + within
    while True:
        timing = model.timing(key)
        if timing is not None and timing.done and not rig.busy():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{rig.name}: the reply to {key!r} did not finish in {within:.0f} s")
        await asyncio.sleep(0.01)


async def run_naive(rig: Rig, place: int, key: str) -> None:
    """The naive loop answering ``key`` in ``place``, through the platform's own reply target."""
    engine = rig.engine
    assert isinstance(engine.store, SQLiteStore)
    naive = NaiveBot(engine.bot, engine.store, engine.model, engine.counter)
    await naive_stream(
        naive.reply(f"naive:{rig.name}:{place}", key), rig.naive_target(place), keep_going=True
    )
