"""Where Discord attachments are mapped: a message's files and stickers as core attachments.

A file's bytes come from its CDN ``url`` through discord.py's ``Attachment.read`` (the client's own HTTP
session). Voice messages are audio attachments that carry ``duration_secs`` and a ``waveform``
(``Attachment.is_voice_message``). Stickers are passed on as content the bot cannot read, so the user
hears what it can. Without the message content intent, Discord sends no attachments either for guild
messages that do not mention the bot (docs/discord.md).
"""

from __future__ import annotations

import aiohttp
import discord

from core.attachments import Attachment, AttachmentError, AttachmentKind


def kind_of(attachment: discord.Attachment) -> AttachmentKind:
    """What a Discord attachment is, by its voice-message flag and content type."""
    mime = (attachment.content_type or "").lower()
    if attachment.is_voice_message():
        return AttachmentKind.VOICE
    if mime.startswith("image/"):
        return AttachmentKind.IMAGE
    if mime.startswith("audio/"):
        return AttachmentKind.AUDIO
    if mime.startswith("video/"):
        return AttachmentKind.OTHER
    return AttachmentKind.DOCUMENT


def attachment(file: discord.Attachment) -> Attachment:
    """The core attachment for one Discord attachment; its bytes are read when the engine asks."""

    async def fetch(limit: int) -> bytes:
        if file.size > limit:
            raise AttachmentError(f"it is more than {limit // (1024 * 1024)} MB")
        try:
            return await file.read()
        except discord.HTTPException as exc:
            raise AttachmentError(f"Discord refused the download (HTTP {exc.status})") from None
        except (aiohttp.ClientError, discord.DiscordException):
            raise AttachmentError("the download failed") from None

    return Attachment(
        name=file.filename,
        mime=(file.content_type or "").split(";")[0].strip(),
        kind=kind_of(file),
        size=file.size,
        fetch=fetch,
        duration=file.duration,
        width=file.width,
        height=file.height,
        platform="discord",
    )


def attachments_of(message: discord.Message) -> tuple[Attachment, ...]:
    """The message's files, then a placeholder per sticker."""
    files = tuple(attachment(file) for file in message.attachments)
    stickers = tuple(
        Attachment("sticker", "", AttachmentKind.OTHER, platform="discord") for _ in message.stickers
    )
    return files + stickers
