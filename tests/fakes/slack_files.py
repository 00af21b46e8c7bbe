"""Files on the fake Slack: ``url_private`` / ``url_private_download`` and ``files.info``.

As https://api.slack.com/types/file describes: a file object carries ``id``, ``name``, ``mimetype``,
``filetype``, ``size``, ``url_private`` and ``url_private_download``; the bytes need an
``Authorization: Bearer <token>`` header with a token that has ``files:read``. Without it, Slack answers
200 with its HTML sign-in page, not an error (the behaviour the docs warn about; ``scope_missing`` makes
the right token get the page too). Audio clips recorded in Slack have ``subtype: slack_audio`` and
``duration_ms``. ``files.info(file=...)`` answers ``{"ok": true, "file": {...}}``
(https://api.slack.com/methods/files.info).

Knobs: ``download_status`` answers downloads with that HTTP status; ``download_delay`` holds each one.
``downloads`` records (path, Authorization header) of each request.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


@dataclass
class SlackFiles:
    bot_token: str
    team: str
    root: str = ""  # host:port, set when the fake starts
    scope_missing: bool = False
    download_status: int = 200
    download_delay: float = 0.0
    stored: dict[str, tuple[bytes, dict[str, Any]]] = field(default_factory=dict)
    downloads: list[tuple[str, str]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def file(self, data: bytes, name: str, mimetype: str, **extra: Any) -> dict[str, Any]:
        """Store a file; its object as a ``file_share`` event's ``files`` carries it."""
        file_id = f"F0FILE{next(self._ids)}"
        base = f"http://{self.root}/files-pri/{self.team}-{file_id}"
        info: dict[str, Any] = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary",
            "size": len(data),
            "mode": "hosted",
            "url_private": f"{base}/{name}",
            "url_private_download": f"{base}/download/{name}",
            **extra,
        }
        self.stored[file_id] = (data, info)
        return info

    def partial(self, info: dict[str, Any]) -> dict[str, Any]:
        """The file as Slack sometimes sends it in events: an id to look up with ``files.info``."""
        return {"id": info["id"], "file_access": "check_file_info"}

    def info(self, params: dict[str, Any]) -> dict[str, Any] | None:
        stored = self.stored.get(str(params.get("file", "")))
        return stored[1] if stored else None

    async def download(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.downloads.append((request.path, auth))
        if self.download_delay:
            await asyncio.sleep(self.download_delay)
        if self.download_status != 200:
            return web.Response(status=self.download_status, text="scripted download failure")
        if auth != f"Bearer {self.bot_token}" or self.scope_missing:
            return web.Response(text=SIGN_IN_PAGE, content_type="text/html")
        file_id = request.match_info["team_file"].split("-", 1)[-1]
        stored = self.stored.get(file_id)
        if stored is None:
            return web.Response(status=404, text="file_not_found")
        return web.Response(body=stored[0], content_type=stored[1]["mimetype"])
