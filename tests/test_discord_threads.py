"""Discord's thread option (DISCORD_THREAD_REPLIES): a mention in a server channel is answered in a new
thread named after the question, and later messages there continue that conversation without a mention.
The real discord.py client against the fake Discord (tests/fakes/discord_api.py) and the fake model."""

from __future__ import annotations

import re
from pathlib import Path

from adapters.discord.sessions import thread_name
from core.conversation import INTERRUPTED
from tests.fakes.discord_api import DM_ID, GENERAL_ID, GUILD_ID, THREAD_ID, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.test_discord_adapter import MARKER, discord_bot, reassemble, user_texts

THREADS = {"DISCORD_THREAD_REPLIES": True}
THREAD_PATH = r"/channels/\d+/messages/\d+/threads"


def test_a_thread_is_named_after_the_first_line_of_the_question_within_discords_limit() -> None:
    assert thread_name("How do I rotate my keys?\nI tried twice.") == "How do I rotate my keys?"
    long = thread_name("word " * 60)
    assert len(long) <= 100 and long.endswith("…") and long.startswith("word word")
    assert thread_name("   \n  ") == "Conversation"


async def test_a_mention_opens_a_thread_named_after_the_question_and_follow_ups_need_no_mention(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    question = "Could you explain, in a few words, why the build on the main branch fails " * 3
    fake_model.queue(
        Reply(text="Here is why: " + "the cache is stale. " * 5, chunk_size=8, delay=0.02, first_delay=0.2)
    )
    async with discord_bot(fake_model, fake_discord, db_path, **THREADS) as (engine, _runner):
        asked = await fake_discord.user_says(question, channel_id=GENERAL_ID, mention_bot=True)
        thread = asked  # a thread started from a message has the message's id
        [answer] = await fake_discord.wait_for_reply(thread)
        await fake_discord.user_says("and how do I fix it?", channel_id=thread)
        replies = await fake_discord.wait_for_reply(thread, count=2)
        stored = await engine.store.count_messages(f"discord:{GUILD_ID}:{thread}")
    assert (
        answer == "Here is why: " + "the cache is stale. " * 5
        or answer == ("Here is why: " + "the cache is stale. " * 5).strip()
    )
    assert replies[1] == "You said: and how do I fix it?"
    assert user_texts(fake_model) == [question.strip(), "and how do I fix it?"], "one conversation"
    assert fake_discord.texts(GENERAL_ID) == [], "nothing answered in the channel itself"
    [created] = fake_discord.calls_to("POST", THREAD_PATH)
    assert created.path == f"/channels/{GENERAL_ID}/messages/{asked}/threads"
    name = created.body["name"]
    assert len(name) <= 100 and name.endswith("…") and question.startswith(name[:-1].rstrip())
    typing = fake_discord.calls_to("POST", rf"/channels/{thread}/typing")
    first_post = fake_discord.calls_to("POST", rf"/channels/{thread}/messages")[0]
    assert typing and typing[0].at < first_post.at, "typing in the thread until the first words"
    assert stored == 4


async def test_without_the_option_a_mention_is_answered_in_the_channel(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("hi", channel_id=GENERAL_ID, mention_bot=True)
        assert await fake_discord.wait_for_reply(GENERAL_ID) == ["You said: hi"]
    assert not fake_discord.calls_to("POST", THREAD_PATH)


async def test_mentions_in_a_thread_or_a_dm_open_no_new_thread(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    async with discord_bot(fake_model, fake_discord, db_path, **THREADS):
        await fake_discord.user_says("in a thread", channel_id=THREAD_ID, mention_bot=True)
        assert await fake_discord.wait_for_reply(THREAD_ID) == ["You said: in a thread"]
        await fake_discord.user_says("in a DM", channel_id=DM_ID)
        assert await fake_discord.wait_for_reply(DM_ID) == ["You said: in a DM"]
    assert not fake_discord.calls_to("POST", THREAD_PATH)


async def test_a_refused_thread_is_answered_in_the_channel_instead(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    fake_discord.fail("POST", THREAD_PATH, 403, 50013, "Missing Permissions")
    async with discord_bot(fake_model, fake_discord, db_path, **THREADS):
        await fake_discord.user_says("hi", channel_id=GENERAL_ID, mention_bot=True)
        assert await fake_discord.wait_for_reply(GENERAL_ID) == ["You said: hi"]
    assert [c.status for c in fake_discord.calls_to("POST", THREAD_PATH)] == [403]


async def test_a_long_reply_in_a_thread_arrives_whole(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    text = " ".join(f"Sentence number {i} explains one more detail." for i in range(120))
    fake_model.queue(Reply(text=text, chunk_size=97, delay=0.01))
    async with discord_bot(fake_model, fake_discord, db_path, **THREADS):
        thread = await fake_discord.user_says("explain at length", channel_id=GENERAL_ID, mention_bot=True)
        await fake_discord.wait_until(
            lambda: re.sub(r"\s", "", reassemble(fake_discord.texts(thread))) == re.sub(r"\s", "", text),
            within=20.0,  # five creates and edits per five seconds in a channel: the thread's own pace
            what="the whole reply in the thread",
        )
    assert len(fake_discord.texts(thread)) >= 3 and all(len(m) <= 2000 for m in fake_discord.texts(thread))


async def test_a_429_in_the_thread_is_waited_out_without_losing_text(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    slow = "This reply is streamed slowly so it gets edited a few times in the thread."
    fake_model.queue(Reply(text=slow, chunk_size=6, delay=0.03))
    fake_discord.rate_limit("PATCH", r"/channels/\d+/messages/\d+", retry_after=1.0)
    async with discord_bot(fake_model, fake_discord, db_path, **THREADS):
        thread = await fake_discord.user_says("tell me slowly", channel_id=GENERAL_ID, mention_bot=True)
        assert await fake_discord.wait_for_reply(thread, within=10.0) == [slow]
    assert len(fake_discord.rate_limited()) == 1


async def test_a_model_failure_in_a_thread_leaves_a_clean_message_and_the_next_one_works(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    fake_model.queue(Reply(text="a partial answer that breaks off", chunk_size=6, delay=0.05, fail_after=3))
    async with discord_bot(fake_model, fake_discord, db_path, **THREADS):
        thread = await fake_discord.user_says("tell me", channel_id=GENERAL_ID, mention_bot=True)
        [cut] = await fake_discord.wait_for_reply(thread)
        await fake_discord.user_says("are you there?", channel_id=thread)
        cut, answered = await fake_discord.wait_for_reply(thread, count=2)
    assert cut.startswith("a partial") and cut.endswith(INTERRUPTED.strip()) and not cut.endswith(MARKER)
    assert answered == "You said: are you there?"
