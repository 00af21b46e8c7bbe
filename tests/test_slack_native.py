"""Slack's native AI features end to end: the status line, native streams (chat.startStream /
appendStream / stopStream) with their fallback to chat.update, and assistant threads (greeting, suggested
prompts, title). Real slack_bolt / slack_sdk against the fake Slack (tests/fakes/slack_api.py)."""

from __future__ import annotations

from pathlib import Path

from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.native import THINKING
from adapters.slack.runner import REFUSAL
from bots.registry import get_bot
from core.conversation import INTERRUPTED, UNAVAILABLE
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_api import BOT_USER, TEAM, FakeSlack, assistant_thread_started, mention, message
from tests.test_slack_adapter import CHANNEL, MARKER, eventually, replies, slack_bot

DEFAULT_BOT = get_bot("default")
# The feedback buttons (a chat.update after the stream) are off here, so the streamed text is what the
# tests read; streams with buttons: tests/test_feedback_slack.py
NATIVE = {"SLACK_NATIVE_STREAMS": True, "SLACK_FEEDBACK_BUTTONS": False}
ANSWER = (
    "A **monad** is a [monoid](https://en.wikipedia.org/wiki/Monoid) in the category of endofunctors. " * 3
)


def stream_calls(slack: FakeSlack) -> dict[str, int]:
    return {
        m: len(slack.calls_of(f"chat.{m}")) for m in ("startStream", "appendStream", "stopStream", "update")
    }


