"""Photos, voice messages and documents on Discord: discord.py reads attachment URLs from the fake's CDN,
the engine asks the fake model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from adapters.discord import DiscordRunner
from bots.app import open_engine, running_platforms
from features.media.reader import SUPPORTED
from tests.fakes.discord_api import DM_ID, GENERAL_ID, FakeDiscord
from tests.fakes.discord_files import IS_VOICE_MESSAGE
from tests.fakes.model_images import image_parts, image_size, text_of
from tests.fakes.openai_server import FakeOpenAI
from tests.support.media_files import VOICE, corrupt_image_bytes, image_bytes, pdf_bytes
from tests.test_discord_adapter import discord_settings

TOKEN = "discord-test-token-0123456789"


@asynccontextmanager
async def discord_bot(
    fake_model: FakeOpenAI, fake: FakeDiscord, db_path: Path, **overrides: Any
) -> AsyncIterator[DiscordRunner]:
    settings = discord_settings(fake_model, fake, db_path, **overrides)
    async with open_engine(settings) as engine, running_platforms(settings, engine, ["discord"]) as runners:
        runner = runners[0]
        assert isinstance(runner, DiscordRunner)
        yield runner


def last_user_text(fake_model: FakeOpenAI) -> str:
    return text_of(fake_model.last_messages()[-1]["content"])


async def test_a_photo_with_a_caption_is_answered_by_a_request_that_holds_the_image(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    photo = fake_discord.cdn.attachment(image_bytes(800, 2400), "tall.png", "image/png", channel_id=DM_ID)
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("what is in this picture?", channel_id=DM_ID, files=[photo])
        [reply] = await fake_discord.wait_for_reply(DM_ID)
    parts = image_parts(fake_model.chat_requests[-1])
    assert len(parts) == 1 and image_size(parts[0]) == (683, 2048)
    assert reply.startswith("You said: what is in this picture?")


async def test_a_voice_message_is_transcribed_and_what_was_heard_is_quoted(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    fake_model.transcriptions.said[VOICE] = "what time is the standup"
    voice = fake_discord.cdn.voice_message(VOICE, 2.5, channel_id=DM_ID)
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("", channel_id=DM_ID, files=[voice], flags=IS_VOICE_MESSAGE)
        [reply] = await fake_discord.wait_for_reply(DM_ID)
    assert reply.startswith("🎙️ “what time is the standup”")
    assert last_user_text(fake_model) == "what time is the standup"


async def test_a_pdf_mentioning_the_bot_in_a_channel_reaches_the_model(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    pdf = fake_discord.cdn.attachment(pdf_bytes("Port 8443 is the admin port."), "ops.pdf", "application/pdf")
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("which port?", channel_id=GENERAL_ID, mention_bot=True, files=[pdf])
        await fake_discord.wait_for_reply(GENERAL_ID)
    sent = last_user_text(fake_model)
    assert "which port?" in sent and "Port 8443 is the admin port." in sent


async def test_an_unsupported_file_is_answered_naming_what_is_supported(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    binary = fake_discord.cdn.attachment(b"\x7fELF\x02\x01", "tool.exe", "application/octet-stream")
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("", channel_id=DM_ID, files=[binary])
        [reply] = await fake_discord.wait_for_reply(DM_ID)
    assert "tool.exe" in reply and "I can't read this kind of file" in reply
    assert SUPPORTED.split(" (")[0] in reply
    assert not fake_model.chat_requests


async def test_a_failed_download_and_a_corrupt_image_get_clear_answers_and_the_next_message_works(
    fake_model: FakeOpenAI, fake_discord: FakeDiscord, db_path: Path
) -> None:
    broken = fake_discord.cdn.attachment(corrupt_image_bytes(), "broken.jpg", "image/jpeg")
    async with discord_bot(fake_model, fake_discord, db_path):
        await fake_discord.user_says("", channel_id=DM_ID, files=[broken])
        [corrupt] = await fake_discord.wait_for_reply(DM_ID)
        fake_discord.cdn.status = 403
        gone = fake_discord.cdn.attachment(image_bytes(20, 20), "gone.png", "image/png")
        await fake_discord.user_says("look", channel_id=DM_ID, files=[gone])
        await fake_discord.wait_for_reply(DM_ID, count=2)
        await fake_discord.user_says("plain text now", channel_id=DM_ID)
        replies = await fake_discord.wait_for_reply(DM_ID, count=3)
    assert "broken.jpg: the image could not be read" in corrupt
    assert (
        "gone.png: Discord refused the download (HTTP 403)" in replies[1] and "You said: look" in replies[1]
    )
    assert replies[2] == "You said: plain text now"
