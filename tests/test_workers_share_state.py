"""Two workers of one bot (two engine + adapter stacks, as ``chatbot run`` starts each) sharing state through
a real Redis (``CHATBOT_REDIS_URL``): the platform's pace, users' limits and Slack's redelivery dedup hold
across both; with Redis killed mid-run replies still arrive.

Each test's keys live under its own prefix (tests/support/services.py) and are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import adapters.telegram.runner as telegram_runner
from adapters.slack import SlackRunner
from adapters.telegram import TelegramRunner, TelegramTuning
from bots.app import open_engine, running_platforms, secrets_of
from core.conversation import ConversationEngine
from core.errors import ConfigError
from core.incoming import IncomingMessage
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER, SIGNING_SECRET, FakeSlack, mention
from tests.fakes.telegram_api import Burst, FakeTelegram, Pace
from tests.support.engines import settings_for
from tests.support.services import OwnRedis, free_port

# PTB's own RetryAfter constructor reads its deprecated int property; nothing in our code does.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

MARKER = "▌"
SECRET = "hook-secret_1"
# The bot paces a chat at a burst of 3, then one call per 0.3 s (+ its 0.05 s margin); the fake Telegram
# allows one per 0.2 s after a burst of 3. One worker alone never meets a 429; two workers pacing each on
# its own send twice the bot's pace and open with two bursts: the fake must refuse some of that.
TUNING = TelegramTuning(private_edit_interval=0.3, chat_burst=3, typing_interval=5.0, drain_grace=10.0)
FAKE_BURST = Burst(3, 0.2)


@asynccontextmanager
async def telegram_worker(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path, **keys: Any
) -> AsyncIterator[tuple[TelegramRunner, str]]:
    """One worker receiving Telegram webhooks on its own port: its runner and its webhook URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    settings = settings_for(
        fake_model.base_url,
        db_path,
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_BASE_URL=telegram.root,
        TELEGRAM_WEBHOOK_URL=url,
        TELEGRAM_WEBHOOK_LISTEN="127.0.0.1",
        TELEGRAM_WEBHOOK_PORT=port,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        # replies by sendMessage and edits, which Telegram paces (a private chat's drafts are not paced)
        TELEGRAM_DRAFTS=False,
        **{"CHATBOT_RATE_LIMIT_PER_MINUTE": 0, **keys},
    )
    async with open_engine(settings) as engine, running_platforms(settings, engine, ["telegram"]) as runners:
        runner = runners[0]
        assert isinstance(runner, TelegramRunner)
        yield runner, url


async def two_workers_answer_one_chat(
    fake_model: FakeOpenAI,
    telegram: FakeTelegram,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    **keys: Any,
) -> list[str]:
    """Six messages in one private chat, alternately delivered to two workers at once; the final texts."""
    monkeypatch.setattr(telegram_runner, "DEFAULT_TUNING", TUNING)
    telegram.enforce_pace, telegram.chat_burst = True, FAKE_BURST
    chat = telegram.private_chat(1001)
    for i in range(6):
        fake_model.queue(Reply(text=f"answer {i}: " + "word " * 12, chunk_size=10, delay=0.06))
    async with AsyncExitStack() as stack:
        workers = [
            await stack.enter_async_context(
                telegram_worker(fake_model, telegram, tmp_path / f"worker{n}.db", **keys)
            )
            for n in range(2)
        ]
        updates = [
            {"update_id": 500 + i, "message": telegram.user_message(chat, f"q{i}", queue=False)}
            for i in range(6)
        ]
        statuses = await asyncio.gather(
            *(telegram.post_webhook(workers[i % 2][1], update, SECRET) for i, update in enumerate(updates))
        )
        assert statuses == [200] * 6

        def done() -> bool:
            texts = telegram.texts(1001)
            bot_texts = [m.text for m in telegram.bot_messages(1001)]
            return (
                len(bot_texts) >= 6
                and all(runner.in_flight == 0 for runner, _url in workers)
                and not any(t.endswith(MARKER) for t in texts)
            )

        await telegram.wait_for(done, within=60.0)
    return [m.text for m in telegram.bot_messages(1001)]


async def test_two_workers_sharing_redis_gates_keep_telegrams_pace_in_one_chat(
    fake_model: FakeOpenAI,
    telegram: FakeTelegram,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    redis_prefix: str,
) -> None:
    texts = await two_workers_answer_one_chat(
        fake_model,
        telegram,
        tmp_path,
        monkeypatch,
        CHATBOT_REDIS_URL=redis_url,
        CHATBOT_REDIS_PREFIX=redis_prefix,
    )
    assert sorted(t.split(":")[0] for t in texts) == [f"answer {i}" for i in range(6)]
    assert all(t.endswith("word") for t in texts), texts
    assert telegram.rate_limited() == []


