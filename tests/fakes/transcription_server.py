"""The fake model server's ``POST /v1/audio/transcriptions``, as OpenAI's API reference describes it
(https://platform.openai.com/docs/api-reference/audio/createTranscription): a multipart form with ``file``
and ``model`` (and optional ``language``, ``prompt``, ``response_format``), answered ``{"text": ...}``.

Knobs: the transcript of a given file's bytes (``said``), else ``default``; ``status`` answers every call
with that HTTP error; ``delay`` holds each answer (a slow server, real latency). Every request is recorded
with its model, file name, content type, size and bearer key.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeTranscriptions:
    said: dict[bytes, str] = field(default_factory=dict)
    default: str = "this is what the voice note says"
    status: int = 200
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return _error(400, "file is required")
        data = upload.file.read()
        self.requests.append(
            {
                "model": str(form.get("model", "")),
                "filename": upload.filename,
                "content_type": upload.content_type,
                "size": len(data),
                "key": request.headers.get("Authorization", "").removeprefix("Bearer "),
            }
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return _error(self.status, "scripted transcription failure")
        return web.json_response({"text": self.said.get(data, self.default)})


def _error(status: int, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return web.json_response(body, status=status)
