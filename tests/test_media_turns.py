"""Photos, voice notes and documents through the real engine, media feature, store and fake model server.

The files are handed to the engine as platform-neutral attachments whose bytes come from memory; the
platform tests (``test_media_<platform>.py``) fetch them over HTTP from each platform's fake.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from core.attachments import Attachment, AttachmentError, AttachmentKind
from core.image_tokens import image_tokens
from core.incoming import IncomingMessage
from core.store import ChatChoice
from features.media.reader import SUPPORTED
from tests.fakes.model_images import image_parts, image_size, text_of
from tests.fakes.openai_server import FakeOpenAI
from tests.support.engines import engine_for
from tests.support.media_files import (
    VOICE,
    corrupt_image_bytes,
    corrupt_pdf_bytes,
    image_bytes,
    large_image_bytes,
    pdf_bytes,
)

SESSION = "test:media"
USER = "test:42"


def served(name: str, mime: str, kind: AttachmentKind, data: bytes, **more: Any) -> Attachment:
    async def fetch(limit: int) -> bytes:
        if len(data) > limit:
            raise AttachmentError("too big")
        return data

    return Attachment(name=name, mime=mime, kind=kind, size=len(data), fetch=fetch, **more)


def photo(data: bytes, name: str = "photo.jpg") -> Attachment:
    return served(name, "image/jpeg", AttachmentKind.IMAGE, data)


def sent(text: str, *files: Attachment) -> IncomingMessage:
    return IncomingMessage(SESSION, text, user_id=USER, platform="test", attachments=files)


def stored(db_path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT role, content, complete FROM messages ORDER BY id").fetchall()


def statuses(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as db:
        return [row[0] for row in db.execute("SELECT status FROM turns ORDER BY id")]


def user_text(fake_model: FakeOpenAI) -> str:
    return text_of(fake_model.last_messages()[-1]["content"])


async def test_a_photo_with_a_caption_reaches_the_model_downscaled_and_later_turns_see_a_placeholder(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        reply = await engine.reply_text(
            sent("What is on this screenshot?", photo(large_image_bytes(4000, 3000)))
        )
        request = fake_model.chat_requests[-1]
        parts = image_parts(request)
        assert len(parts) == 1 and parts[0]["image_url"]["detail"] == "auto"
        assert image_size(parts[0]) == (1024, 768)  # fit in 2048x2048, then shortest side 768
        assert "What is on this screenshot?" in user_text(fake_model)
        assert reply.startswith("You said: What is on this screenshot?")
        await engine.reply_text(sent("And what colour was it?"))
    assert not image_parts(fake_model.chat_requests[-1])  # the bytes went with their turn only
    history = [text_of(m["content"]) for m in fake_model.last_messages()]
    assert "What is on this screenshot?\n\n[photo: photo.jpg, 4000x3000]" in history
    assert stored(db_path)[0] == ("user", "What is on this screenshot?\n\n[photo: photo.jpg, 4000x3000]", 1)


async def test_an_images_tokens_count_in_the_prompt_budget(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(sent("first"))
        text_only = engine.prompts
        prompt_plain = await text_only.build(SESSION, 10**9, "hi", 5, "", harder=False)
        await engine.reply_text(sent("look", photo(large_image_bytes(4000, 3000))))
        from features.media.images import prepare_image

        part = prepare_image(large_image_bytes(4000, 3000), detail="auto", max_pixels=10**8).part
        with_image = await text_only.build(SESSION, 10**9, "hi", 5, "", harder=False, images=[part])
    assert part.tokens == image_tokens(4000, 3000) == 765
    assert with_image.raw_tokens - prompt_plain.raw_tokens >= 765


async def test_a_model_that_cannot_see_images_says_so_and_still_answers_the_caption(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(fake_model.base_url, db_path, CHATBOT_MODEL="gpt-3.5-turbo") as engine:
        only_photo = await engine.reply_text(sent("", photo(image_bytes(64, 48))))
        calls = len(fake_model.chat_requests)
        with_caption = await engine.reply_text(sent("Is this a cat?", photo(image_bytes(64, 48))))
    assert "can't see images" in only_photo and "gpt-3.5-turbo" in only_photo
    assert calls == 0  # nothing left to ask the model
    assert "can't see images" in with_caption and "You said: Is this a cat?" in with_caption
    assert not image_parts(fake_model.chat_requests[-1])
    assert statuses(db_path) == ["unreadable", "ok"]


async def test_the_bot_vision_setting_overrides_the_model_name(fake_model: FakeOpenAI, db_path: Path) -> None:
    async with engine_for(
        fake_model.base_url, db_path, CHATBOT_MODEL="my-local-model", profile_changes={"vision": True}
    ) as engine:
        await engine.reply_text(sent("what is it", photo(image_bytes(64, 48))))
    assert len(image_parts(fake_model.chat_requests[-1])) == 1


async def test_a_voice_notes_transcript_is_the_message_and_is_quoted_to_the_user(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.transcriptions.said[VOICE] = "remind me what a context window is"
    voice = served("", "audio/ogg", AttachmentKind.VOICE, VOICE, duration=4)
    async with engine_for(fake_model.base_url, db_path) as engine:
        reply = await engine.reply_text(sent("", voice))
    assert reply.startswith("🎙️ “remind me what a context window is”")
    assert user_text(fake_model) == "remind me what a context window is"
    request = fake_model.transcriptions.requests[0]
    assert request["model"] == "whisper-1" and request["filename"] == "audio.ogg"
    assert stored(db_path)[0] == ("user", "remind me what a context window is", 1)


async def test_the_transcript_quote_can_be_turned_off_and_the_server_and_model_are_their_own(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    other = FakeOpenAI()
    await other.start()
    try:
        voice = served("memo.m4a", "audio/mp4", AttachmentKind.AUDIO, VOICE)
        async with engine_for(
            fake_model.base_url,
            db_path,
            CHATBOT_QUOTE_TRANSCRIPT=False,
            CHATBOT_TRANSCRIBE_BASE_URL=other.base_url,
            CHATBOT_TRANSCRIBE_API_KEY="sk-whisper-key-0000",
            CHATBOT_TRANSCRIBE_MODEL="Systran/faster-whisper-small",
        ) as engine:
            reply = await engine.reply_text(sent("", voice))
    finally:
        await other.stop()
    assert reply == "You said: this is what the voice note says"
    assert not fake_model.transcriptions.requests
    assert other.transcriptions.requests[0]["model"] == "Systran/faster-whisper-small"
    assert other.transcriptions.requests[0]["key"] == "sk-whisper-key-0000"


async def test_a_transcription_server_that_is_down_gets_a_clear_answer_and_the_next_message_works(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.transcriptions.status = 503
    voice = served("", "audio/ogg", AttachmentKind.VOICE, VOICE, duration=3)
    async with engine_for(fake_model.base_url, db_path) as engine:
        failed = await engine.reply_text(sent("", voice))
        after = await engine.reply_text(sent("hello again"))
    assert "couldn't read your voice note" in failed and "HTTP 503" in failed
    assert after == "You said: hello again"
    assert statuses(db_path) == ["unreadable", "ok"]
    assert stored(db_path)[0][0] == "user" and "not read" in stored(db_path)[0][1]


async def test_a_slow_transcription_server_times_out_and_the_caption_is_still_answered(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fake_model.transcriptions.delay = 2.0
    voice = served("", "audio/ogg", AttachmentKind.VOICE, VOICE, duration=3)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_TRANSCRIBE_TIMEOUT=0.3) as engine:
        reply = await engine.reply_text(sent("this is about my order", voice))
    assert "did not answer in time" in reply
    assert "You said: this is about my order" in reply


async def test_a_voice_note_longer_than_the_cap_is_refused_before_any_download(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    fetched: list[int] = []

    async def fetch(limit: int) -> bytes:
        fetched.append(limit)
        return VOICE

    voice = Attachment("", "audio/ogg", AttachmentKind.VOICE, size=10, fetch=fetch, duration=3600)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_MAX_AUDIO_SECONDS=300) as engine:
        reply = await engine.reply_text(sent("", voice))
    assert "lasts 3600 s" in reply and "up to 300 s" in reply
    assert not fetched and not fake_model.transcriptions.requests


async def test_a_pdfs_text_reaches_the_model_in_its_turn_only(fake_model: FakeOpenAI, db_path: Path) -> None:
    pdf = served("invoice.pdf", "application/pdf", AttachmentKind.DOCUMENT, pdf_bytes("Total due: 4242 EUR"))
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(sent("What is the total?", pdf))
        assert "Total due: 4242 EUR" in user_text(fake_model)
        await engine.reply_text(sent("thanks"))
    asked = "\n".join(text_of(m["content"]) for m in fake_model.last_messages() if m["role"] == "user")
    assert "4242" not in asked and "[document: invoice.pdf, 1 page with text]" in asked
    assert stored(db_path)[0][1] == "What is the total?\n\n[document: invoice.pdf, 1 page with text]"


async def test_code_and_csv_keep_their_layout_and_several_files_in_one_message_work(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    code = b"def f(x):\n    return x * 2\n"
    table = b"name,qty\nbolts,4\nnuts,9\n"
    files = (
        served("f.py", "text/x-python", AttachmentKind.DOCUMENT, code),
        served("stock.csv", "text/csv", AttachmentKind.DOCUMENT, table),
        photo(image_bytes(40, 30)),
    )
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(sent("check these", *files))
    text = user_text(fake_model)
    assert "def f(x):\n    return x * 2" in text and "name,qty\nbolts,4\nnuts,9" in text
    assert len(image_parts(fake_model.chat_requests[-1])) == 1


async def test_a_long_document_is_cut_to_its_share_of_the_budget_with_a_notice(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    long_text = ("The quick brown fox jumps over the lazy dog. " * 4000).encode()
    doc = served("notes.txt", "text/plain", AttachmentKind.DOCUMENT, long_text)
    async with engine_for(fake_model.base_url, db_path, CHATBOT_CONTEXT_TOKENS=8000) as engine:
        reply = await engine.reply_text(sent("summarise", doc))
        budget_tokens = engine.counter.count(user_text(fake_model))
    assert "notes.txt is long: I read about its first" in reply
    assert budget_tokens < 8000 * 0.8 * 0.4 + 200
    assert "more characters did not fit" in user_text(fake_model)


async def test_an_unsupported_file_is_answered_naming_what_is_supported(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    archive = served("backup.zip", "application/zip", AttachmentKind.DOCUMENT, b"PK\x03\x04")
    async with engine_for(fake_model.base_url, db_path) as engine:
        reply = await engine.reply_text(sent("", archive))
    assert "backup.zip" in reply and SUPPORTED in reply
    assert not fake_model.chat_requests


async def test_a_corrupt_image_and_a_corrupt_pdf_get_clear_answers(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    broken = (
        photo(corrupt_image_bytes(), "broken.jpg"),
        served("scan.pdf", "application/pdf", AttachmentKind.DOCUMENT, corrupt_pdf_bytes()),
    )
    async with engine_for(fake_model.base_url, db_path) as engine:
        reply = await engine.reply_text(sent("", *broken))
        after = await engine.reply_text(sent("ok, plain text then"))
    assert "couldn't read the image broken.jpg: the image could not be read" in reply
    assert "couldn't read the file scan.pdf: not a readable PDF" in reply
    assert after == "You said: ok, plain text then"


async def test_oversized_files_are_refused_by_size_and_by_the_platforms_own_cap(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    big = Attachment("huge.png", "image/png", AttachmentKind.IMAGE, size=30 * 1024 * 1024)
    capped = Attachment(
        "film.pdf", "application/pdf", AttachmentKind.DOCUMENT, size=21 * 1024 * 1024,
        download_cap=20 * 1024 * 1024, platform="telegram",
    )  # fmt: skip
    async with engine_for(fake_model.base_url, db_path, CHATBOT_MAX_FILE_MB=25) as engine:
        reply = await engine.reply_text(sent("", big, capped))
    assert "huge.png: it is 30.0 MB; I read files up to 25.0 MB" in reply
    assert "film.pdf: it is 21.0 MB and Telegram lets bots download files up to 20.0 MB" in reply


async def test_a_download_that_fails_or_hangs_gets_a_clear_answer_and_the_next_message_works(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async def broken(limit: int) -> bytes:
        raise ConnectionResetError("peer went away")

    async def hanging(limit: int) -> bytes:
        await asyncio.sleep(30)
        return b""

    files = (
        Attachment("a.png", "image/png", AttachmentKind.IMAGE, fetch=broken),
        Attachment("b.png", "image/png", AttachmentKind.IMAGE, fetch=hanging),
    )
    async with engine_for(fake_model.base_url, db_path, CHATBOT_DOWNLOAD_TIMEOUT=0.3) as engine:
        reply = await engine.reply_text(sent("what do you see", *files))
        after = await engine.reply_text(sent("and now?"))
    assert "a.png: the download failed" in reply and "b.png: the download timed out" in reply
    assert "You said: what do you see" in reply  # the caption is still answered
    assert after == "You said: and now?", "the next message is answered as itself"


async def test_more_files_than_the_cap_are_left_out_with_a_notice(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    files = tuple(photo(image_bytes(20, 20), f"p{i}.jpg") for i in range(4))
    async with engine_for(fake_model.base_url, db_path, CHATBOT_MAX_ATTACHMENTS=2) as engine:
        reply = await engine.reply_text(sent("compare", *files))
    assert "I read the first 2 files of your message; the other 2 were left out" in reply
    assert len(image_parts(fake_model.chat_requests[-1])) == 2


async def test_forget_deletes_the_placeholders_and_transcripts_and_no_bytes_are_stored(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    voice = served("", "audio/ogg", AttachmentKind.VOICE, VOICE)
    async with engine_for(fake_model.base_url, db_path) as engine:
        await engine.reply_text(sent("", voice))
        await engine.reply_text(sent("see", photo(image_bytes(32, 32))))
        with sqlite3.connect(db_path) as db:
            dump = "\n".join(db.iterdump())
        assert "base64" not in dump and "this is what the voice note says" in dump
        await engine.reply_text(sent("/forget"))
    assert stored(db_path) == []


async def test_without_the_media_feature_files_get_text_only_and_the_caption_is_answered(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(fake_model.base_url, db_path, CHATBOT_MEDIA=False) as engine:
        only = await engine.reply_text(sent("", photo(image_bytes(8, 8))))
        captioned = await engine.reply_text(sent("hi there", photo(image_bytes(8, 8))))
    assert only == "I can only read text here: please type your message."
    assert "without its files" in captioned and "You said: hi there" in captioned


async def test_a_model_server_that_refuses_images_gets_a_clear_answer_and_the_next_message_works(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    from tests.fakes.openai_server import Reply

    fake_model.queue(Reply(status=400, error_message="image input is not supported by this model"))
    async with engine_for(fake_model.base_url, db_path) as engine:
        refused = await engine.reply_text(sent("what is this?", photo(image_bytes(32, 32))))
        after = await engine.reply_text(sent("never mind"))
    assert "refused this request" in refused
    assert after == "You said: never mind"
    assert image_parts(fake_model.chat_requests[0]) and not image_parts(fake_model.chat_requests[1])


async def test_screenshots_sent_one_after_another_are_not_taken_for_a_repeated_message(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(fake_model.base_url, db_path) as engine:
        replies = [await engine.reply_text(sent("", photo(image_bytes(60, 40)))) for _ in range(4)]
    assert all(reply.startswith("You said: [photo: photo.jpg, 60x40]") for reply in replies)
    assert statuses(db_path) == ["ok"] * 4


async def test_a_chats_model_choice_decides_whether_images_are_seen(
    fake_model: FakeOpenAI, db_path: Path
) -> None:
    async with engine_for(
        fake_model.base_url,
        db_path,
        CHATBOT_MODEL="gpt-3.5-turbo",
        profile_changes={"models": ("gpt-3.5-turbo", "gpt-4o")},
    ) as engine:
        await engine.store.set_chat_choice(SESSION, ChatChoice(model="gpt-4o"))  # as /model gpt-4o stores it
        reply = await engine.reply_text(sent("what is it", photo(image_bytes(64, 48))))
    assert "can't see images" not in reply
    assert fake_model.chat_requests[-1]["model"] == "gpt-4o"
    assert len(image_parts(fake_model.chat_requests[-1])) == 1
