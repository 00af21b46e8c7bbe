"""End to end: the real discord.py client, started the way ``chatbot run`` starts it, against a fake Discord
(REST + gateway on 127.0.0.1) and the fake model server. Assertions are about what users see on Discord
and what the model was sent.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import discord
import pytest

from adapters.discord.runner import REFUSED, DiscordRunner
from adapters.discord.sessions import FollowedThreads
from bots.app import open_engine, running_platforms
from bots.settings import Settings
from core.clock import Clock
from core.conversation import ConversationEngine
from core.errors import ConfigError
from tests.fakes.discord_api import (
    ALICE_ID,
    BOB_ID,
    DM2_ID,
    DM_ID,
    GENERAL_ID,
    GUILD_ID,
    MEMBER_ROLE_ID,
    OTHER_BOT_ID,
    RANDOM_ID,
    THREAD_ID,
    FakeDiscord,
)
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.engines import settings_for

TOKEN = "discord-test-token-0123456789"
MARKER = " ▌"


class LeapClock:
    """Real time, except that sleeping jumps the clock forward at once: flood waits pass instantly."""

    def __init__(self) -> None:
        self.skipped = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return time.monotonic() + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.skipped += max(0.0, seconds)
        await asyncio.sleep(0)


def discord_settings(fake_model: FakeOpenAI, fake: FakeDiscord, db_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DISCORD_BOT_TOKEN": TOKEN,
        "DISCORD_API_BASE_URL": fake.api_url,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISCORD_EDIT_INTERVAL": 0.05,
        "DISCORD_GUILD_READY_TIMEOUT": 0.02,
        # The 👍/👎 row is one more edit per reply, paced with the channel's 5 edits per 5 s: tests of other
        # things would wait for it; tests/test_feedback_discord.py turns it on
        "DISCORD_FEEDBACK_BUTTONS": False,
        **overrides,
    }
    return settings_for(fake_model.base_url, db_path, **values)


@asynccontextmanager
async def discord_bot(
    fake_model: FakeOpenAI, fake: FakeDiscord, db_path: Path, *, clock: Clock | None = None, **overrides: Any
) -> AsyncIterator[tuple[ConversationEngine, DiscordRunner]]:
    """The engine and the Discord runner, started through ``running_platforms`` like ``chatbot run``."""
    settings = discord_settings(fake_model, fake, db_path, **overrides)
    async with (
        open_engine(settings, clock=clock) as engine,
        running_platforms(settings, engine, ["discord"]) as runners,
    ):
        runner = runners[0]
        assert isinstance(runner, DiscordRunner)
        yield engine, runner


def user_texts(fake_model: FakeOpenAI, request: int = -1) -> list[str]:
    return [m["content"] for m in fake_model.chat_requests[request]["messages"] if m["role"] == "user"]


async def test_dm_and_mention_get_complete_replies_as_references(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    fake_model.queue(
        Reply(text="Hello Alice, nice to meet you in private.", chunk_size=4, delay=0.01),
        Reply(text="Hi everyone, I'm here.", chunk_size=4, delay=0.01),
    )
    real_base = discord.http.Route.BASE
    async with discord_bot(fake_model, fake_discord, db_path) as (engine, _runner):
        assert fake_discord.api_url == discord.http.Route.BASE
        dm = await fake_discord.user_says("hello bot", channel_id=DM_ID)
        assert await fake_discord.wait_for_reply(DM_ID) == ["Hello Alice, nice to meet you in private."]
        mention = await fake_discord.user_says("hi there", channel_id=GENERAL_ID, mention_bot=True)
        assert await fake_discord.wait_for_reply(GENERAL_ID) == ["Hi everyone, I'm here."]

        assert user_texts(fake_model, 0) == ["hello bot"]
        assert user_texts(fake_model, 1) == ["hi there"]  # the mention is not part of the question
        assert [m.reference_id for m in fake_discord.bot_messages(DM_ID)] == [dm]
        assert [m.reference_id for m in fake_discord.bot_messages(GENERAL_ID)] == [mention]
        streamed = fake_discord.bot_messages(DM_ID)[0].texts
        assert streamed[0].endswith(MARKER) and len(streamed) > 2  # shown while writing, edited in place
        assert fake_discord.calls_to("POST", rf"/channels/{DM_ID}/typing")
        assert await engine.store.count_messages(f"discord:dm:{DM_ID}") == 2
        assert await engine.store.count_messages(f"discord:{GUILD_ID}:{GENERAL_ID}") == 2
        intents = fake_discord.identify[0]["intents"]
        assert not intents & (1 << 15)  # no privileged message content intent
        assert intents & (1 << 9) and intents & (1 << 12)  # guild messages and DMs
    assert real_base == discord.http.Route.BASE  # process-wide endpoints put back on stop


async def test_unaddressed_and_bot_messages_are_ignored(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("just chatting with friends", channel_id=GENERAL_ID)
        await fake_discord.user_says("hidden", channel_id=GENERAL_ID, hide_content=True)
        await fake_discord.user_says("beep", channel_id=GENERAL_ID, author_id=OTHER_BOT_ID, mention_bot=True)
        await fake_discord.user_says("are you there?", channel_id=DM_ID)
        assert await fake_discord.wait_for_reply(DM_ID) == ["You said: are you there?"]
        await asyncio.sleep(0.1)
    assert fake_discord.bot_messages(GENERAL_ID) == []
    assert len(fake_model.chat_requests) == 1  # only the DM reached the model (the bot's own echo did not)


def reassemble(messages: list[str]) -> str:
    """The messages joined back, without the fences the splitter adds to close and reopen a code block."""
    out = list(messages)
    for i in range(len(out) - 1):
        if out[i].endswith("\n```") and out[i + 1].startswith("```python\n"):
            out[i] = out[i].removesuffix("\n```")
            out[i + 1] = out[i + 1].removeprefix("```python\n")
    return "\n".join(out)


async def test_long_reply_arrives_complete_across_messages(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    code = "\n".join(f"    value_{i:03d} = compute(value_{i:03d}, factor={i})" for i in range(60))
    prose = " ".join(f"Sentence number {i} explains one more detail." for i in range(60))
    text = f"Here is the code you asked for.\n\n```python\ndef run():\n{code}\n```\n\n{prose}"
    assert len(text) > 5000
    fake_model.queue(Reply(text=text, chunk_size=97))
    async with discord_bot(fake_model, fake_discord, db_path):
        user_message = await fake_discord.user_says("write me code", channel_id=GENERAL_ID, mention_bot=True)
        await fake_discord.wait_until(
            lambda: re.sub(r"\s", "", reassemble(fake_discord.texts(GENERAL_ID))) == re.sub(r"\s", "", text),
            what="the whole reply",
        )
    messages = fake_discord.texts(GENERAL_ID)
    assert len(messages) == 3
    assert all(len(m) <= 2000 for m in messages)
    assert not any(m.endswith(MARKER) for m in messages)
    assert all(m.count("```") % 2 == 0 for m in messages)  # each part renders its code as code
    assert messages[1].startswith("```python\n")
    assert [m.reference_id for m in fake_discord.bot_messages(GENERAL_ID)] == [user_message, None, None]
    too_long = [c for c in fake_discord.calls if c.status == 400]
    assert too_long == []


async def test_rate_limited_edit_survives_and_other_channels_go_on(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    slow = "Alice, this reply is streamed slowly so it gets edited a few times."
    fake_model.default = lambda body: f"Quick answer for Bob: {len(body['messages'])}"
    fake_model.queue(Reply(text=slow, chunk_size=6, delay=0.03))
    # discord.py sleeps out a 429 below max_ratelimit_timeout itself, on the real clock: the wait is long
    # enough that Bob's answer (tens of milliseconds) comes first even on a slow, busy machine.
    retry_after = 4.0
    fake_discord.rate_limit("PATCH", rf"/channels/{DM_ID}/messages/\d+", retry_after=retry_after)
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("tell me slowly", channel_id=DM_ID)
        await fake_discord.wait_until(
            lambda: any(c.status == 429 for c in fake_discord.calls), what="the 429 on Alice's edit"
        )
        # discord.py is now waiting out Alice's 429; Bob's DM is answered meanwhile.
        await fake_discord.user_says("quick one", channel_id=DM2_ID, author_id=BOB_ID)
        assert await fake_discord.wait_for_reply(DM2_ID, within=retry_after) == ["Quick answer for Bob: 2"]
        assert fake_discord.texts(DM_ID)[0].endswith(MARKER)  # Alice's reply is still waiting
        assert await fake_discord.wait_for_reply(DM_ID, within=2 * retry_after) == [slow]
    limited = [c for c in fake_discord.calls if c.status == 429]
    retried = [
        c for c in fake_discord.calls_to("PATCH", rf"/channels/{DM_ID}/messages/\d+") if c.status == 200
    ]
    assert len(limited) == 1 and retried[0].at - limited[0].at >= retry_after - 0.1


async def test_replies_in_one_channel_keep_to_its_pace(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    clock = LeapClock()  # the 5-per-5-seconds window passes in virtual time
    fake_discord.clock = clock.now
    words = [f"word{i} " for i in range(20)]
    fake_model.queue(
        Reply(text="".join(words), chunk_size=6, delay=0.02),
        Reply(text="".join(reversed(words)), chunk_size=6, delay=0.02),
    )
    async with discord_bot(fake_model, fake_discord, db_path, clock=clock):
        await fake_discord.user_says("first", channel_id=GENERAL_ID, mention_bot=True)
        await fake_discord.user_says("second", channel_id=GENERAL_ID, author_id=BOB_ID, mention_bot=True)
        texts = await fake_discord.wait_for_reply(GENERAL_ID, count=2)
    assert [t.strip() for t in texts] == ["".join(words).strip(), "".join(reversed(words)).strip()]
    pattern = rf"/channels/{GENERAL_ID}/messages(/\d+)?"
    changes = [c.at for c in fake_discord.calls if re.fullmatch(pattern, c.path)]
    # Every create and edit in the channel, across both replies: never more than 5 in any 5 seconds.
    assert max(sum(1 for t in changes if start <= t < start + 5.0) for start in changes) <= 5
    assert len(changes) > 4  # both replies were shown while being written, not only at the end


@pytest.mark.parametrize(
    ("retry_after", "times", "core_wait"),
    [(45.0, 1, 45.0), (0.01, 6, 1.0)],
    ids=["wait-longer-than-discord.py-sleeps", "discord.py-gives-up-after-5-tries"],
)
async def test_flood_wait_on_final_edit_keeps_the_text(
    fake_model: FakeOpenAI,
    fake_discord: FakeDiscord,
    db_path: Path,
    retry_after: float,
    times: int,
    core_wait: float,
) -> None:
    clock = LeapClock()
    fake_model.queue(Reply(text="The final words must land.", chunk_size=100))
    fake_discord.rate_limit("PATCH", rf"/channels/{DM_ID}/messages/\d+", retry_after=retry_after, times=times)
    async with discord_bot(fake_model, fake_discord, db_path, clock=clock):
        await fake_discord.user_says("hi", channel_id=DM_ID)
        assert await fake_discord.wait_for_reply(DM_ID) == ["The final words must land."]
    edits = [  # text edits: the feedback buttons come after, in an edit without content
        c for c in fake_discord.calls_to("PATCH", rf"/channels/{DM_ID}/messages/\d+") if "content" in c.body
    ]
    assert [c.status for c in edits] == [429] * times + [200]
    assert all(c.body["content"] == "The final words must land." for c in edits)  # the final edit itself
    # discord.py raised instead of sleeping; the core waited it out on the injected clock and retried.
    assert any(core_wait - 0.5 < s <= core_wait for s in clock.sleeps)


async def test_channels_threads_and_dms_are_separate_conversations(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    async with discord_bot(fake_model, fake_discord, db_path) as (engine, _runner):
        await fake_discord.user_says("my name is Ann", channel_id=GENERAL_ID, mention_bot=True)
        await fake_discord.wait_for_reply(GENERAL_ID)
        await fake_discord.user_says("what is my name?", channel_id=THREAD_ID, mention_bot=True)
        assert await fake_discord.wait_for_reply(THREAD_ID) == ["You said: what is my name?"]
        assert user_texts(fake_model) == ["what is my name?"]  # the thread knows nothing of #general

        # In the thread the bot answered in, follow-ups need no mention; in a channel they do.
        await fake_discord.user_says("and my age?", channel_id=THREAD_ID)
        assert (await fake_discord.wait_for_reply(THREAD_ID, count=2))[1] == "You said: and my age?"
        assert user_texts(fake_model) == ["what is my name?", "and my age?"]
        await fake_discord.user_says(
            "(hidden without the content intent)", channel_id=THREAD_ID, hide_content=True
        )
        await fake_discord.user_says("no mention here", channel_id=GENERAL_ID)
        await fake_discord.user_says("my own chat", channel_id=DM_ID)
        assert await fake_discord.wait_for_reply(DM_ID) == ["You said: my own chat"]
        assert user_texts(fake_model) == ["my own chat"]
        await asyncio.sleep(0.1)
        assert len(fake_discord.texts(THREAD_ID)) == 2 and len(fake_discord.texts(GENERAL_ID)) == 1
        counts = [
            await engine.store.count_messages(f"discord:{GUILD_ID}:{GENERAL_ID}"),
            await engine.store.count_messages(f"discord:{GUILD_ID}:{THREAD_ID}"),
            await engine.store.count_messages(f"discord:dm:{DM_ID}"),
        ]
    assert counts == [2, 4, 2]
    assert len(fake_model.chat_requests) == 4


async def test_reply_to_the_bot_is_answered(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("first", channel_id=RANDOM_ID, mention_bot=True)
        await fake_discord.wait_for_reply(RANDOM_ID)
        bot_message = fake_discord.bot_messages(RANDOM_ID)[0].id
        await fake_discord.user_says("second, as a reply", channel_id=RANDOM_ID, reply_to=bot_message)
        texts = await fake_discord.wait_for_reply(RANDOM_ID, count=2)
    assert texts[1] == "You said: second, as a reply"
    assert user_texts(fake_model) == ["first", "second, as a reply"]


async def test_history_survives_a_restart(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("remember the number 42", channel_id=DM_ID)
        await fake_discord.wait_for_reply(DM_ID)
        await fake_discord.user_says("in the thread", channel_id=THREAD_ID, mention_bot=True)
        await fake_discord.wait_for_reply(THREAD_ID)
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("which number?", channel_id=DM_ID)
        await fake_discord.wait_for_reply(DM_ID, count=2)
        assert user_texts(fake_model) == ["remember the number 42", "which number?"]
        await fake_discord.user_says("a follow-up after the restart", channel_id=THREAD_ID)
        await fake_discord.wait_for_reply(THREAD_ID, count=2)
    assert fake_model.last_messages()[-1]["content"] == "a follow-up after the restart"
    assert len(fake_discord.identify) == 2


async def test_allowlists_limit_where_and_whom_the_bot_answers(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    async with discord_bot(
        fake_model,
        fake_discord,
        db_path,
        DISCORD_ALLOWED_CHANNELS=f"{GENERAL_ID}",
        DISCORD_ALLOWED_USERS=f"{ALICE_ID}",
        DISCORD_ALLOWED_ROLES=f"{MEMBER_ROLE_ID}",
    ):
        await fake_discord.user_says("not this channel", channel_id=RANDOM_ID, mention_bot=True)
        await fake_discord.user_says(
            "bob without the role", channel_id=GENERAL_ID, author_id=BOB_ID, mention_bot=True
        )
        await fake_discord.user_says("bob in a DM", channel_id=DM2_ID, author_id=BOB_ID)
        assert await fake_discord.wait_for_reply(GENERAL_ID) == [REFUSED]
        assert await fake_discord.wait_for_reply(DM2_ID) == [REFUSED]
        await fake_discord.user_says(
            "bob with the role",
            channel_id=THREAD_ID,
            author_id=BOB_ID,
            mention_bot=True,
            roles=[MEMBER_ROLE_ID],
        )
        assert await fake_discord.wait_for_reply(THREAD_ID) == ["You said: bob with the role"]
        await fake_discord.user_says("alice in a DM", channel_id=DM_ID)
        assert await fake_discord.wait_for_reply(DM_ID) == ["You said: alice in a DM"]
    assert fake_discord.bot_messages(RANDOM_ID) == []
    assert user_texts(fake_model, 0) == ["bob with the role"]
    assert len(fake_model.chat_requests) == 2


async def test_slash_and_text_commands(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    session = f"discord:{GUILD_ID}:{GENERAL_ID}"
    async with discord_bot(fake_model, fake_discord, db_path) as (engine, _runner):
        assert {c["name"] for c in fake_discord.commands["global"]} == {"start", "help", "reset", "forget"}
        await fake_discord.user_says("hello", channel_id=GENERAL_ID, mention_bot=True)
        await fake_discord.wait_for_reply(GENERAL_ID)
        assert await engine.store.count_messages(session) == 2

        token = await fake_discord.slash("reset", channel_id=GENERAL_ID)
        await fake_discord.wait_until(lambda: bool(fake_discord.interaction_responses[token]), what="/reset")
        (answer,) = fake_discord.interaction_responses[token]
        assert answer["type"] == 4 and "forgotten" in answer["data"]["content"]
        assert not answer["data"].get("flags", 0) & 64  # everyone in the channel sees the reset
        assert await engine.store.count_messages(session) == 0

        token = await fake_discord.slash("help", channel_id=DM_ID)
        await fake_discord.wait_until(lambda: bool(fake_discord.interaction_responses[token]), what="/help")
        (answer,) = fake_discord.interaction_responses[token]
        assert "/reset" in answer["data"]["content"] and answer["data"]["flags"] & 64  # only for the asker

        await fake_discord.user_says("/help", channel_id=RANDOM_ID, mention_bot=True)
        assert "/reset" in (await fake_discord.wait_for_reply(RANDOM_ID))[0]
    assert (
        fake_model.chat_requests[-1]["messages"][-1]["content"] == "hello"
    )  # commands never reach the model


async def test_slash_command_defers_while_the_conversation_is_busy(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    slow = "slow " * 20
    fake_model.queue(Reply(text=slow, chunk_size=25, delay=0.9))  # 2.7 s, past the 2 s answer window
    async with discord_bot(fake_model, fake_discord, db_path) as (engine, _runner):
        await fake_discord.user_says("talk slowly", channel_id=DM_ID)
        await fake_discord.wait_until(
            lambda: bool(fake_discord.bot_messages(DM_ID)), what="the reply to start"
        )
        token = await fake_discord.slash("reset", channel_id=DM_ID)
        await fake_discord.wait_until(
            lambda: len(fake_discord.interaction_responses[token]) == 2, within=6, what="the follow-up"
        )
        deferred, followup = fake_discord.interaction_responses[token]
        assert deferred["type"] == 5  # "thinking...", within Discord's 3 seconds
        assert followup["followup"] and "forgotten" in followup["content"]
        assert fake_model.request_times[0][1] <= fake_discord.calls_to("POST", "/webhooks/.*")[0].at
        assert [t.strip() for t in await fake_discord.wait_for_reply(DM_ID)] == [slow.strip()]
        assert await engine.store.count_messages(f"discord:dm:{DM_ID}") == 0


async def test_a_channel_the_bot_cannot_post_in_does_not_stop_the_others(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_discord.fail("POST", rf"/channels/{RANDOM_ID}/messages", 403, 50013, "Missing Permissions", times=99)
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("can you post here?", channel_id=RANDOM_ID, mention_bot=True)
        await fake_discord.wait_until(
            lambda: any(c.status == 403 for c in fake_discord.calls), what="the refused post"
        )
        await fake_discord.user_says("and here?", channel_id=GENERAL_ID, mention_bot=True)
        assert await fake_discord.wait_for_reply(GENERAL_ID) == ["You said: and here?"]
    assert fake_discord.bot_messages(RANDOM_ID) == []
    assert "Missing Permissions" in caplog.text and TOKEN not in caplog.text


async def test_rejected_token_is_a_config_error_without_the_token(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    real_base = discord.http.Route.BASE
    fake_discord.fail("GET", "/users/@me", 401, 0, "401: Unauthorized")
    with pytest.raises(ConfigError) as caught:
        async with discord_bot(fake_model, fake_discord, db_path):
            pass
    assert "DISCORD_BOT_TOKEN" in str(caught.value) and TOKEN not in str(caught.value)
    assert real_base == discord.http.Route.BASE


async def test_a_text_command_naming_another_bot_does_not_reset(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    async with discord_bot(fake_model, fake_discord, db_path) as (engine, _runner):
        await fake_discord.user_says("remember the blue door", channel_id=DM_ID)
        await fake_discord.wait_for_reply(DM_ID)
        await fake_discord.user_says("/reset@OtherBot", channel_id=DM_ID)
        texts = await fake_discord.wait_for_reply(DM_ID, count=2)
        await fake_discord.user_says("/reset@OtherBot", channel_id=GENERAL_ID, mention_bot=True)
        await fake_discord.wait_for_reply(GENERAL_ID)
        left = await engine.store.count_messages(f"discord:dm:{DM_ID}")
    assert texts[1] == "You said: /reset@OtherBot"
    assert left == 4
    assert "remember the blue door" in user_texts(fake_model, -2)


async def test_a_thread_dropped_from_the_bounded_memory_is_still_followed(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    async with discord_bot(fake_model, fake_discord, db_path) as (_engine, runner):
        await fake_discord.user_says("hello thread", channel_id=THREAD_ID, mention_bot=True)
        await fake_discord.wait_for_reply(THREAD_ID)
        runner._followed = FollowedThreads(size=1)
        runner._followed.add("discord:1:some-other-thread")  # the thread above is no longer remembered
        await fake_discord.user_says("and a follow-up", channel_id=THREAD_ID)
        texts = await fake_discord.wait_for_reply(THREAD_ID, count=2)
    assert texts[1] == "You said: and a follow-up"
    assert len(runner._followed) == 1


async def test_model_text_never_pings_anyone_on_discord(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    fake_model.queue(Reply(text=f"@everyone @here look, <@{BOB_ID}> and <@&{MEMBER_ROLE_ID}>!", chunk_size=9))
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("ping them all", channel_id=GENERAL_ID, mention_bot=True)
        await fake_discord.wait_for_reply(GENERAL_ID)
    writes = [
        call
        for call in fake_discord.calls
        if call.method in ("POST", "PATCH")
        and re.search(r"/channels/\d+/messages", call.path)
        and "content" in call.body  # not the feedback buttons' edit: no text, nothing to ping
    ]
    assert writes
    for call in writes:  # Discord pings only what allowed_mentions lets through: nothing here
        mentions = call.body["allowed_mentions"]
        assert mentions["parse"] == [] and not mentions.get("users") and not mentions.get("roles")


async def test_a_second_runner_still_reaches_its_discord_after_the_first_stops(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    real_base = discord.http.Route.BASE
    settings = discord_settings(fake_model, fake_discord, db_path)
    async with open_engine(settings) as engine:
        first, second = DiscordRunner(settings, engine), DiscordRunner(settings, engine)
        await first.start()
        try:
            await second.start()
            await first.stop()
            await fake_discord.user_says("still there?", channel_id=DM_ID)
            assert await fake_discord.wait_for_reply(DM_ID) == ["You said: still there?"]
        finally:
            await first.stop()
            await second.stop()
    assert real_base == discord.http.Route.BASE  # put back when the last runner stopped


async def test_a_second_runner_pointed_elsewhere_is_refused_and_the_first_goes_on(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    elsewhere = discord_settings(
        fake_model, fake_discord, db_path, DISCORD_API_BASE_URL="http://127.0.0.1:9/api/v10"
    )
    async with discord_bot(fake_model, fake_discord, db_path) as (engine, _runner):
        with pytest.raises(ConfigError, match="one process talks to one Discord"):
            await DiscordRunner(elsewhere, engine).start()
        await fake_discord.user_says("are you there?", channel_id=DM_ID)
        assert await fake_discord.wait_for_reply(DM_ID) == ["You said: are you there?"]


async def test_a_reply_of_exactly_2000_characters_ends_as_one_message(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    # the whole text is out before the model says it is done, so a preview of all 2,000 characters fires:
    # with the writing marker it would not fit, yet the reply itself does
    text = ("Two thousand characters exactly, and not one more. " * 40)[:2000]
    fake_model.queue(Reply(text=text, chunk_size=250, delay=0.01, hang_at_end=0.4))
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("write 2000", channel_id=GENERAL_ID, mention_bot=True)
        await fake_discord.wait_until(
            lambda: fake_discord.texts(GENERAL_ID) == [text.strip()], what="the whole reply as one message"
        )
        await asyncio.sleep(0.2)  # nothing more may follow
    assert fake_discord.texts(GENERAL_ID) == [text.strip()]
