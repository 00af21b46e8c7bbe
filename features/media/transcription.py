"""Voice notes and audio as text, through an OpenAI-compatible ``POST /v1/audio/transcriptions``.

OpenAI's Whisper and GPT-4o transcribe models speak it, and so do self-hosted servers (faster-whisper-server
/ speaches, whisper.cpp's server, LocalAI, vLLM). The server, key and model are their own settings
(``CHATBOT_TRANSCRIBE_*``), defaulting to the chat server's. Every failure is an
:class:`core.attachments.AttachmentError` that says what happened, never the key.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes

import openai
from openai import AsyncOpenAI

from core.attachments import AttachmentError

log = logging.getLogger(__name__)

# the file types OpenAI's endpoint takes, named by the file's suffix (platform.openai.com/docs/api-reference/audio)
AUDIO_SUFFIXES = (".flac", ".mp3", ".mp4", ".mpeg", ".mpga", ".m4a", ".ogg", ".oga", ".opus", ".wav", ".webm")


def audio_name(name: str, mime: str) -> str:
    """A file name whose suffix tells the server the format (Telegram names voice notes nothing)."""
    if name.lower().endswith(AUDIO_SUFFIXES):
        return name
    base = mime.lower().split(";")[0].strip()
    suffix = {"audio/ogg": ".ogg", "audio/opus": ".ogg", "audio/webm": ".webm", "audio/x-m4a": ".m4a"}.get(
        base
    ) or (mimetypes.guess_extension(base) or ".ogg")
    return (name or "audio") + suffix


class Transcriber:
    """One transcription server and model."""

    def __init__(self, base_url: str, api_key: str, model: str, *, timeout: float) -> None:
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=1)
        self.model = model
        self.timeout = timeout

    async def transcribe(self, name: str, data: bytes, mime: str) -> str:
        """The speech in ``data`` as text."""
        try:
            async with asyncio.timeout(self.timeout):
                result = await self.client.audio.transcriptions.create(
                    model=self.model, file=(audio_name(name, mime), data, mime or "application/octet-stream")
                )
        except (TimeoutError, openai.APITimeoutError):
            raise AttachmentError("the transcription server did not answer in time") from None
        except openai.APIConnectionError:
            raise AttachmentError("the transcription server is unavailable") from None
        except openai.APIStatusError as exc:
            log.warning("transcription refused: HTTP %d", exc.status_code)
            raise AttachmentError(f"the transcription server refused it (HTTP {exc.status_code})") from None
        except openai.OpenAIError as exc:
            raise AttachmentError(f"transcription failed ({type(exc).__name__})") from None
        text = (getattr(result, "text", "") or "").strip()
        if not text:
            raise AttachmentError("no speech was heard in it")
        return text

    async def close(self) -> None:
        await self.client.close()
