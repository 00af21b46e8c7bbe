"""Files a user sent with a message (photos, voice notes, audio, documents), platform-neutral.

An adapter maps each platform file onto an :class:`Attachment`: its name, MIME type, declared size, what
kind of thing it is, and a way to fetch its bytes *lazily* and capped (nothing is downloaded until a reader
asks, and never more than it allows). A reader (the media feature, plugged in as
:attr:`core.hooks.TurnHooks.attachments`) turns a message's attachments into an :class:`AttachmentReading`:
what is stored as the user's message, what only this turn's prompt sees (a document's text), the images
to send as content parts, and notices for the user.

What later turns see is the stored text only: the caption, a voice note's transcript, and short
placeholders such as ``[photo: 1280x720]`` or ``[document: report.pdf]``. Bytes are never stored, so
``/forget`` and retention have nothing beyond messages to delete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from core.incoming import IncomingMessage


class AttachmentKind(StrEnum):
    """What an attachment is, as far as the platform says."""

    IMAGE = "image"
    VOICE = "voice"  # a recorded voice note / audio clip / voice message
    AUDIO = "audio"  # an audio file
    DOCUMENT = "document"  # any other file: read as a document when its type is supported
    OTHER = "other"  # stickers, videos, locations...: nothing the bot can read


class AttachmentError(Exception):
    """An attachment could not be fetched or read; ``reason`` is fit to show the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Fetch = Callable[[int], Awaitable[bytes]]
"""Fetch an attachment's bytes, at most ``limit`` of them: raises :class:`AttachmentError` when there are
more (or the download fails), never returns a partial file."""


async def _nothing(limit: int) -> bytes:
    raise AttachmentError("this file cannot be downloaded")


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file of a message.

    ``size`` is the platform's declared size in bytes (``None`` when it does not say); ``download_cap`` the
    most the platform lets a bot download (Telegram's getFile: 20 MB), ``None`` for no platform cap.
    ``duration`` (seconds) is set for audio when the platform reports it; ``width``/``height`` for images.
    ``error``, when set, is why the adapter already knows the file cannot be had (shown to the user).
    ``ref`` is the platform's JSON description of the file, from which its adapter builds the attachment
    again in another process (a work queue's job carries ``ref``, never ``fetch``).
    """

    name: str
    mime: str
    kind: AttachmentKind
    size: int | None = None
    fetch: Fetch = _nothing
    download_cap: int | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    platform: str = ""
    error: str | None = None
    ref: Any = None


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image as the model gets it: a ``data:`` URL, its size after downscaling, the detail level and
    its token cost (see :mod:`core.image_tokens`)."""

    url: str
    width: int
    height: int
    detail: str
    tokens: int

    def content_part(self) -> dict[str, object]:
        """The OpenAI chat format's image content part."""
        return {"type": "image_url", "image_url": {"url": self.url, "detail": self.detail}}


@dataclass(frozen=True, slots=True)
class AttachmentReading:
    """What a message's attachments came to.

    ``text``: the user's message as stored and seen by later turns (caption, transcripts, placeholders).
    ``words``: what the user said in it (caption and transcripts, no placeholders): what input guards judge,
    so three screenshots in a row are not taken for the same message repeated.
    ``extra``: text for this turn's prompt only (documents, already cut to their share of the budget).
    ``images``: image parts for this turn's request. ``notices``: shown above the reply (what was heard, a
    document cut short, a file that could not be read). ``answer``: when set, nothing is left to ask the
    model; this is the whole reply (the turn is still stored and recorded).
    """

    text: str
    extra: str = ""
    images: tuple[ImagePart, ...] = ()
    notices: tuple[str, ...] = ()
    answer: str | None = None
    problems: tuple[str, ...] = field(default=())  # for the log: what failed, without user content
    words: str | None = None  # None: the same as ``text``


class AttachmentReader(Protocol):
    """Reads a message's attachments (downloads, decoding, transcription) for one turn."""

    async def read(self, message: IncomingMessage, text: str) -> AttachmentReading:
        """``text`` is the message's cleaned text (the caption)."""
        ...


TEXT_ONLY = "I can only read text here: please type your message."
