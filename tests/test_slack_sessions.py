"""The Slack adapter's pure parts against literal event payloads (sessions, decisions, text, mrkdwn), and its
error translation on the errors slack_sdk raises for the fake Slack's refusals."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.sessions import (
    Action,
    Recent,
    allowed,
    decide,
    dedup_keys,
    place_for,
    prompt_text,
    team_of,
)
from adapters.slack.target import render, translate
from core.errors import MessageTooLong, PlatformError, RateLimited
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack

BOT = "U0BOT"

CHANNEL_MENTION = {
    "type": "app_mention",
    "user": "U0ALICE",
    "text": "<@U0BOT> what is a monad?",
    "ts": "1712345678.000100",
    "channel": "C0GENERAL",
    "event_ts": "1712345678.000100",
    "team": "T0TEAM",
}
THREAD_REPLY = {
    "type": "message",
    "user": "U0ALICE",
    "text": "and a functor?",
    "ts": "1712345690.000200",
    "thread_ts": "1712345678.000100",
    "channel": "C0GENERAL",
    "channel_type": "channel",
}
DM = {
    "type": "message",
    "user": "U0ALICE",
    "text": "hello",
    "ts": "1712345700.000300",
    "channel": "D0ALICE",
    "channel_type": "im",
}


def test_a_channel_mention_is_its_own_thread() -> None:
    place = place_for("T0TEAM", CHANNEL_MENTION)
    assert place.session_id == "slack:T0TEAM:C0GENERAL:1712345678.000100"
    assert place.thread_ts == "1712345678.000100"
    assert place.channel == "C0GENERAL"


def test_a_thread_reply_joins_the_thread_of_its_root() -> None:
    assert place_for("T0TEAM", THREAD_REPLY) == place_for("T0TEAM", CHANNEL_MENTION)


def test_dms_are_one_session_per_channel_unless_threaded() -> None:
    place = place_for("T0TEAM", DM)
    assert place.session_id == "slack:T0TEAM:D0ALICE"
    assert place.thread_ts is None
    threaded = place_for("T0TEAM", {**DM, "thread_ts": "1712345000.000001"})
    assert threaded.session_id == "slack:T0TEAM:D0ALICE:1712345000.000001"
    assert threaded.thread_ts == "1712345000.000001"


def test_workspaces_do_not_share_sessions() -> None:
    assert place_for("T1", CHANNEL_MENTION).session_id != place_for("T2", CHANNEL_MENTION).session_id
    assert team_of({"team_id": "T1"}, {"team": "T2"}) == "T1"
    assert team_of({}, {"team": "T2"}) == "T2"


@pytest.mark.parametrize(
    ("event_type", "event", "action"),
    [
        ("app_mention", CHANNEL_MENTION, Action.ANSWER),
        ("message", DM, Action.ANSWER),
        # the same mention delivered as a channel message: answered too (deduplicated by channel + ts)
        ("message", {**CHANNEL_MENTION, "type": "message", "channel_type": "channel"}, Action.ANSWER),
        ("message", THREAD_REPLY, Action.FOLLOWUP),
        ("message", {**THREAD_REPLY, "text": "<@U0BOB> what do you think?"}, Action.IGNORE),
        ("message", {**THREAD_REPLY, "thread_ts": None}, Action.IGNORE),  # plain channel chatter
        ("message", {**THREAD_REPLY, "ts": THREAD_REPLY["thread_ts"]}, Action.IGNORE),  # a thread root
        ("message", {**DM, "user": BOT, "bot_id": "B0BOT"}, Action.IGNORE),  # its own message
        ("message", {**DM, "user": BOT}, Action.IGNORE),
        ("message", {**DM, "bot_id": "B0OTHER", "user": "U0OTHERBOT"}, Action.IGNORE),  # another bot
        ("message", {**DM, "subtype": "bot_message", "user": None}, Action.IGNORE),
        (
            "message",
            {
                "type": "message",
                "subtype": "message_changed",
                "channel": "D0ALICE",
                "channel_type": "im",
                "hidden": True,
                "message": {"user": BOT, "text": "edited", "ts": "1.1"},
                "ts": "1712345800.000900",
            },
            Action.IGNORE,
        ),
        ("message", {**DM, "subtype": "message_deleted"}, Action.IGNORE),
        ("message", {**THREAD_REPLY, "subtype": "channel_join"}, Action.IGNORE),
        ("message", {**DM, "subtype": "file_share", "files": [{"id": "F1"}]}, Action.ANSWER),
        ("app_mention", {**CHANNEL_MENTION, "files": [{"id": "F1"}]}, Action.ANSWER),
        ("message", {**THREAD_REPLY, "subtype": "thread_broadcast"}, Action.FOLLOWUP),
    ],
)
def test_decide(event_type: str, event: dict[str, Any], action: Action) -> None:
    assert decide(event_type, event, BOT) is action


def test_prompt_text_strips_the_mention_and_slack_escaping() -> None:
    assert prompt_text(CHANNEL_MENTION, BOT) == "what is a monad?"
    assert (
        prompt_text({"text": "<@U0BOT|chatbot>  is 1 &lt; 2 &amp;&amp; 3 &gt; 2?"}, BOT)
        == "is 1 < 2 && 3 > 2?"
    )
    assert prompt_text({"text": "ask <@U0BOB> too"}, BOT) == "ask <@U0BOB> too"
    assert prompt_text({"text": "<@U0BOT> /reset"}, BOT) == "/reset"
    ours = frozenset({"reset", "help"})
    assert prompt_text({"text": "!reset please"}, BOT, ours) == "/reset please"
    assert prompt_text({"text": "!RESET"}, BOT, ours) == "/reset"
    assert prompt_text({"text": "!weather now"}, BOT, ours) == "!weather now"  # not one of the engine's
    assert prompt_text({"text": "<@U0BOT>"}, BOT) == ""


def test_allowlists() -> None:
    nobody: frozenset[str] = frozenset()
    assert allowed(CHANNEL_MENTION, nobody, nobody)
    assert allowed(CHANNEL_MENTION, frozenset({"C0GENERAL"}), nobody)
    assert not allowed(CHANNEL_MENTION, frozenset({"C0OTHER"}), nobody)
    assert allowed(DM, frozenset({"C0OTHER"}), nobody)  # DMs are governed by the user list
    assert allowed(DM, nobody, frozenset({"U0ALICE"}))
    assert not allowed(DM, nobody, frozenset({"U0BOB"}))


def test_dedup_keys_match_a_redelivery_and_the_double_delivery() -> None:
    first = dedup_keys({"event_id": "Ev1"}, CHANNEL_MENTION)
    as_message = dedup_keys({"event_id": "Ev2"}, {**CHANNEL_MENTION, "type": "message"})
    assert first[0] == "event:Ev1" and as_message[0] == "event:Ev2"
    assert first[1] == as_message[1] == "msg:C0GENERAL:1712345678.000100"
    assert dedup_keys({}, DM)[0] is None


def test_recent_is_bounded_and_checks_and_marks_at_once() -> None:
    recent = Recent(size=3)
    assert recent.first_time("a")
    assert not recent.first_time("a")
    for key in "bcd":
        recent.add(key)
    assert "a" not in recent and len(recent) == 3


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __strong__", "*bold* and *strong*"),
        ("*italic* and _also_", "_italic_ and _also_"),
        ("~~gone~~", "~gone~"),
        ("see [the docs](https://x.io/a?b=1&c=2)", "see <https://x.io/a?b=1&amp;c=2|the docs>"),
        ("![chart](https://x.io/c.png)", "<https://x.io/c.png|chart>"),
        ("## Results **now**", "*Results now*"),
        ("- one\n* two\n  + three", "• one\n• two\n  • three"),
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("> quoted", "> quoted"),
        ("use `**raw**` here", "use `**raw**` here"),
        ("```python\nx = a**2 < 3\n```\n**after**", "```\nx = a**2 &lt; 3\n```\n*after*"),
        ("```\nnever closed **x**", "```\nnever closed **x**\n```"),
    ],
)
def test_markdown_to_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("[x](!channel)", "x"),
        ("[all of you](!here)", "all of you"),
        ("![everyone](!everyone)", "everyone"),
        ("[team](!subteam^S123)", "team"),
        ("[boss](@U123)", "boss"),
        ("[room](#C123)", "room"),
        ("[x](http://a|<!channel>)", "x"),
        (
            "say <!channel> and <@U1> and <#C1|general>",
            "say &lt;!channel&gt; and &lt;@U1&gt; and &lt;#C1|general&gt;",
        ),
        ("[mail](mailto:a@b.io)", "<mailto:a@b.io|mail>"),
    ],
)
def test_model_text_can_never_mention_a_channel_a_group_or_a_user(markdown: str, mrkdwn: str) -> None:
    rendered = to_mrkdwn(markdown)
    assert rendered == mrkdwn
    assert not any(mention in rendered for mention in ("<!", "<@", "<#"))


def test_previews_are_escaped_plain_text_and_the_final_text_is_mrkdwn() -> None:
    assert render("**a** < b ▌", final=False) == "**a** &lt; b ▌"
    assert render("**a** < b", final=True) == "*a* &lt; b"


async def _api_error(call: Awaitable[Any]) -> SlackApiError:
    """The error slack_sdk raises for a call the fake Slack refuses."""
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


async def test_slack_errors_become_core_errors() -> None:
    slack = FakeSlack()
    await slack.start()
    try:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.base_url)
        slack.rate_limit("chat.update", retry_after=7)
        limited = translate(
            "chat.update", await _api_error(client.chat_update(channel="C0GENERAL", ts="1.000001", text="x"))
        )
        too_long = translate(
            "chat.update",
            await _api_error(client.chat_update(channel="C0GENERAL", ts="1.000001", text="x" * 40_001)),
        )
        other = translate(
            "chat.update", await _api_error(client.chat_update(channel="C0GENERAL", ts="1.000001", text="x"))
        )
    finally:
        await slack.stop()
    assert isinstance(limited, RateLimited) and limited.retry_after == 7
    assert isinstance(too_long, MessageTooLong)
    assert type(other) is PlatformError and "message_not_found" in str(other)
