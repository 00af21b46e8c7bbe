"""The media reader: a message's files into its turn (the engine's :class:`core.attachments.AttachmentReader`).

Per file, in the order sent (at most ``CHATBOT_MAX_ATTACHMENTS``):

- **image**: fetched within the size cap, decoded and downscaled (:mod:`features.media.images`), sent as an
  image content part; stored as ``[photo: name, WxH]``. A bot whose model cannot see images says so.
- **voice note / audio**: duration and size checked, transcribed (:mod:`features.media.transcription`); the
  transcript *is* the stored message text, and is quoted above the reply (``CHATBOT_QUOTE_TRANSCRIPT``).
- **document** (:mod:`features.media.documents`): its text goes into this turn's prompt only, within
  ``CHATBOT_DOCUMENT_SHARE`` of the prompt budget (a notice when cut); stored as ``[document: name, ...]``.
- anything else gets an answer naming what the bot reads.

A file that fails (too big, damaged, a download that fails or times out, a transcription server that is
down) costs that file only: the user is told which and why, the rest of the message is answered. When
nothing is left (no caption, no readable file), the explanation is the whole answer; the engine still
stores the message (its placeholders) and records the turn.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from core.attachments import Attachment, AttachmentError, AttachmentKind, AttachmentReading, ImagePart
from core.bot_profile import BotProfile
from core.conversation import ConversationEngine
from core.incoming import IncomingMessage
from core.trimming import cut_to_tokens, prompt_budget
from features.media.documents import SUPPORTED as DOCUMENT_TYPES
from features.media.documents import document_path, document_text
from features.media.images import is_image, prepare_image
from features.media.settings import MB, MediaSettings
from features.media.transcription import Transcriber

log = logging.getLogger(__name__)

SUPPORTED = (
    f"photos and images (JPEG, PNG, WebP, GIF), voice notes and audio, and documents ({DOCUMENT_TYPES})"
)
UNSUPPORTED = "I can't read this kind of file; I read " + SUPPORTED
NO_VISION = "this bot's model ({model}) can't see images: describe the picture or paste its text instead"
NO_VOICE = "voice notes are turned off for this bot: please type your message"
COULD_NOT = "⚠️ I couldn't read {label}: {reason}.\n\n"
TOO_MANY = "ℹ️ I read the first {kept} files of your message; the other {left} were left out.\n\n"
DOC_CUT = "ℹ️ {name} is long: I read about its first {percent}% (it fills my share for documents).\n\n"
HEARD = "🎙️ “{text}”\n\n"
QUOTE_CHARS = 600
NOTHING_LEFT = "Please try again, or type your message."


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB else f"{max(1, size // 1024)} KB"


def _label(attachment: Attachment) -> str:
    words = {
        AttachmentKind.IMAGE: "the image",
        AttachmentKind.VOICE: "your voice note",
        AttachmentKind.AUDIO: "the audio file",
    }
    if attachment.kind == AttachmentKind.OTHER and not attachment.mime and attachment.name:
        return f"the {attachment.name}"  # content that is no file: the sticker, the location
    word = words.get(attachment.kind, "the file")
    return (
        f"{word} {attachment.name}" if attachment.name and attachment.kind != AttachmentKind.VOICE else word
    )


@dataclass
class _Gathered:
    parts: list[str] = field(default_factory=list)  # stored: caption, transcripts, placeholders
    extra: list[str] = field(default_factory=list)  # this turn only: documents' text
    images: list[ImagePart] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # caption and transcripts
    failures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    usable: bool = False  # something the model can answer


class MediaReader:
    """Reads photos, voice notes, audio and documents for one engine."""

    def __init__(
        self, engine: ConversationEngine, settings: MediaSettings, transcriber: Transcriber | None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.transcriber = transcriber

    async def read(self, message: IncomingMessage, text: str) -> AttachmentReading:
        got = _Gathered()
        if text.strip():
            got.parts.append(text)
            got.words.append(text)
            got.usable = True
        files = message.attachments
        limit = self.settings.max_attachments
        documents = sum(1 for f in files[:limit] if self._as_document(f))
        bot = self.engine.turn_profile(message.session_id)  # the chat's /model choice, as the turn sees it
        share = int(prompt_budget(bot) * self.settings.document_share) // max(1, documents)
        for attachment in files[:limit]:
            try:
                await self._read_one(attachment, got, share, bot)
            except AttachmentError as exc:
                got.failures.append(COULD_NOT.format(label=_label(attachment), reason=exc.reason))
                got.problems.append(f"{attachment.kind} attachment not read: {exc.reason}")
                got.parts.append(f"[{attachment.kind}: {attachment.name or 'file'}, not read: {exc.reason}]")
        if len(files) > limit:
            got.notices.append(TOO_MANY.format(kept=limit, left=len(files) - limit))
        notices = tuple(got.failures + got.notices)
        return AttachmentReading(
            text="\n\n".join(got.parts),
            extra="\n\n".join(got.extra),
            images=tuple(got.images),
            notices=notices,
            answer=None if got.usable else NOTHING_LEFT,
            problems=tuple(got.problems),
            words="\n\n".join(got.words),
        )

    @staticmethod
    def _as_document(attachment: Attachment) -> bool:
        return attachment.kind in (AttachmentKind.DOCUMENT, AttachmentKind.OTHER) and not is_image(
            attachment.name, attachment.mime
        )

    async def _read_one(self, attachment: Attachment, got: _Gathered, share: int, bot: BotProfile) -> None:
        if attachment.error is not None:
            raise AttachmentError(attachment.error)
        kind = attachment.kind
        if kind == AttachmentKind.IMAGE or (
            kind == AttachmentKind.DOCUMENT and is_image(attachment.name, attachment.mime)
        ):
            await self._image(attachment, got, bot)
        elif kind in (AttachmentKind.VOICE, AttachmentKind.AUDIO):
            await self._audio(attachment, got)
        elif kind == AttachmentKind.DOCUMENT:
            await self._document(attachment, got, share)
        else:
            raise AttachmentError(UNSUPPORTED)

    async def _fetch(self, attachment: Attachment, cap: int) -> bytes:
        """The file's bytes within ``cap`` and the platform's own cap, or a reason why not."""
        platform_cap = attachment.download_cap
        size = attachment.size
        if platform_cap is not None and size is not None and size > platform_cap:
            where = attachment.platform.capitalize() or "The platform"
            raise AttachmentError(
                f"it is {_mb(size)} and {where} lets bots download files up to {_mb(platform_cap)}"
            )
        if size is not None and size > cap:
            raise AttachmentError(f"it is {_mb(size)}; I read files up to {_mb(cap)}")
        limit = min(cap, platform_cap) if platform_cap is not None else cap
        try:
            async with asyncio.timeout(self.settings.download_timeout):
                data = await attachment.fetch(limit)
        except TimeoutError:
            raise AttachmentError("the download timed out") from None
        except AttachmentError:
            raise
        except Exception as exc:
            log.warning("downloading an attachment failed: %s", type(exc).__name__)
            raise AttachmentError("the download failed") from None
        if len(data) > limit:
            raise AttachmentError(f"it is more than {_mb(limit)}; I read files up to {_mb(limit)}")
        return data

    async def _image(self, attachment: Attachment, got: _Gathered, bot: BotProfile) -> None:
        vision = self.settings.vision if self.settings.vision is not None else bot.sees_images
        if not vision:
            raise AttachmentError(NO_VISION.format(model=bot.model_name))
        data = await self._fetch(attachment, self.settings.max_file_bytes)
        prepared = await asyncio.to_thread(
            prepare_image,
            data,
            detail=self.settings.image_detail,
            max_pixels=self.settings.max_image_pixels,
        )
        got.images.append(prepared.part)
        name = f"{attachment.name}, " if attachment.name else ""
        got.parts.append(f"[photo: {name}{prepared.original_width}x{prepared.original_height}]")
        got.usable = True

    async def _audio(self, attachment: Attachment, got: _Gathered) -> None:
        if self.transcriber is None:
            raise AttachmentError(NO_VOICE)
        longest = self.settings.max_audio_seconds
        if attachment.duration is not None and attachment.duration > longest:
            raise AttachmentError(f"it lasts {attachment.duration:.0f} s; I transcribe up to {longest:.0f} s")
        cap = min(self.settings.max_file_bytes, self.settings.max_audio_bytes)
        data = await self._fetch(attachment, cap)
        heard = await self.transcriber.transcribe(attachment.name, data, attachment.mime)
        got.parts.append(heard)
        got.words.append(heard)
        got.usable = True
        if self.settings.quote_transcript:
            quoted = heard if len(heard) <= QUOTE_CHARS else heard[:QUOTE_CHARS].rstrip() + " …"
            got.notices.append(HEARD.format(text=quoted))

    async def _document(self, attachment: Attachment, got: _Gathered, share: int) -> None:
        path = document_path(attachment.name, attachment.mime)
        if path is None:
            raise AttachmentError(UNSUPPORTED)
        data = await self._fetch(attachment, self.settings.max_file_bytes)
        text, description = await asyncio.to_thread(document_text, path, data)
        counter = self.engine.counter
        body = f'<document name="{attachment.name}">\n{text}\n</document>'
        kept = cut_to_tokens(body, share, counter)
        if kept != body:
            percent = max(1, min(99, round(100 * (len(kept) / max(1, len(body))))))
            got.notices.append(DOC_CUT.format(name=attachment.name, percent=percent))
        got.extra.append(kept)
        got.parts.append(f"[document: {attachment.name}, {description}]")
        got.usable = True
