"""Plugs the media reader into the engine: photos, voice notes, audio and documents are read into turns.

``CHATBOT_MEDIA=false`` leaves it out (files then get "I can only read text"). The transcription client is
made here and closed with the bot.
"""

from __future__ import annotations

import logging

from core.errors import ConfigError
from features import FeatureContext
from features.media.reader import MediaReader
from features.media.transcription import Transcriber

ORDER = 60

log = logging.getLogger(__name__)


async def install(ctx: FeatureContext) -> None:
    settings = ctx.settings
    if not settings.media:
        return
    transcriber: Transcriber | None
    try:
        key = settings.transcribe_key()
    except ConfigError as exc:
        log.warning("voice notes are off: %s", exc)
        transcriber = None
    else:
        transcriber = Transcriber(
            settings.transcribe_url(),
            key,
            settings.transcribe_model,
            timeout=settings.transcribe_timeout,
        )
        if key not in ctx.secrets and key != "not-needed":
            ctx.secrets.append(key)
        ctx.closers.append(transcriber.close)
    ctx.engine.hooks.attachments = MediaReader(ctx.engine, settings, transcriber)