async def test_a_thread_reply_streams_natively_with_the_status_line_first(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(Reply(text=ANSWER, chunk_size=12, delay=0.03, first_delay=0.3))
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> what is a monad?", ts="100.000001"))
        [reply] = await replies(slack, runner, CHANNEL, "100.000001")
        await eventually(lambda: slack.statuses(CHANNEL, "100.000001")[-1:] == [""])
    assert reply.text.strip() == ANSWER.strip(), "the markdown as the model wrote it"
    assert not reply.streaming and MARKER not in "".join(reply.versions)
    assert len(reply.versions) >= 3, "the reply grew in several appends"
    calls = stream_calls(slack)
    assert calls["startStream"] == 1 and calls["appendStream"] >= 1 and calls["stopStream"] == 1
    assert calls["update"] == 0 and not slack.calls_of("chat.postMessage")
    start = slack.calls_of("chat.startStream")[0]
    assert start.params["recipient_user_id"] == "U0ALICE" and start.params["recipient_team_id"] == TEAM
    assert slack.statuses(CHANNEL, "100.000001") == [THINKING, ""], "shown while thinking, then cleared"
    first_status = slack.calls_of("assistant.threads.setStatus")[0]
    assert first_status.at < start.at


async def test_model_text_in_a_stream_never_becomes_a_mention(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(Reply(text="Hey <!channel> and <@U0BOB>, 1 < 2 & 3 > 2", chunk_size=5, delay=0.03))
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> ping everyone", ts="100.000001"))
        [reply] = await replies(slack, runner, CHANNEL, "100.000001")
    assert reply.text == "Hey &lt;!channel&gt; and &lt;@U0BOB&gt;, 1 &lt; 2 &amp; 3 &gt; 2"
    assert slack.calls_of("chat.startStream")


async def test_a_refused_stream_falls_back_to_updates_and_the_workspace_is_remembered(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(
        Reply(text=ANSWER, chunk_size=12, delay=0.03),
        Reply(text="second " + ANSWER, chunk_size=12, delay=0.03),
    )
    slack.refuse("chat.startStream", "unknown_method")
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> what is a monad?", ts="100.000001"))
        [first] = await replies(slack, runner, CHANNEL, "100.000001")
        await slack.post_event(mention(f"<@{BOT_USER}> again", ts="100.000005"))
        [second] = await replies(slack, runner, CHANNEL, "100.000005")
    assert first.text == to_mrkdwn(ANSWER) and second.text == to_mrkdwn("second " + ANSWER)
    assert len(slack.calls_of("chat.startStream")) == 1, "refused once, not asked again"
    assert len(slack.calls_of("chat.update")) >= 2


async def test_a_stream_refused_mid_reply_goes_on_by_update_without_losing_or_repeating_text(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(Reply(text=ANSWER, chunk_size=8, delay=0.04))
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> what is a monad?", ts="100.000001"))
        await eventually(lambda: len(slack.calls_of("chat.appendStream")) >= 1)
        slack.refuse("chat.appendStream", "not_allowed")
        [reply] = await replies(slack, runner, CHANNEL, "100.000001")
        await slack.post_event(mention(f"<@{BOT_USER}> next", ts="100.000005"))
        [following] = await replies(slack, runner, CHANNEL, "100.000005")
    assert reply.text == to_mrkdwn(ANSWER), "one message with the whole text, once"
    assert following.text == "You said: next", "and the next message is answered"
    assert slack.calls_of("chat.update"), "finished by chat.update on the streamed message"
    assert any(c.error == "not_allowed" for c in slack.calls_of("chat.appendStream")), "refused mid-reply"


async def test_an_expired_stream_goes_on_by_update_and_the_next_reply_streams_again(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(Reply(text=ANSWER, chunk_size=8, delay=0.04), Reply(text="next", first_delay=0.1))
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> what is a monad?", ts="100.000001"))
        await eventually(lambda: len(slack.calls_of("chat.appendStream")) >= 1)
        # a stream lives about five minutes; Slack then answers this to appends and stops
        slack.refuse("chat.appendStream", "message_not_in_streaming_state", times=1)
        [reply] = await replies(slack, runner, CHANNEL, "100.000001")
        await slack.post_event(mention(f"<@{BOT_USER}> next", ts="100.000005"))
        [following] = await replies(slack, runner, CHANNEL, "100.000005")
    assert reply.text == to_mrkdwn(ANSWER), "finished whole by chat.update"
    assert following.text == "next"
    assert len(slack.calls_of("chat.startStream")) == 2, "one expired stream is no refusal"


async def test_a_long_streamed_reply_arrives_whole_across_messages(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    long = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 12 for i in range(30))
    fake_model.queue(Reply(text=long, chunk_size=300, delay=0.03))
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> a lot please", ts="100.000001"))
        shown = await replies(slack, runner, CHANNEL, "100.000001", 3)
    assert all(len(m.text) <= 4000 and not m.streaming for m in shown)
    assert "".join(m.text for m in shown).replace("\n", "").replace(" ", "") == long.replace(
        "\n", ""
    ).replace(" ", "")
    assert len(slack.calls_of("chat.startStream")) >= 2, "each message its own stream"


async def test_a_429_on_the_native_stream_is_waited_out_and_nothing_is_lost(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(Reply(text=ANSWER, chunk_size=8, delay=0.03))
    slack.rate_limit("chat.appendStream", times=2, retry_after=1)
    slack.rate_limit("chat.stopStream", times=1, retry_after=1)
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> what is a monad?", ts="100.000001"))
        [reply] = await replies(slack, runner, CHANNEL, "100.000001")
        await eventually(lambda: not reply.streaming)
    assert reply.text == ANSWER
    assert len(slack.rate_limited()) == 3
    assert not slack.calls_of("chat.update"), "a rate limit is no reason to leave the native path"


async def test_a_refused_status_line_is_not_asked_again_and_shows_no_error(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(Reply(text="one", first_delay=0.2), Reply(text="two", first_delay=0.2))
    slack.refuse("assistant.threads.setStatus", "missing_scope")
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> first", ts="100.000001"))
        [first] = await replies(slack, runner, CHANNEL, "100.000001")
        await slack.post_event(mention(f"<@{BOT_USER}> second", ts="100.000005"))
        [second] = await replies(slack, runner, CHANNEL, "100.000005")
    assert (first.text, second.text) == ("one", "two")
    assert len(slack.calls_of("assistant.threads.setStatus")) == 1


async def test_a_model_failure_mid_stream_leaves_a_clean_message_and_the_next_one_works(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(Reply(text="a partial answer that breaks off", chunk_size=6, delay=0.05, fail_after=3))
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> tell me", ts="100.000001"))
        [cut] = await replies(slack, runner, CHANNEL, "100.000001")
        await eventually(lambda: not cut.streaming)
        await slack.post_event(
            message(f"<@{BOT_USER}> are you there?", ts="100.000009", thread_ts="100.000001")
        )
        cut, answered = await replies(slack, runner, CHANNEL, "100.000001", 2)
    assert cut.text.startswith("a partial") and cut.text.rstrip().endswith(INTERRUPTED.strip())
    assert MARKER not in cut.text and not cut.streaming
    assert answered.text == "You said: are you there?"
    assert slack.statuses(CHANNEL, "100.000001")[-1] == ""


async def test_a_model_failure_before_any_text_clears_the_status_and_says_so(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(Reply(status=500, first_delay=0.2), "fine now")
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(mention(f"<@{BOT_USER}> hello", ts="100.000001"))
        [failed] = await replies(slack, runner, CHANNEL, "100.000001")
        await slack.post_event(message(f"<@{BOT_USER}> again", ts="100.000009", thread_ts="100.000001"))
        _, answered = await replies(slack, runner, CHANNEL, "100.000001", 2)
    assert failed.text == to_mrkdwn(UNAVAILABLE)
    assert answered.text == "fine now"
    statuses = slack.statuses(CHANNEL, "100.000001")
    assert statuses[:2] == [THINKING, ""] and statuses[-1] == "", "cleared, then shown and cleared again"


async def test_a_fixed_notice_gets_no_status_line_and_no_stream(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    # a refusal (the asker is not on the allowlist) is a fixed notice; files no longer are (docs/media.md)
    in_thread = mention(f"<@{BOT_USER}> look at this", ts="1200.000002")
    async with slack_bot(fake_model, slack, db_path, SLACK_ALLOWED_USERS="U0CAROL", **NATIVE) as (runner, _e):
        await slack.post_event(in_thread)
        [notice] = await replies(slack, runner, CHANNEL, "1200.000002")
    assert notice.text == to_mrkdwn(REFUSAL)
    assert not slack.calls_of("assistant.threads.setStatus") and not slack.calls_of("chat.startStream")


async def test_an_assistant_thread_is_greeted_offered_prompts_and_titled_after_its_first_question(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    dm, root = "D0ALICE", "200.000001"
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(assistant_thread_started(channel=dm, thread_ts=root))
        [greeting] = await replies(slack, runner, dm, root)
        await eventually(lambda: bool(slack.calls_of("assistant.threads.setSuggestedPrompts")))
        question = "How do I reset my password when the email never arrives?\nI tried twice."
        await slack.post_event(
            message(question, channel=dm, channel_type="im", ts="200.000002", thread_ts=root)
        )
        _, answer = await replies(slack, runner, dm, root, 2)
        await eventually(lambda: bool(slack.calls_of("assistant.threads.setTitle")))
        await slack.post_event(
            message("and then?", channel=dm, channel_type="im", ts="200.000003", thread_ts=root)
        )
        await replies(slack, runner, dm, root, 3)
    assert greeting.text == to_mrkdwn(DEFAULT_BOT.greeting)
    assert slack.statuses(dm, root) == [THINKING, "", THINKING, ""], (
        "for each question, none for the greeting"
    )
    [prompts] = slack.calls_of("assistant.threads.setSuggestedPrompts")
    assert prompts.params["thread_ts"] == root
    assert [p["message"] for p in prompts.params["prompts"]] == list(DEFAULT_BOT.suggested_prompts)
    [title] = slack.calls_of("assistant.threads.setTitle")
    assert title.params["title"] == "How do I reset my password when the email never arrives?"
    assert answer.text == "You said: " + question, "answered in the thread, natively streamed"
    assert slack.calls_of("chat.startStream")


async def test_a_refused_title_or_prompt_list_leaves_the_thread_working(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    dm, root = "D0ALICE", "200.000001"
    slack.refuse("assistant.threads.setSuggestedPrompts", "missing_scope")
    slack.refuse("assistant.threads.setTitle", "missing_scope")
    async with slack_bot(fake_model, slack, db_path, **NATIVE) as (runner, _engine):
        await slack.post_event(assistant_thread_started(channel=dm, thread_ts=root))
        await replies(slack, runner, dm, root)
        await slack.post_event(
            message("hello", channel=dm, channel_type="im", ts="200.000002", thread_ts=root)
        )
        _, answer = await replies(slack, runner, dm, root, 2)
    assert answer.text == "You said: hello"
