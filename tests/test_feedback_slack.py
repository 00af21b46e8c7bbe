"""👍 / 👎 on Slack, end to end: real slack_bolt / slack_sdk against the fake Slack and the fake model; clicks
as signed ``block_actions`` requests (or over Socket Mode), votes read back from the store and ``chatbot
stats`` / ``chatbot review``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from adapters.feedback import ACKS, DOWN_ACK, VoteResult
from adapters.slack import SlackRunner
from core.store import DOWNVOTE_PHRASE
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_api import BOT_USER, FakeSlack, Message, mention
from tests.support.feedback import stats_row, votes_of
from tests.test_slack_adapter import CHANNEL, eventually, replies, slack_bot

ANSWER = "Open *Settings*, then Members, and press Invite."


def feedback_block(posted: Message) -> dict[str, Any] | None:
    return next((b for b in posted.blocks or [] if b["type"] in ("context_actions", "actions")), None)


def section_text(posted: Message) -> str:
    return "\n".join(b["text"]["text"] for b in posted.blocks or [] if b["type"] == "section")


async def finished(slack: FakeSlack, runner: SlackRunner, ts: str) -> Message:
    """The reply in the thread of ``ts`` once its buttons (if any) had their chance to land."""
    [reply] = await replies(slack, runner, CHANNEL, ts)
    await eventually(lambda: runner.dispatcher.pending == 0)
    return reply


async def test_a_final_reply_carries_slacks_feedback_buttons_and_a_thumbs_up_is_stored(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(ANSWER)
    async with slack_bot(fake_model, slack, db_path) as (runner, engine):
        await slack.post_event(mention(f"<@{BOT_USER}> how do I invite?", ts="2000.000001"))
        reply = await finished(slack, runner, "2000.000001")
        block = feedback_block(reply)
        assert block is not None and block["type"] == "context_actions"
        [element] = block["elements"]
        assert element["type"] == "feedback_buttons"
        assert (element["positive_button"]["text"]["text"], element["negative_button"]["text"]["text"]) == (
            "👍",
            "👎",
        )
        shown = reply.text
        assert section_text(reply) == shown == "Open _Settings_, then Members, and press Invite."

        status, _ = await slack.post_interaction(slack.block_action(reply, slack.clicked(reply, True)))
        assert status == 200
        await eventually(lambda: len(slack.ephemeral) == 1 and feedback_block(reply) is None)
        assert slack.ephemeral[0]["user"] == "U0ALICE"
        assert slack.ephemeral[0]["text"] == ACKS[VoteResult.COUNTED]
        assert slack.ephemeral[0]["thread_ts"] == "2000.000001"
        assert section_text(reply) == reply.text == shown  # buttons gone, text intact
        assert await votes_of(engine) == [("default", "slack", 1, 0)]
    assert await stats_row("slack", tmp_path, {"CHATBOT_DB": str(db_path)}) == ["1", "0", "1", "100%"]


async def test_plain_buttons_where_the_feedback_element_is_refused_and_a_thumbs_down_is_flagged(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    slack.refused_blocks = {"context_actions"}
    fake_model.queue("You cannot invite anyone.")
    async with slack_bot(fake_model, slack, db_path) as (runner, engine):
        await slack.post_event(mention(f"<@{BOT_USER}> how do I invite?", ts="2100.000001"))
        reply = await finished(slack, runner, "2100.000001")
        block = feedback_block(reply)
        assert block is not None and block["type"] == "actions"
        assert [e["text"]["text"] for e in block["elements"]] == ["👍", "👎"]
        await slack.post_interaction(slack.block_action(reply, slack.clicked(reply, False)))
        await eventually(lambda: len(slack.ephemeral) == 1 and feedback_block(reply) is None)
        assert slack.ephemeral[0]["text"] == DOWN_ACK
        [flag] = await engine.store.review.flags()  # type: ignore[attr-defined]
        assert (flag.phrase, flag.platform, flag.user_id) == (DOWNVOTE_PHRASE, "slack", "slack:U0ALICE")
        assert flag.user_text == "how do I invite?"


async def test_someone_elses_click_gets_a_private_notice_and_counts_nothing(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(ANSWER)
    async with slack_bot(fake_model, slack, db_path) as (runner, engine):
        await slack.post_event(mention(f"<@{BOT_USER}> how do I invite?", ts="2200.000001"))
        reply = await finished(slack, runner, "2200.000001")
        await slack.post_interaction(slack.block_action(reply, slack.clicked(reply, True), user="U0BOB"))
        await eventually(lambda: len(slack.ephemeral) == 1 and runner.dispatcher.pending == 0)
        assert (slack.ephemeral[0]["user"], slack.ephemeral[0]["text"]) == (
            "U0BOB",
            ACKS[VoteResult.NOT_ASKER],
        )
        assert feedback_block(reply) is not None, "the buttons stay for the asker"
        assert await votes_of(engine) == []


async def test_a_forged_click_is_refused_before_it_counts(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(ANSWER)
    async with slack_bot(fake_model, slack, db_path) as (runner, engine):
        await slack.post_event(mention(f"<@{BOT_USER}> how do I invite?", ts="2300.000001"))
        reply = await finished(slack, runner, "2300.000001")
        body = urlencode({"payload": json.dumps(slack.block_action(reply, slack.clicked(reply, False)))})
        status, _ = await slack.post_body(
            body.encode(), content_type="application/x-www-form-urlencoded", secret="not-the-secret"
        )
        assert status == 401
        assert await votes_of(engine) == [] and slack.ephemeral == []
        assert feedback_block(reply) is not None


async def test_clicks_over_socket_mode(fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path) -> None:
    fake_model.queue(ANSWER)
    async with slack_bot(fake_model, slack, db_path, socket_mode=True) as (runner, engine):
        await eventually(lambda: slack.socket_connected)
        await slack.push_event(mention(f"<@{BOT_USER}> how do I invite?", ts="2400.000001"))
        reply = await finished(slack, runner, "2400.000001")
        envelope = await slack.push_interaction(slack.block_action(reply, slack.clicked(reply, True)))
        await eventually(lambda: len(slack.ephemeral) == 1 and feedback_block(reply) is None)
        await eventually(lambda: any(ack.get("envelope_id") == envelope for ack in slack.acks))
        assert await votes_of(engine) == [("default", "slack", 1, 0)]


async def test_a_refused_button_update_leaves_the_reply_text_intact(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    slack.refused_blocks = {"context_actions", "actions"}
    fake_model.queue(ANSWER)
    async with slack_bot(fake_model, slack, db_path) as (runner, _engine):
        with caplog.at_level(logging.WARNING, logger="adapters.feedback"):
            await slack.post_event(mention(f"<@{BOT_USER}> how do I invite?", ts="2500.000001"))
            reply = await finished(slack, runner, "2500.000001")
        await slack.post_event(mention(f"<@{BOT_USER}> and then?", ts="2500.000002"))
        following = await finished(slack, runner, "2500.000002")
        assert reply.text == "Open _Settings_, then Members, and press Invite." and reply.blocks is None
        assert following.text == "You said: and then?", "the next message is answered"
        assert "could not add the feedback buttons: slack chat.update: invalid_blocks" in caplog.text


async def test_a_natively_streamed_reply_gets_the_buttons_and_keeps_its_text(
    fake_model: FakeOpenAI, slack: FakeSlack, db_path: Path
) -> None:
    fake_model.queue(ANSWER)
    async with slack_bot(fake_model, slack, db_path, SLACK_NATIVE_STREAMS=True) as (runner, engine):
        await slack.post_event(mention(f"<@{BOT_USER}> how do I invite?", ts="2100.000001"))
        reply = await finished(slack, runner, "2100.000001")
        assert slack.calls_of("chat.startStream") and slack.calls_of("chat.stopStream")
        await eventually(lambda: feedback_block(reply) is not None)
        assert section_text(reply) == reply.text == "Open _Settings_, then Members, and press Invite."
        status, _ = await slack.post_interaction(slack.block_action(reply, slack.clicked(reply, False)))
        assert status == 200
        await eventually(lambda: feedback_block(reply) is None)
        assert reply.text == "Open _Settings_, then Members, and press Invite."
        assert await votes_of(engine) == [("default", "slack", 0, 1)]
