"""👍 / 👎 on Discord, end to end: the real discord.py client against the fake Discord (REST and gateway)
and the fake model; clicks as component interactions (type 3) through the gateway, answered through the
interaction callback endpoint; votes read back from the store."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adapters.discord.runner import DiscordRunner
from adapters.feedback import ACKS, DOWN_ACK, VoteResult
from core.store import DOWNVOTE_PHRASE
from tests.fakes.discord_api import ALICE_ID, BOB_ID, DM_ID, GENERAL_ID, FakeDiscord, Posted
from tests.fakes.openai_server import FakeOpenAI
from tests.support.feedback import stats_row, votes_of
from tests.test_discord_adapter import discord_bot

ANSWER = "Open Settings, then Members, and press Invite."


async def last_reply(fake: FakeDiscord, runner: DiscordRunner, channel_id: int, count: int = 1) -> Posted:
    """The bot's last message in the channel once every reply (and its buttons) is done. The buttons share
    the channel's pace (5 changes per 5 s), so they may wait for it."""
    await fake.wait_for_reply(channel_id, count)
    await fake.wait_until(lambda: runner.dispatcher.pending == 0, within=15.0, what="the reply's last step")
    return fake.bot_messages(channel_id)[-1]


def ephemeral_answers(fake: FakeDiscord, token: str) -> list[str]:
    return [
        body["data"]["content"]
        for body in fake.interaction_responses.get(token, [])
        if body.get("type") == 4 and body["data"].get("flags", 0) & 64
    ]


async def test_a_final_reply_carries_buttons_and_a_thumbs_up_is_stored_and_removes_them(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path, tmp_path: Path
) -> None:
    fake_model.queue(ANSWER)
    async with discord_bot(fake_model, fake_discord, db_path, DISCORD_FEEDBACK_BUTTONS=True) as (
        engine,
        runner,
    ):
        await fake_discord.user_says("how do I invite?", channel_id=DM_ID)
        reply = await last_reply(fake_discord, runner, DM_ID)
        up, down = fake_discord.buttons(reply)
        assert up.endswith(":up") and down.endswith(":down") and len(up) <= 100
        labels = [b["label"] for b in reply.payload["components"][0]["components"]]
        assert labels == ["👍", "👎"]
        assert reply.text == ANSWER

        token = await fake_discord.click(reply, up)
        await fake_discord.wait_until(lambda: fake_discord.buttons(reply) == [], what="buttons removed")
        assert ephemeral_answers(fake_discord, token) == [ACKS[VoteResult.COUNTED]]
        assert reply.text == ANSWER  # the text stayed
        assert await votes_of(engine) == [("default", "discord", 1, 0)]
    assert await stats_row("discord", tmp_path, {"CHATBOT_DB": str(db_path)}) == ["1", "0", "1", "100%"]


async def test_a_thumbs_down_lands_in_review_and_someone_elses_click_counts_nothing(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    fake_model.queue("You cannot invite anyone.")
    async with discord_bot(fake_model, fake_discord, db_path, DISCORD_FEEDBACK_BUTTONS=True) as (
        engine,
        runner,
    ):
        await fake_discord.user_says(
            "how do I invite?", channel_id=GENERAL_ID, mention_bot=True, author_id=ALICE_ID
        )
        reply = await last_reply(fake_discord, runner, GENERAL_ID)
        _up, down = fake_discord.buttons(reply)

        bobs = await fake_discord.click(reply, down, author_id=BOB_ID)
        await fake_discord.wait_until(
            lambda: bool(ephemeral_answers(fake_discord, bobs)), what="Bob's notice"
        )
        assert ephemeral_answers(fake_discord, bobs) == [ACKS[VoteResult.NOT_ASKER]]
        assert fake_discord.buttons(reply) == [_up, down], "the buttons stay for the asker"
        assert await votes_of(engine) == []

        alices = await fake_discord.click(reply, down, author_id=ALICE_ID)
        await fake_discord.wait_until(lambda: fake_discord.buttons(reply) == [], what="buttons removed")
        assert ephemeral_answers(fake_discord, alices) == [DOWN_ACK]
        [flag] = await engine.store.review.flags()  # type: ignore[attr-defined]
        assert (flag.phrase, flag.platform, flag.user_text) == (
            DOWNVOTE_PHRASE,
            "discord",
            "how do I invite?",
        )
        assert await votes_of(engine) == [("default", "discord", 0, 1)]


async def test_a_second_click_and_a_click_on_a_forgotten_turn_get_polite_notices(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    fake_model.queue(ANSWER, "Second.")
    async with discord_bot(fake_model, fake_discord, db_path, DISCORD_FEEDBACK_BUTTONS=True) as (
        engine,
        runner,
    ):
        await fake_discord.user_says("how do I invite?", channel_id=DM_ID)
        first = await last_reply(fake_discord, runner, DM_ID)
        up = fake_discord.buttons(first)[0]
        one = await fake_discord.click(first, up)
        two = await fake_discord.click(first, up)  # the same button again, before it went
        await fake_discord.wait_until(
            lambda: bool(ephemeral_answers(fake_discord, one) and ephemeral_answers(fake_discord, two)),
            what="both answered",
        )
        assert sorted(ephemeral_answers(fake_discord, one) + ephemeral_answers(fake_discord, two)) == sorted(
            [ACKS[VoteResult.COUNTED], ACKS[VoteResult.REPEATED]]
        )
        assert await votes_of(engine) == [("default", "discord", 1, 0)]

        await fake_discord.user_says("and then?", channel_id=DM_ID)
        second = await last_reply(fake_discord, runner, DM_ID, 2)
        await engine.store.forget_user(f"discord:{ALICE_ID}")
        gone = await fake_discord.click(second, fake_discord.buttons(second)[1])
        await fake_discord.wait_until(lambda: fake_discord.buttons(second) == [], what="buttons removed")
        assert ephemeral_answers(fake_discord, gone) == [ACKS[VoteResult.GONE]]
        assert await engine.store.review.flags() == []  # type: ignore[attr-defined]


async def test_a_refused_component_edit_leaves_the_reply_intact(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_model.queue(ANSWER)
    async with discord_bot(fake_model, fake_discord, db_path, DISCORD_FEEDBACK_BUTTONS=True) as (
        _engine,
        runner,
    ):
        fake_discord.refuse_components = 1
        with caplog.at_level(logging.WARNING, logger="adapters.feedback"):
            await fake_discord.user_says("how do I invite?", channel_id=DM_ID)
            reply = await last_reply(fake_discord, runner, DM_ID)
        await fake_discord.user_says("and then?", channel_id=DM_ID)
        following = await last_reply(fake_discord, runner, DM_ID, 2)
        assert reply.text == ANSWER and fake_discord.buttons(reply) == []
        assert following.text == "You said: and then?" and len(fake_discord.buttons(following)) == 2
        assert "could not add the feedback buttons" in caplog.text
