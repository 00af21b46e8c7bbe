"""The Slack adapter end to end: started as ``chatbot run`` starts it, real slack_bolt / slack_sdk talking to
the fake Slack (tests/fakes/slack_api.py) and the fake model, events delivered as signed HTTP requests (or
over the fake Socket Mode websocket). Assertions are on what a user would see in Slack and what the model
was sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import SlackRunner
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.runner import REFUSAL, UPDATE_PER
from bots.app import open_engine, running_platforms
from core.conversation import ConversationEngine
from core.errors import ConfigError
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_api import (
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER,
    SIGNING_SECRET,
    FakeSlack,
    Message,
    mention,
    message,
)
from tests.support.engines import settings_for

MARKER = " ▌"
CHANNEL = "C0GENERAL"


@asynccontextmanager
async def slack_bot(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path, *, socket_mode: bool = False, **overrides: Any
) -> AsyncIterator[tuple[SlackRunner, ConversationEngine]]:
    """The bot with only Slack enabled, as ``chatbot run --platform slack`` runs it."""
    keys: dict[str, Any] = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack.base_url, "SLACK_PORT": 0}
    # the chat.update path (top-level DMs, and where a workspace refuses streams); native streams, the
    # status line and assistant threads: tests/test_slack_native.py
    keys["SLACK_NATIVE_STREAMS"] = False
    keys.update({"SLACK_APP_TOKEN": APP_TOKEN} if socket_mode else {"SLACK_SIGNING_SECRET": SIGNING_SECRET})
    keys.update(overrides)
    settings = settings_for(fake_model.base_url, db_path, **keys)
    # A fast edit pace for tests (Slack's default is 1 s); see docs/slack.md.
    settings = settings.model_copy(update={"slack_edit_interval": 0.05})
    async with open_engine(settings) as engine, running_platforms(settings, engine, ["slack"]) as runners:
        runner = runners[0]
        assert isinstance(runner, SlackRunner)
        if not socket_mode:
            slack.app_url = f"http://127.0.0.1:{runner.port}/slack/events"
        yield runner, engine


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def replies(
    slack: FakeSlack, runner: SlackRunner, channel: str, thread_ts: str | None, count: int = 1
) -> list[Message]:
    """The bot's finished messages in a thread, once ``count`` of them are there and every reply is done."""

    def done() -> bool:
        found = slack.in_thread(channel, thread_ts)
        return (
            len(found) >= count
            and runner.dispatcher.pending == 0
            and not any(m.text.endswith(MARKER) for m in found)
        )

    await eventually(done)
    return slack.in_thread(channel, thread_ts)


async def answered_after(
    slack: FakeSlack, runner: SlackRunner, ts: str, *, channel: str = CHANNEL, user: str = "U0ALICE"
) -> Message:
    """The positive control after events that must be left alone: a later mention that must be answered.

    Its answer proves the bot was handling events, and that anything the earlier events set off has had the
    time of a whole turn (model and Slack round trips) to show up, instead of a guessed sleep.
    """
    await slack.post_event(mention(f"<@{BOT_USER}> control", channel=channel, ts=ts, user=user))
    [reply] = await replies(slack, runner, channel, ts)
    assert reply.text == "You said: control"
    return reply


