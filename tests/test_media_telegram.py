"""Photos, voice notes and documents on Telegram: the real python-telegram-bot fetching files through
getFile and the file endpoint of the fake Bot API, the engine asking the fake model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import adapters.telegram.runner as telegram_runner
from adapters.telegram import TelegramRunner, TelegramTuning
from bots.app import open_engine, running_platforms
from features.media.reader import SUPPORTED
from tests.fakes.model_images import image_parts, image_size, text_of
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram
from tests.support.engines import settings_for
from tests.support.media_files import VOICE, image_bytes, pdf_bytes

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

FAST = TelegramTuning(
    private_edit_interval=0.05, group_edit_interval=0.05, typing_interval=0.05, poll_timeout=1.0
)
CHAT = 1001
STICKER = {
    "file_id": "CAACAgIAAxkBAAEB",
    "file_unique_id": "AgADAQAD",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
}


@pytest.fixture(autouse=True)
def fast_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telegram_runner, "DEFAULT_TUNING", FAST)


@asynccontextmanager
async def running(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path, **overrides: Any
) -> AsyncIterator[TelegramRunner]:
    values = {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_BASE_URL": telegram.root, **overrides}
    config = settings_for(fake_model.base_url, db_path, **values)
    async with open_engine(config) as engine, running_platforms(config, engine, ["telegram"]) as runners:
        runner = runners[0]
        assert isinstance(runner, TelegramRunner)
        yield runner


async def reply_to(telegram: FakeTelegram, runner: TelegramRunner, extra: dict[str, Any]) -> str:
    """Send a private message with ``extra`` fields (a photo, a caption...); the bot's final answer."""
    before = len(telegram.bot_messages(CHAT))
    telegram.user_message(telegram.private_chat(CHAT), None, extra=extra)
    await telegram.wait_for(lambda: len(telegram.bot_messages(CHAT)) > before and runner.in_flight == 0)
    return "\n".join(telegram.texts(CHAT)[before:])


async def test_a_photo_with_a_caption_is_answered_by_a_request_that_holds_the_image(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    async with running(fake_model, telegram, db_path) as runner:
        photo = telegram.files.photo(image_bytes(1600, 1200), 1600, 1200)
        answer = await reply_to(telegram, runner, {"photo": photo, "caption": "What does this error mean?"})
    parts = image_parts(fake_model.chat_requests[-1])
    assert len(parts) == 1 and image_size(parts[0]) == (1024, 768)
    assert answer.startswith("You said: What does this error mean?")
    assert telegram.files.downloads == ["photos/file_2.jpg"]  # the biggest size, not the thumbnail


async def test_a_voice_note_is_transcribed_and_what_was_heard_is_quoted(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    fake_model.transcriptions.said[VOICE] = "how do I reset my password"
    async with running(fake_model, telegram, db_path) as runner:
        answer = await reply_to(telegram, runner, {"voice": telegram.files.voice(VOICE, 3)})
    assert answer.startswith("🎙️ “how do I reset my password”")
    assert text_of(fake_model.last_messages()[-1]["content"]) == "how do I reset my password"
    assert fake_model.transcriptions.requests[0]["filename"] == "file_3.oga" or (
        fake_model.transcriptions.requests[0]["filename"].endswith((".ogg", ".oga"))
    )


async def test_a_pdf_documents_text_reaches_the_model(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    async with running(fake_model, telegram, db_path) as runner:
        pdf = telegram.files.document(pdf_bytes("Refunds take 14 days."), "policy.pdf", "application/pdf")
        await reply_to(telegram, runner, {"document": pdf, "caption": "How long do refunds take?"})
    sent = text_of(fake_model.last_messages()[-1]["content"])
    assert "How long do refunds take?" in sent and "Refunds take 14 days." in sent


async def test_an_unsupported_file_and_a_sticker_are_answered_naming_what_is_supported(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    async with running(fake_model, telegram, db_path) as runner:
        archive = telegram.files.document(b"PK\x03\x04rest", "logs.zip", "application/zip")
        zipped = await reply_to(telegram, runner, {"document": archive})
        sticker = await reply_to(telegram, runner, {"sticker": STICKER})
    assert "logs.zip" in zipped and SUPPORTED in zipped
    assert "sticker" in sticker and SUPPORTED in sticker
    assert not fake_model.chat_requests


async def test_a_failed_download_and_a_file_telegram_will_not_hand_over_get_clear_answers(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    async with running(fake_model, telegram, db_path) as runner:
        telegram.files.download_status = 502
        photo = telegram.files.photo(image_bytes(64, 64), 64, 64)
        failed = await reply_to(telegram, runner, {"photo": photo, "caption": "see this?"})
        telegram.files.download_status = 200
        telegram.files.limit = 100  # getFile refuses files above the Bot API's download cap
        pdf = telegram.files.document(pdf_bytes("x" * 200), "big.pdf", "application/pdf")
        refused = await reply_to(telegram, runner, {"document": pdf})
        after = await reply_to(telegram, runner, {"text": "still there?"})
    assert "couldn't read the image photo.jpg: the download failed" in failed
    assert "You said: see this?" in failed  # the caption is still answered
    assert "big.pdf: Telegram lets bots download files up to 20 MB" in refused
    assert after == "You said: still there?"


async def test_a_photo_in_a_group_is_answered_when_its_caption_mentions_the_bot(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    group = telegram.group_chat(-100500)
    async with running(fake_model, telegram, db_path) as runner:
        caption = f"@{telegram.username} what is this?"
        extra = {
            "photo": telegram.files.photo(image_bytes(80, 60), 80, 60),
            "caption": caption,
            "caption_entities": telegram.entities(caption),
        }
        telegram.user_message(group, None, extra=extra)
        await telegram.wait_for(lambda: len(telegram.bot_messages(-100500)) == 1 and runner.in_flight == 0)
    assert telegram.texts(-100500)[0].startswith("You said: what is this?")
    assert len(image_parts(fake_model.chat_requests[-1])) == 1


async def test_an_album_of_photos_is_answered_once_with_every_photo_and_the_caption(
    fake_model: FakeOpenAI, telegram: FakeTelegram, db_path: Path
) -> None:
    chat = telegram.private_chat(CHAT)
    async with running(fake_model, telegram, db_path) as runner:
        first = {"media_group_id": "1357", "photo": telegram.files.photo(image_bytes(64, 48), 64, 48)}
        second = {
            "media_group_id": "1357",
            "photo": telegram.files.photo(image_bytes(48, 64), 48, 64),
            "caption": "which of these two is sharper?",
        }
        telegram.user_message(chat, None, extra=first)
        telegram.user_message(chat, None, extra=second)
        await telegram.wait_for(lambda: len(telegram.bot_messages(CHAT)) == 1 and runner.in_flight == 0)
        await reply_to(telegram, runner, {"text": "thanks"})
    assert len(fake_model.chat_requests) == 2  # the album, then "thanks"
    assert [image_size(p) for p in image_parts(fake_model.chat_requests[0])] == [(64, 48), (48, 64)]
    assert telegram.texts(CHAT)[0].startswith("You said: which of these two is sharper?")
