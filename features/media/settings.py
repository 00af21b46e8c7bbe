"""The media feature's settings: caps on files, image detail, the transcription server, documents' share."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from core.config import OPENAI_DEFAULT_URL, EngineSettings
from core.errors import ConfigError

MB = 1024 * 1024


class MediaSettings(EngineSettings):
    """What users may send besides text, and how it is read (the transcription server defaults to the chat
    one, hence the base)."""

    media: bool = Field(default=True, alias="CHATBOT_MEDIA")
    vision: bool | None = Field(default=None, alias="CHATBOT_VISION")
    max_file_mb: float = Field(default=20.0, gt=0, alias="CHATBOT_MAX_FILE_MB")
    max_attachments: int = Field(default=5, gt=0, alias="CHATBOT_MAX_ATTACHMENTS")
    max_image_pixels: int = Field(default=40_000_000, gt=0, alias="CHATBOT_MAX_IMAGE_PIXELS")
    image_detail: Literal["auto", "low", "high"] = Field(default="auto", alias="CHATBOT_IMAGE_DETAIL")
    max_audio_seconds: float = Field(default=600.0, gt=0, alias="CHATBOT_MAX_AUDIO_SECONDS")
    max_audio_mb: float = Field(default=25.0, gt=0, alias="CHATBOT_MAX_AUDIO_MB")
    download_timeout: float = Field(default=30.0, gt=0, alias="CHATBOT_DOWNLOAD_TIMEOUT")
    document_share: float = Field(default=0.4, gt=0, lt=1, alias="CHATBOT_DOCUMENT_SHARE")
    quote_transcript: bool = Field(default=True, alias="CHATBOT_QUOTE_TRANSCRIPT")
    transcribe_base_url: str | None = Field(default=None, alias="CHATBOT_TRANSCRIBE_BASE_URL")
    transcribe_api_key: SecretStr | None = Field(default=None, alias="CHATBOT_TRANSCRIBE_API_KEY")
    transcribe_model: str = Field(default="whisper-1", alias="CHATBOT_TRANSCRIBE_MODEL")
    transcribe_timeout: float = Field(default=60.0, gt=0, alias="CHATBOT_TRANSCRIBE_TIMEOUT")

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * MB)

    @property
    def max_audio_bytes(self) -> int:
        return int(self.max_audio_mb * MB)

    def transcribe_url(self) -> str:
        """The transcription server: ``CHATBOT_TRANSCRIBE_BASE_URL``, else the chat server."""
        return self.transcribe_base_url or self.openai_base_url

    def transcribe_key(self) -> str:
        """The key for the transcription server: ``CHATBOT_TRANSCRIBE_API_KEY``, else the chat key."""
        if self.transcribe_api_key is not None and self.transcribe_api_key.get_secret_value():
            return self.transcribe_api_key.get_secret_value()
        if self.openai_api_key is not None and self.openai_api_key.get_secret_value():
            return self.openai_api_key.get_secret_value()
        if self.transcribe_url().rstrip("/") == OPENAI_DEFAULT_URL:
            raise ConfigError(
                "no API key for OpenAI transcription: set CHATBOT_TRANSCRIBE_API_KEY or OPENAI_API_KEY, "
                "or CHATBOT_TRANSCRIBE_BASE_URL to a local Whisper server."
            )
        return "not-needed"