async def test_a_mention_gets_a_threaded_reply_whose_final_text_is_complete(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    answer = (
        "A **monad** is a [monoid](https://en.wikipedia.org/wiki/Monoid) in the category of endofunctors. "
        * 3
    )
    thinking = asyncio.Event()  # the model says nothing until the event has been acked
    fake_model.queue(Reply(text=answer, chunk_size=12, delay=0.01, hold=thinking))
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        event = mention(f"<@{BOT_USER}> what is a monad?", ts="100.000001")
        # Slack redelivers what is not acked within 3 s; an ack that waited for the model never comes.
        status, _ = await asyncio.wait_for(slack.post_event(event), timeout=3.0)
        assert status == 200 and not slack.in_thread(CHANNEL, "100.000001")
        thinking.set()
        [reply] = await replies(slack, runner, CHANNEL, "100.000001")

    assert reply.text == to_mrkdwn(answer)
    assert "*monad*" in reply.text and "<https://en.wikipedia.org/wiki/Monoid|monoid>" in reply.text
    previews = reply.versions[:-1]
    assert previews and all(text.endswith(MARKER) for text in previews)
    assert fake_model.last_messages()[-1] == {"role": "user", "content": "what is a monad?"}
    assert len(slack.calls_of("chat.postMessage")) == 1


async def test_a_threads_followup_carries_its_history_and_another_thread_does_not(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> my name is Ada", ts="200.000001"))
        await replies(slack, runner, CHANNEL, "200.000001")
        # no mention needed in a thread the bot is part of
        await slack.post_event(message("what is my name?", ts="200.000002", thread_ts="200.000001"))
        thread = await replies(slack, runner, CHANNEL, "200.000001", count=2)
        followup_prompt = fake_model.last_messages()
        await slack.post_event(mention(f"<@{BOT_USER}> what is my name?", ts="300.000001"))
        await replies(slack, runner, CHANNEL, "300.000001")
        other_prompt = fake_model.last_messages()
        # a thread the bot is not part of: ignored without a mention
        await slack.post_event(message("anyone?", ts="400.000002", thread_ts="400.000001"))
        await answered_after(slack, runner, "450.000001")

    assert slack.in_thread(CHANNEL, "400.000001") == []
    assert [m["content"] for m in followup_prompt[1:]] == [
        "my name is Ada",
        "You said: my name is Ada",
        "what is my name?",
    ]
    assert thread[1].text == "You said: what is my name?"
    assert [m["content"] for m in other_prompt[1:]] == ["what is my name?"]
    assert len(fake_model.chat_requests) == 4  # the three above and the control


async def test_followups_can_be_switched_off(fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path) -> None:
    async with slack_bot(fake_model, slack, db_path, SLACK_THREAD_FOLLOWUPS=False) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> hi", ts="200.000001"))
        await replies(slack, runner, CHANNEL, "200.000001")
        await slack.post_event(message("still there?", ts="200.000002", thread_ts="200.000001"))
        await answered_after(slack, runner, "250.000001")
    assert len(slack.in_thread(CHANNEL, "200.000001")) == 1
    assert len(fake_model.chat_requests) == 2  # the mention and the control


async def test_followups_survive_a_restart(fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path) -> None:
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> remember 42", ts="200.000001"))
        await replies(slack, runner, CHANNEL, "200.000001")
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        await slack.post_event(message("what number?", ts="200.000002", thread_ts="200.000001"))
        await replies(slack, runner, CHANNEL, "200.000001", count=2)
    assert [m["content"] for m in fake_model.last_messages()[1:]] == [
        "remember 42",
        "You said: remember 42",
        "what number?",
    ]


async def test_redelivery_and_double_delivery_are_answered_once(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    text = f"<@{BOT_USER}> hello"
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        as_mention = await slack.post_event(mention(text, ts="500.000001"), event_id="Ev0001")
        as_message = await slack.post_event(message(text, ts="500.000001"), event_id="Ev0002")
        retried = await slack.post_event(mention(text, ts="500.000001"), event_id="Ev0001", retry_num=1)
        await replies(slack, runner, CHANNEL, "500.000001")
        await slack.post_event(message(text, ts="500.000001"), event_id="Ev0002", retry_num=2)
        await answered_after(slack, runner, "550.000001")

    assert [as_mention[0], as_message[0], retried[0]] == [200, 200, 200]
    assert len(slack.in_thread(CHANNEL, "500.000001")) == 1
    assert len(fake_model.chat_requests) == 2  # one for the message, one for the control
    assert len(slack.calls_of("chat.postMessage")) == 2


async def test_bad_or_stale_signatures_are_rejected_before_any_handler(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    event = mention(f"<@{BOT_USER}> hi", ts="600.000001")
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        forged = await slack.post_event(event, secret="not-the-signing-secret")
        stale = await slack.post_event(event, timestamp=int(time.time()) - 600)
        calls_before_control = [call.method for call in slack.calls]
        await answered_after(slack, runner, "650.000001")  # signed properly: answered
    assert forged[0] == 401 and stale[0] == 401
    assert slack.in_thread(CHANNEL, "600.000001") == []
    assert [m["content"] for r in fake_model.chat_requests for m in r["messages"][1:]] == ["control"]
    assert calls_before_control == ["auth.test"]  # the start-up check, nothing else


async def test_url_verification_is_answered(fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path) -> None:
    challenge = {
        "token": "x",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }
    async with slack_bot(fake_model, slack, db_path):
        status, body = await slack.post_event(challenge, raw=True)
    assert status == 200 and challenge["challenge"] in body


async def test_a_45000_character_reply_arrives_complete_across_messages(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    sentences = [f"Sentence number {i} says something plain and true." for i in range(900)]
    paragraphs = [" ".join(sentences[i : i + 12]) for i in range(0, len(sentences), 12)]
    answer = "\n\n".join(paragraphs)
    assert len(answer) > 45_000
    fake_model.queue(Reply(text=answer, chunk_size=2_000))
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> write a lot", ts="700.000001"))
        thread = await replies(slack, runner, CHANNEL, "700.000001", count=12)

    assert all(len(m.text) <= 4_000 for m in thread)
    assert all(len(text) <= 4_000 for m in thread for text in m.versions)
    assert not any(call.error for call in slack.calls)
    assert _words(" ".join(m.text for m in thread)) == _words(answer)


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


async def test_rate_limits_are_waited_out_without_losing_text(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    answer = "Rate limits slow us down but never lose a word. " * 8
    fake_model.queue(Reply(text=answer, chunk_size=10, delay=0.04))  # streams for about 1.6 s
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    slack.rate_limit("chat.update", times=2, retry_after=1)
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> go", ts="800.000001"))
        [reply] = await replies(slack, runner, CHANNEL, "800.000001")

    assert reply.text == to_mrkdwn(answer)
    chat = [call for call in slack.calls if call.method.startswith("chat.")]
    limited = [i for i, call in enumerate(chat) if call.status == 429]
    assert len(limited) == 3
    for i in limited:  # the next call waited for Retry-After
        assert chat[i + 1].at - chat[i].at >= 0.9


async def test_concurrent_replies_share_the_workspace_pace(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    answers = [f"Reply {n} streams slowly, word by word, for a while. " * 6 for n in range(4)]
    fake_model.queue(*(Reply(text=a, chunk_size=4, delay=0.015) for a in answers))
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        started = time.monotonic()
        for n in range(4):
            await slack.post_event(mention(f"<@{BOT_USER}> go {n}", channel=f"C0ROOM{n}", ts=f"90{n}.000001"))
        finals = [await replies(slack, runner, f"C0ROOM{n}", f"90{n}.000001") for n in range(4)]
        elapsed = time.monotonic() - started

    assert sorted(m.text for [m] in finals) == sorted(answers)
    calls = [call for call in slack.calls if call.method.startswith("chat.")]
    # all four replies together stay within the workspace's 45 calls a minute...
    assert len(calls) <= 45
    # ...which alone each would have spent in a second: one edit every 0.05 s
    assert len(calls) < 4 * elapsed / 0.05
    # and the final edits did not wait for the 60-second window to pass (they take about a second)
    assert elapsed < UPDATE_PER / 2


async def test_dms_are_answered_without_a_mention(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    def dm(text: str, ts: str) -> dict[str, Any]:
        return message(text, channel="D0ALICE", channel_type="im", ts=ts)

    async with slack_bot(fake_model, slack, db_path) as (runner, engine):
        await slack.post_event(dm("hi there", "1000.000001"))
        await replies(slack, runner, "D0ALICE", None)
        await slack.post_event(dm("again", "1000.000005"))
        await replies(slack, runner, "D0ALICE", None, count=2)
        prompt = fake_model.last_messages()
        await slack.post_event(dm("!reset", "1000.000009"))  # Slack's client would take "/reset" itself
        dm_messages = await replies(slack, runner, "D0ALICE", None, count=3)
        left = await engine.store.count_messages("slack:T0TEAM:D0ALICE")

    assert [m.text for m in dm_messages] == [
        "You said: hi there",
        "You said: again",
        "Done: I've forgotten this conversation.",
    ]
    assert [m["content"] for m in prompt[1:]] == ["hi there", "You said: hi there", "again"]
    assert left == 0


async def test_own_messages_edits_and_other_bots_are_ignored(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    slack.echo = True  # Slack sends the bot its own posts and edits back
    fake_model.queue(Reply(text="I answer once and only once. " * 4, chunk_size=8, delay=0.01))
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        await slack.post_event(message("hello", channel="D0ALICE", channel_type="im", ts="1100.000001"))
        await replies(slack, runner, "D0ALICE", None)
        other_bot = message("beep", channel="D0ALICE", channel_type="im", ts="1100.000009", user="U0OTHER")
        await slack.post_event({**other_bot, "bot_id": "B0OTHER"})
        await eventually(lambda: not slack._tasks)  # every echo delivered
        echoed_updates = len(slack.calls_of("chat.update"))
        await answered_after(slack, runner, "1150.000001")

    assert echoed_updates >= 2  # so message_changed echoes were sent
    assert [m["content"] for m in fake_model.chat_requests[0]["messages"][1:]] == ["hello"]
    assert len(fake_model.chat_requests) == 2  # "hello" and the control, nothing for echoes or the bot
    assert len(slack.in_thread("D0ALICE", None)) == 1


async def test_the_allowlist_refuses_others_in_thread(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    async with slack_bot(
        fake_model, slack, db_path, SLACK_ALLOWED_CHANNELS="C0GENERAL", SLACK_ALLOWED_USERS="U0ALICE,U0CAROL"
    ) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> hi", channel="C0SECRET", ts="1300.000001"))
        await slack.post_event(mention(f"<@{BOT_USER}> hi", user="U0MALLORY", ts="1300.000002"))
        await slack.post_event(mention(f"<@{BOT_USER}> hi", user="U0CAROL", ts="1300.000003"))
        [elsewhere] = await replies(slack, runner, "C0SECRET", "1300.000001")
        [stranger] = await replies(slack, runner, CHANNEL, "1300.000002")
        await replies(slack, runner, CHANNEL, "1300.000003")
        # a stranger chatting in Carol's thread was not asking the bot: no answer, no refusal
        await slack.post_event(message("lol", user="U0MALLORY", ts="1300.000004", thread_ts="1300.000003"))
        await slack.post_event(message("and you?", user="U0CAROL", ts="1300.000005", thread_ts="1300.000003"))
        carol = await replies(slack, runner, CHANNEL, "1300.000003", count=2)  # after Mallory's: the control

    assert elsewhere.text == stranger.text == REFUSAL
    assert [m.text for m in slack.in_thread(CHANNEL, "1300.000003")] == ["You said: hi", "You said: and you?"]
    assert len(carol) == 2
    assert len(fake_model.chat_requests) == 2


async def test_socket_mode_uses_the_same_handlers(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    async with slack_bot(fake_model, slack, db_path, socket_mode=True) as (runner, _engine):
        assert runner.port is None  # no HTTP server in Socket Mode
        await eventually(lambda: slack.socket_connected)
        first = await slack.push_event(mention(f"<@{BOT_USER}> over the socket", ts="1400.000001"), "Ev1400")
        await replies(slack, runner, CHANNEL, "1400.000001")
        await slack.push_event(mention(f"<@{BOT_USER}> over the socket", ts="1400.000001"), "Ev1400")
        await slack.push_event(message("and a follow-up", ts="1400.000002", thread_ts="1400.000001"))
        thread = await replies(slack, runner, CHANNEL, "1400.000001", count=2)
        await eventually(lambda: len(slack.acks) == 3)

    assert {"envelope_id": first} in slack.acks
    assert [m.text for m in thread] == ["You said: over the socket", "You said: and a follow-up"]
    assert len(fake_model.chat_requests) == 2
    assert [call.method for call in slack.calls][:2] == ["auth.test", "apps.connections.open"]
    assert len(slack.calls_of("apps.connections.open")) == 1


@pytest.mark.parametrize("socket_mode", [False, True])
async def test_a_refused_token_stops_the_start_with_a_clear_error(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path, socket_mode: bool
) -> None:
    wrong = "xapp-revoked-9999" if socket_mode else "xoxb-revoked-9999"
    if socket_mode:
        slack.app_token = "xapp-the-real-one"
    else:
        slack.bot_token = "xoxb-the-real-one"
    with pytest.raises(ConfigError) as failure:
        keys = {"SLACK_APP_TOKEN": wrong} if socket_mode else {"SLACK_BOT_TOKEN": wrong}
        async with slack_bot(fake_model, slack, db_path, socket_mode=socket_mode, **keys):
            pass
    key = "SLACK_APP_TOKEN" if socket_mode else "SLACK_BOT_TOKEN"
    assert key in str(failure.value) and "invalid_auth" in str(failure.value)
    assert wrong not in str(failure.value)


async def test_a_command_naming_another_bot_does_not_reset(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    def dm(text: str, ts: str) -> dict[str, Any]:
        return message(text, channel="D0ALICE", channel_type="im", ts=ts)

    async with slack_bot(fake_model, slack, db_path) as (runner, engine):
        await slack.post_event(dm("remember the blue door", "1100.000001"))
        await replies(slack, runner, "D0ALICE", None)
        await slack.post_event(dm("!reset@otherbot", "1100.000002"))
        await replies(slack, runner, "D0ALICE", None, count=2)
        await slack.post_event(dm("/reset@otherbot", "1100.000003"))
        await replies(slack, runner, "D0ALICE", None, count=3)
        await slack.post_event(mention(f"<@{BOT_USER}> /reset@otherbot", ts="1100.000004"))
        await replies(slack, runner, CHANNEL, "1100.000004")
        left = await engine.store.count_messages("slack:T0TEAM:D0ALICE")
    assert left == 6
    assert "remember the blue door" in [m["content"] for m in fake_model.chat_requests[2]["messages"]]


async def test_a_bad_signature_is_refused_before_the_body_is_read_or_logged(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "BODY-MARKER-7f3a"
    big = json.dumps({"type": "event_callback", "padding": marker * 50_000}).encode()  # ~900 KB
    async with slack_bot(fake_model, slack, db_path):
        forged = [await slack.post_body(big, secret="not-the-signing-secret") for _ in range(3)]
        unsigned = await slack.post_body(big, signed=False)
        odd_stamp = await slack.post_body(b"{}", timestamp="yesterday")
    assert [status for status, _ in forged] == [401, 401, 401]
    assert unsigned[0] == 401 and odd_stamp[0] == 401
    assert marker not in caplog.text
    assert "Traceback" not in caplog.text and not any(r.levelno >= logging.ERROR for r in caplog.records)


async def test_a_signed_unreadable_body_is_a_400_without_a_traceback_and_events_still_work(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        not_json = await slack.post_body(b"this is not json")
        not_an_object = await slack.post_body(b"[1, 2, 3]")
        not_utf8 = await slack.post_body(b"{\xff\xfe}")
        bad_payload = await slack.post_body(
            b"payload=%7Bnot+json", content_type="application/x-www-form-urlencoded"
        )
        await slack.post_event(mention(f"<@{BOT_USER}> still there?", ts="1200.000001"))
        answered = await replies(slack, runner, CHANNEL, "1200.000001")
    assert [not_json[0], not_an_object[0], not_utf8[0], bad_payload[0]] == [400, 400, 400, 400]
    assert "Traceback" not in caplog.text and not any(r.levelno >= logging.ERROR for r in caplog.records)
    assert [m.text for m in answered] == ["You said: still there?"]


async def test_a_body_over_one_megabyte_is_refused_with_413(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    huge = json.dumps({"type": "event_callback", "padding": "x" * 1_100_000}).encode()
    async with slack_bot(fake_model, slack, db_path):
        status, _ = await slack.post_body(huge)
    assert status == 413
    assert fake_model.requests == []


async def test_a_slack_event_leaves_the_turn_log_at_the_configured_level(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    """bolt sets the level of the logger named after the app; named "chatbot", that silenced the turn log
    ("chatbot.turns") for good whenever Slack started while the root logger was at WARNING."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.WARNING)
    try:
        async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
            await slack.post_event(mention(f"<@{BOT_USER}> hello", ts="990.000001"))
            await replies(slack, runner, CHANNEL, "990.000001")
        root.setLevel(logging.INFO)
        assert logging.getLogger("chatbot.turns").isEnabledFor(logging.INFO)
    finally:
        root.setLevel(before)