async def test_two_workers_pacing_each_on_its_own_are_refused_by_telegram(
    fake_model: FakeOpenAI, telegram: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control of the test above: the same load with in-process gates meets 429s (and still completes)."""
    texts = await two_workers_answer_one_chat(fake_model, telegram, tmp_path, monkeypatch)
    assert sorted(t.split(":")[0] for t in texts) == [f"answer {i}" for i in range(6)]
    assert telegram.rate_limited() != []


async def test_two_workers_sharing_redis_keep_the_bots_global_pace_over_many_chats(
    fake_model: FakeOpenAI,
    telegram: FakeTelegram,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """Telegram's 30 messages a second for the whole bot (here 8, and the bot's own pace 6): ten chats
    answered at once by two workers stay under it together."""
    monkeypatch.setattr(telegram_runner, "DEFAULT_TUNING", replace(TUNING, global_rate=6))
    telegram.enforce_pace, telegram.chat_burst, telegram.global_pace = True, FAKE_BURST, (Pace(8, 1.0),)
    chats = [telegram.private_chat(2000 + n) for n in range(10)]
    fake_model.queue(
        *(Reply(text=f"answer {n}: " + "word " * 8, chunk_size=10, delay=0.05) for n in range(10))
    )
    keys = {"CHATBOT_REDIS_URL": redis_url, "CHATBOT_REDIS_PREFIX": redis_prefix}
    async with (
        telegram_worker(fake_model, telegram, tmp_path / "a.db", **keys) as (a, a_url),
        telegram_worker(fake_model, telegram, tmp_path / "b.db", **keys) as (b, b_url),
    ):
        updates = [
            {"update_id": 900 + n, "message": telegram.user_message(chat, f"q{n}", queue=False)}
            for n, chat in enumerate(chats)
        ]
        await asyncio.gather(
            *(telegram.post_webhook((a_url, b_url)[n % 2], u, SECRET) for n, u in enumerate(updates))
        )

        def done() -> bool:
            texts = [t for chat in chats for t in telegram.texts(chat["id"])]
            return (
                len(texts) >= 10
                and a.in_flight == b.in_flight == 0
                and not any(t.endswith(MARKER) for t in texts)
            )

        await telegram.wait_for(done, within=60.0)
    assert all(telegram.texts(chat["id"])[0].endswith("word") for chat in chats)
    assert telegram.rate_limited() == []


# -- users' limits ----------------------------------------------------------------------------------------


@asynccontextmanager
async def engines(
    fake_model: FakeOpenAI, db_path: Path, count: int, **keys: Any
) -> AsyncIterator[list[ConversationEngine]]:
    """``count`` workers' engines on one database (as workers on one PostgreSQL would be)."""
    async with AsyncExitStack() as stack:
        settings = settings_for(fake_model.base_url, db_path, **keys)
        yield [await stack.enter_async_context(open_engine(settings)) for _ in range(count)]


def said(text: str, user: str = "telegram:42") -> IncomingMessage:
    return IncomingMessage(session_id=user, text=text, user_id=user, platform="telegram")


async def test_a_users_rate_limit_counts_messages_to_every_worker(
    fake_model: FakeOpenAI, db_path: Path, redis_url: str, redis_prefix: str
) -> None:
    keys = {
        "CHATBOT_REDIS_URL": redis_url,
        "CHATBOT_REDIS_PREFIX": redis_prefix,
        "CHATBOT_RATE_LIMIT_PER_MINUTE": 2,
    }
    async with engines(fake_model, db_path, 2, **keys) as (a, b):
        first = await a.reply_text(said("one"))
        second = await b.reply_text(said("two"))
        third = await a.reply_text(said("three"))  # worker a has seen only one message from this user
        other = await b.reply_text(said("hello", user="telegram:43"))
    assert (first, second, other) == ("You said: one", "You said: two", "You said: hello")
    assert third.startswith("Please slow down")
    assert len(fake_model.chat_requests) == 3


async def test_a_users_daily_budget_counts_tokens_spent_on_every_worker(
    fake_model: FakeOpenAI, db_path: Path, redis_url: str, redis_prefix: str
) -> None:
    keys = {
        "CHATBOT_REDIS_URL": redis_url,
        "CHATBOT_REDIS_PREFIX": redis_prefix,
        "CHATBOT_USER_DAILY_TOKENS": 150,  # the first turn costs about 90 tokens, the second more
    }
    async with engines(fake_model, db_path, 2, **keys) as (a, b):
        # worker b reads the user's total first and adds its small turn to it ...
        assert await b.reply_text(said("hi")) == "You said: hi"
        fake_model.queue(Reply(text="a long answer " * 10))
        # ... then worker a's turn spends the budget ...
        assert (await a.reply_text(said("tell me a lot"))).startswith("a long answer")
        # ... and worker b, whose own count (its turn only) is still under the budget, refuses
        refused = await b.reply_text(said("more please"))
    assert refused.startswith("You've reached today's limit")
    assert len(fake_model.chat_requests) == 2


