"""Files on the fake Telegram Bot API: ``getFile`` and the file download endpoint.

As https://core.telegram.org/bots/api#getfile describes: ``getFile(file_id)`` answers a File object
(``file_id``, ``file_unique_id``, ``file_size``, ``file_path``); the bytes are then at
``<base>/file/bot<token>/<file_path>``. Bots may download files up to 20 MB: getFile answers 400
"Bad Request: file is too big" above that (``limit`` lowers it for tests). An unknown id is 400
"Bad Request: invalid file_id". python-telegram-bot prefixes the path with its ``base_file_url``
(telegram/_bot.py ``get_file``) and fetches it with ``File.download_as_bytearray``.

Knobs: ``download_status`` answers every download with that HTTP status; ``download_delay`` holds each
download (a slow file server, real latency). ``downloads`` lists the paths fetched.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MB = 1024 * 1024


class FileApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


@dataclass
class TelegramFiles:
    limit: int = 20 * MB
    download_status: int = 200
    download_delay: float = 0.0
    stored: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # file_id -> (bytes, file_path)
    downloads: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, data: bytes, folder: str, suffix: str) -> dict[str, Any]:
        """Store a file; the common fields of every file object in a message."""
        number = next(self._ids)
        file_id = f"AgAC-file-{number}"
        self.stored[file_id] = (data, f"{folder}/file_{number}{suffix}")
        return {"file_id": file_id, "file_unique_id": f"u{number}", "file_size": len(data)}

    def photo(self, data: bytes, width: int, height: int) -> list[dict[str, Any]]:
        """A message's ``photo``: the sizes Telegram offers (a thumbnail and this one)."""
        thumb = {**self.add(data[:64], "thumbnails", ".jpg"), "width": width // 4, "height": height // 4}
        return [thumb, {**self.add(data, "photos", ".jpg"), "width": width, "height": height}]

    def document(self, data: bytes, name: str, mime: str) -> dict[str, Any]:
        return {
            **self.add(data, "documents", "." + name.rsplit(".", 1)[-1]),
            "file_name": name,
            "mime_type": mime,
        }

    def voice(self, data: bytes, duration: int) -> dict[str, Any]:
        return {**self.add(data, "voice", ".oga"), "duration": duration, "mime_type": "audio/ogg"}

    def audio(self, data: bytes, name: str, duration: int, mime: str = "audio/mpeg") -> dict[str, Any]:
        return {**self.add(data, "music", ".mp3"), "duration": duration, "file_name": name, "mime_type": mime}

    def get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.stored:
            raise FileApiError(400, "Bad Request: invalid file_id")
        data, path = self.stored[file_id]
        if len(data) > self.limit:
            raise FileApiError(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(data), "file_path": path}

    async def download(self, request: web.Request, token: str) -> web.StreamResponse:
        if request.match_info["token"] != token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["path"]
        self.downloads.append(path)
        if self.download_delay:
            await asyncio.sleep(self.download_delay)
        if self.download_status != 200:
            return web.Response(status=self.download_status, text="scripted download failure")
        for data, stored_path in self.stored.values():
            if stored_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.Response(status=404, text="Not Found")
