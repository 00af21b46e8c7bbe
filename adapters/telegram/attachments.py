"""Where a Telegram message's files are mapped: photos, image and other documents, voice notes and audio.

:func:`files_of` is pure (a message as the Bot API sends it, ``Message.to_dict()``) and returns
:class:`TelegramFile` values; :func:`attachment` turns one into a :class:`core.attachments.Attachment` whose
bytes are fetched on demand through ``getFile`` and the file endpoint under ``TELEGRAM_BASE_URL``
(python-telegram-bot's ``Bot.get_file`` + ``File.download_as_bytearray``). Bots may download files up to
20 MB (https://core.telegram.org/bots/api#getfile); bigger ones are refused before any call.

Stickers, videos, video notes, GIFs, locations, contacts, polls... are passed on as
:attr:`~core.attachments.AttachmentKind.OTHER`, so the user hears what the bot can read instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from telegram import Bot
from telegram.error import BadRequest, TelegramError

from core.attachments import Attachment, AttachmentError, AttachmentKind

DOWNLOAD_CAP = 20 * 1024 * 1024  # getFile: "bots can download files of up to 20MB in size"
UNREADABLE_CONTENT = {
    "sticker": "sticker",
    "video": "video",
    "video_note": "video message",
    "animation": "GIF",
    "location": "location",
    "venue": "venue",
    "contact": "contact",
    "poll": "poll",
    "dice": "dice",
    "game": "game",
    "story": "story",
    "paid_media": "paid media",
    "checklist": "checklist",
}

Json = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TelegramFile:
    """One file of a message: ``file_id`` is empty for content that is not a downloadable file."""

    file_id: str
    name: str
    mime: str
    kind: AttachmentKind
    size: int | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def files_of(message: Json) -> tuple[TelegramFile, ...]:
    """The files of a message, in a fixed order: photo, document, voice, audio, then unreadable content."""
    found: list[TelegramFile] = []
    sizes = message.get("photo")
    if isinstance(sizes, list) and sizes:
        biggest = max(sizes, key=lambda s: (s.get("width", 0) * s.get("height", 0), s.get("file_size", 0)))
        found.append(
            TelegramFile(
                str(biggest.get("file_id", "")),
                "photo.jpg",
                "image/jpeg",
                AttachmentKind.IMAGE,
                size=_int(biggest.get("file_size")),
                width=_int(biggest.get("width")),
                height=_int(biggest.get("height")),
            )
        )
    document = message.get("document")
    if isinstance(document, Mapping):
        found.append(
            TelegramFile(
                str(document.get("file_id", "")),
                str(document.get("file_name") or "document"),
                str(document.get("mime_type") or ""),
                AttachmentKind.DOCUMENT,
                size=_int(document.get("file_size")),
            )
        )
    for key, kind in (("voice", AttachmentKind.VOICE), ("audio", AttachmentKind.AUDIO)):
        sound = message.get(key)
        if isinstance(sound, Mapping):
            found.append(
                TelegramFile(
                    str(sound.get("file_id", "")),
                    str(sound.get("file_name") or ""),
                    str(sound.get("mime_type") or ("audio/ogg" if key == "voice" else "audio/mpeg")),
                    kind,
                    size=_int(sound.get("file_size")),
                    duration=_int(sound.get("duration")),
                )
            )
    for key, name in UNREADABLE_CONTENT.items():
        if message.get(key):
            found.append(TelegramFile("", name, "", AttachmentKind.OTHER))
    return tuple(found)


def attachment_from(ref: Any, bot: Bot) -> Attachment:
    """The attachment a work queue's job describes (``Attachment.ref`` of :func:`attachment`), on this worker."""
    fields = dict(ref)
    return attachment(TelegramFile(**{**fields, "kind": AttachmentKind(fields["kind"])}), bot)


def attachment(file: TelegramFile, bot: Bot) -> Attachment:
    """The core attachment for ``file``; its bytes come through ``bot`` when a reader asks for them."""

    async def fetch(limit: int) -> bytes:
        try:
            found = await bot.get_file(file.file_id)
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise AttachmentError("Telegram lets bots download files up to 20 MB") from None
            raise AttachmentError("Telegram did not hand over the file") from None
        except TelegramError:
            raise AttachmentError("the download failed") from None
        if found.file_size is not None and found.file_size > limit:
            raise AttachmentError(f"it is more than {limit // (1024 * 1024)} MB")
        try:
            return bytes(await found.download_as_bytearray())
        except TelegramError:
            raise AttachmentError("the download failed") from None

    return Attachment(
        name=file.name,
        mime=file.mime,
        kind=file.kind,
        size=file.size,
        fetch=fetch,
        ref=dataclasses.asdict(file),
        download_cap=DOWNLOAD_CAP if file.file_id else None,
        duration=file.duration,
        width=file.width,
        height=file.height,
        platform="telegram",
    )
