"""Slack HTTP events over two workers sharing the work queue: a mention (delivered as app_mention and as
message, and retried by Slack) reaching both workers is answered once, in its thread; two mentions in one
thread on two workers are answered in arrival order. Two runners in one process, each with its own engine,
queue handle and HTTP port, on one conversation file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from adapters.slack import SlackRunner
from bots.app import open_engine, running_platforms
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER, SIGNING_SECRET, FakeSlack, mention, message
from tests.support.engines import settings_for
from tests.support.workers import conversation_db_env

CHANNEL = "C0GENERAL"


async def eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def two_workers(
    fake_model: FakeOpenAI, slack: FakeSlack, postgres_url: str, tmp_path: Path
) -> AsyncIterator[list[str]]:
    """The events URL of each of two Slack workers."""
    db = Path(conversation_db_env(tmp_path)["CHATBOT_DB"])
    settings = settings_for(
        fake_model.base_url,
        db,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=slack.base_url,
        SLACK_PORT=0,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        CHATBOT_QUEUE_URL=postgres_url,
        CHATBOT_QUEUE_HEARTBEAT=0.5,
        CHATBOT_QUEUE_STALLED_AFTER=2,
    ).model_copy(update={"slack_edit_interval": 0.05})
    async with AsyncExitStack() as stack:
        urls = []
        for _ in range(2):
            engine = await stack.enter_async_context(open_engine(settings))
            (runner,) = await stack.enter_async_context(running_platforms(settings, engine, ["slack"]))
            assert isinstance(runner, SlackRunner) and runner.queue is not None
            urls.append(f"http://127.0.0.1:{runner.port}/slack/events")
        yield urls


async def post(slack: FakeSlack, url: str, event: dict[str, object], **kw: object) -> int:
    slack.app_url = url
    status, _body = await slack.post_event(event, **kw)  # type: ignore[arg-type]
    return status


async def test_one_mention_delivered_to_both_workers_three_ways_is_answered_once(
    two_workers: list[str], fake_model: FakeOpenAI, slack: FakeSlack
) -> None:
    fake_model.queue(Reply(text="Hello from one worker.", chunk_size=5, delay=0.05))
    text = f"<@{BOT_USER}> hi"
    first, second = two_workers
    assert await post(slack, first, mention(text, ts="100.1"), event_id="EvA") == 200
    assert await post(slack, second, message(text, ts="100.1"), event_id="EvB") == 200
    assert await post(slack, second, mention(text, ts="100.1"), event_id="EvA", retry_num=1) == 200
    await eventually(
        lambda: [m.text for m in slack.in_thread(CHANNEL, "100.1")] == ["Hello from one worker."]
    )
    await asyncio.sleep(1.0)  # room for a wrong second answer
    assert [m.text for m in slack.in_thread(CHANNEL, "100.1")] == ["Hello from one worker."]
    assert len(fake_model.chat_requests) == 1


async def test_two_mentions_in_a_thread_on_two_workers_are_answered_in_arrival_order(
    two_workers: list[str], fake_model: FakeOpenAI, slack: FakeSlack
) -> None:
    fake_model.queue(Reply(text="First, slowly.", chunk_size=2, delay=0.1), Reply(text="Second."))
    first, second = two_workers
    assert await post(slack, first, mention(f"<@{BOT_USER}> one", ts="200.1")) == 200
    assert await post(slack, second, mention(f"<@{BOT_USER}> two", ts="200.2", thread_ts="200.1")) == 200
    await eventually(
        lambda: [m.text for m in slack.in_thread(CHANNEL, "200.1")] == ["First, slowly.", "Second."]
    )
    said = [m["content"] for m in fake_model.chat_requests[1]["messages"]]
    assert said[-3:] == ["one", "First, slowly.", "two"]