# -- Slack redelivery ------------------------------------------------------------------------------------


@asynccontextmanager
async def slack_worker(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path, **keys: Any
) -> AsyncIterator[tuple[SlackRunner, str]]:
    settings = settings_for(
        fake_model.base_url,
        db_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=slack.base_url,
        SLACK_PORT=0,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        **keys,
    )
    settings = settings.model_copy(update={"slack_edit_interval": 0.05})
    async with open_engine(settings) as engine, running_platforms(settings, engine, ["slack"]) as runners:
        runner = runners[0]
        assert isinstance(runner, SlackRunner)
        yield runner, f"http://127.0.0.1:{runner.port}/slack/events"


async def test_a_slack_event_redelivered_to_the_other_worker_is_answered_once(
    fake_model: FakeOpenAI, slack: FakeSlack, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    keys = {"CHATBOT_REDIS_URL": redis_url, "CHATBOT_REDIS_PREFIX": redis_prefix}
    text = f"<@{BOT_USER}> hello"
    async with (
        slack_worker(fake_model, slack, tmp_path / "a.db", **keys) as (a, a_url),
        slack_worker(fake_model, slack, tmp_path / "b.db", **keys) as (b, b_url),
    ):
        slack.app_url = a_url
        assert (await slack.post_event(mention(text, ts="700.000001"), event_id="Ev0700"))[0] == 200
        slack.app_url = b_url  # Slack retries; the load balancer picks the other worker
        assert (await slack.post_event(mention(text, ts="700.000001"), event_id="Ev0700", retry_num=1))[
            0
        ] == 200
        # the positive control, on worker b: a new event is answered there
        await slack.post_event(mention(f"<@{BOT_USER}> control", ts="701.000001"), event_id="Ev0701")

        def finished() -> bool:
            return (
                len(slack.in_thread("C0GENERAL", "701.000001")) == 1
                and a.dispatcher.pending == 0
                and b.dispatcher.pending == 0
            )

        await eventually(finished)
    assert [m.text for m in slack.in_thread("C0GENERAL", "700.000001")] == ["You said: hello"]
    assert len(fake_model.chat_requests) == 2


async def eventually(check: Callable[[], bool], within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- Redis lost mid-run ----------------------------------------------------------------------------------


async def test_replies_still_arrive_when_redis_dies_mid_run_with_one_warning(
    fake_model: FakeOpenAI,
    telegram: FakeTelegram,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    own_redis: OwnRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(telegram_runner, "DEFAULT_TUNING", TUNING)
    caplog.set_level(logging.INFO, logger="adapters.shared_state")
    chat = telegram.private_chat(1001)
    keys = {"CHATBOT_REDIS_URL": own_redis.url, "CHATBOT_RATE_LIMIT_PER_MINUTE": 10}
    async with (
        telegram_worker(fake_model, telegram, tmp_path / "a.db", **keys) as (a, a_url),
        telegram_worker(fake_model, telegram, tmp_path / "b.db", **keys) as (b, b_url),
    ):

        async def ask(url: str, text: str, update_id: int) -> None:
            update = {"update_id": update_id, "message": telegram.user_message(chat, text, queue=False)}
            assert await telegram.post_webhook(url, update, SECRET) == 200
            await telegram.wait_for(
                lambda: f"You said: {text}" in telegram.texts(1001) and a.in_flight == 0 and b.in_flight == 0,
                within=20.0,
            )

        await ask(a_url, "before", 1)
        own_redis.stop()  # killed: every worker loses it at once
        for n, url in enumerate([a_url, b_url, a_url, b_url]):
            await ask(url, f"during {n}", 10 + n)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 2, [r.getMessage() for r in warnings]  # one per worker process
        own_redis.start()
        await asyncio.sleep(6.0)  # past the time a lost Redis is left alone before it is tried again
        await ask(b_url, "after", 20)
    assert any("is back" in r.getMessage() for r in caplog.records)
    assert not any(t.endswith(MARKER) for t in telegram.texts(1001))


# -- start-up --------------------------------------------------------------------------------------------


async def test_a_worker_whose_redis_is_down_does_not_start_and_says_why_without_the_password(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    port = free_port()
    settings = settings_for(
        fake_model.base_url, db_path, CHATBOT_REDIS_URL=f"redis://:pa55-word@127.0.0.1:{port}/0"
    )
    with pytest.raises(ConfigError) as caught:
        async with open_engine(settings):
            pass
    assert f"127.0.0.1:{port}" in str(caught.value) and "pa55-word" not in str(caught.value)
    assert "pa55-word" in secrets_of(settings)  # the log filter redacts the password on its own too


async def test_without_a_redis_url_the_engine_keeps_in_process_state(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with open_engine(settings_for(fake_model.base_url, db_path)) as engine:
        assert engine.shared is None
