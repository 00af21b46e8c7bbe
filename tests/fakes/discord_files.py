"""Attachment files on the fake Discord: the CDN URLs message attachments point at.

An attachment object (https://discord.com/developers/docs/resources/message#attachment-object) carries
``id``, ``filename``, ``size``, ``url``, ``proxy_url`` and ``content_type``; a voice message's also has
``duration_secs`` and a base64 ``waveform``, and its message the flag ``IS_VOICE_MESSAGE`` (1 << 13).
discord.py reads ``url`` with ``Attachment.read`` (discord/message.py -> ``HTTPClient.get_from_cdn``,
discord/http.py: 200 is the file, 404 NotFound, 403 Forbidden, else HTTPException). Here the "CDN" is
``/attachments/<channel>/<id>/<filename>`` on the fake itself.

Knobs: ``status`` answers every download with that HTTP status; ``delay`` holds each one. ``downloads``
lists the paths fetched.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

IS_VOICE_MESSAGE = 1 << 13


@dataclass
class DiscordCdn:
    root: str = ""  # http://127.0.0.1:<port>, set when the fake starts
    status: int = 200
    delay: float = 0.0
    stored: dict[str, bytes] = field(default_factory=dict)  # path -> bytes
    downloads: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(3_000_000_000_000_000_001))

    def attachment(
        self, data: bytes, filename: str, content_type: str, *, channel_id: int = 0, **extra: Any
    ) -> dict[str, Any]:
        """Store a file; the attachment object a message carries."""
        attachment_id = next(self._ids)
        path = f"/attachments/{channel_id}/{attachment_id}/{filename}"
        self.stored[path] = data
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": f"{self.root}{path}",
            "proxy_url": f"{self.root}{path}",
            "content_type": content_type,
            **extra,
        }

    def voice_message(self, data: bytes, duration: float, *, channel_id: int = 0) -> dict[str, Any]:
        """A voice message's attachment (Discord records them as Ogg Opus)."""
        waveform = base64.b64encode(bytes(range(0, 256, 4))).decode()
        return self.attachment(
            data,
            "voice-message.ogg",
            "audio/ogg",
            channel_id=channel_id,
            duration_secs=duration,
            waveform=waveform,
        )

    async def download(self, request: web.Request) -> web.Response:
        self.downloads.append(request.path)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.Response(status=self.status, text="scripted download failure")
        data = self.stored.get(request.path)
        if data is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, content_type="application/octet-stream")
