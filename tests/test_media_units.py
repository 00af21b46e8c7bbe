"""The pure parts of reading files: image token costs, which models see images, which files are documents,
and how each platform's files are classified."""

from __future__ import annotations

import pytest

from adapters.slack.files import kind_of as slack_kind
from adapters.telegram.attachments import files_of
from core.attachments import AttachmentKind
from core.bot_profile import BotProfile
from core.image_tokens import high_detail_size, image_tokens
from core.model_vision import model_sees_images
from features.media.documents import document_path
from features.media.transcription import audio_name


@pytest.mark.parametrize(
    ("size", "detail", "tokens"),
    [
        ((1024, 1024), "high", 765),  # OpenAI's worked examples: 768x768, 4 tiles
        ((2048, 4096), "high", 1105),  # 1024x2048 -> 768x1536, 6 tiles
        ((4096, 8192), "low", 85),
        ((100, 100), "auto", 255),  # never scaled up: 1 tile
    ],
)
def test_image_tokens_follow_openais_published_formula(
    size: tuple[int, int], detail: str, tokens: int
) -> None:
    assert image_tokens(*size, detail) == tokens


def test_images_are_only_ever_scaled_down() -> None:
    assert high_detail_size(4000, 3000) == (1024, 768)
    assert high_detail_size(500, 300) == (500, 300)


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o-mini", "gpt-4.1", "gpt-5-mini", "o3", "o4-mini", "claude-3-5-sonnet", "gemini-2.0-flash",
        "llava:13b", "qwen2.5-vl-7b-instruct", "Qwen/Qwen3-VL-8B", "llama3.2-vision:11b", "gemma3:27b",
        "pixtral-12b", "minicpm-v", "moondream", "openrouter/meta-llama/llama-4-scout",
    ],
)  # fmt: skip
def test_vision_models_are_known_by_name(model: str) -> None:
    assert model_sees_images(model)


@pytest.mark.parametrize(
    "model", ["gpt-3.5-turbo", "o3-mini", "o1-mini", "llama3.1:8b", "mistral", "qwen2.5:7b"]
)
def test_text_models_are_known_by_name(model: str) -> None:
    assert not model_sees_images(model)


def test_a_bots_vision_setting_wins_over_the_name() -> None:
    assert BotProfile("b", "s", model="llama3.1:8b", vision=True).sees_images
    assert not BotProfile("b", "s", model="gpt-4o", vision=False).sees_images
    assert BotProfile("b", "s", model="gpt-4o").sees_images


@pytest.mark.parametrize(
    ("name", "mime", "read_as"),
    [
        ("notes.md", "", "notes.md"),
        ("main.rs", "", "main.rs"),
        ("data.csv", "text/csv", "data.csv"),
        ("export", "application/pdf", "export.pdf"),
        ("readme", "text/plain; charset=utf-8", "readme.txt"),
        ("backup.zip", "application/zip", None),
        ("photo.heic", "image/heic", None),
    ],
)
def test_documents_are_known_by_suffix_then_type(name: str, mime: str, read_as: str | None) -> None:
    path = document_path(name, mime)
    assert (path.name if path else None) == read_as


def test_audio_gets_a_name_whose_suffix_names_its_format() -> None:
    assert audio_name("", "audio/ogg") == "audio.ogg"
    assert audio_name("clip.m4a", "audio/mp4") == "clip.m4a"
    assert audio_name("audio_message", "audio/webm") == "audio_message.webm"


def test_telegram_files_of_a_message() -> None:
    message = {
        "photo": [
            {"file_id": "small", "width": 90, "height": 60, "file_size": 900},
            {"file_id": "big", "width": 1280, "height": 853, "file_size": 90_000},
        ],
        "voice": {"file_id": "v", "duration": 7, "mime_type": "audio/ogg", "file_size": 5000},
    }
    photo, voice = files_of(message)
    assert (photo.file_id, photo.kind, photo.width) == ("big", AttachmentKind.IMAGE, 1280)
    assert (voice.kind, voice.duration, voice.mime) == (AttachmentKind.VOICE, 7, "audio/ogg")
    [sticker] = files_of({"sticker": {"file_id": "s"}})
    assert (sticker.kind, sticker.name, sticker.file_id) == (AttachmentKind.OTHER, "sticker", "")


@pytest.mark.parametrize(
    ("file", "kind"),
    [
        ({"mimetype": "image/png"}, AttachmentKind.IMAGE),
        ({"mimetype": "audio/webm", "subtype": "slack_audio"}, AttachmentKind.VOICE),
        ({"mimetype": "audio/mpeg"}, AttachmentKind.AUDIO),
        ({"mimetype": "video/mp4"}, AttachmentKind.OTHER),
        ({"mimetype": "application/pdf"}, AttachmentKind.DOCUMENT),
        ({"mimetype": "text/plain", "mode": "tombstone"}, AttachmentKind.OTHER),
    ],
)
def test_slack_files_are_classified(file: dict[str, str], kind: AttachmentKind) -> None:
    assert slack_kind(file) == kind
